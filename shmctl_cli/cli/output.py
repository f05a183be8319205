"""What every listing command shares: output options, and where output goes."""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence

import click

from ..units import plural


def is_terminal() -> bool:
    return sys.stdout.isatty()


def note(message: str) -> None:
    """One line on stderr; the names and paths in `message` come raw and are escaped here."""
    from ..address import printable
    click.echo(f"shmctl: {printable(message)}", err=True)


class Output:
    """What the output options asked for, as one object: a command takes `out`, and a new
    output option is one line in OPTIONS, not a new parameter of every command."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Output({self.__dict__!r})"


def _output_option_list() -> list:
    return [
        click.option("--json", "as_json", is_flag=True, help="JSON: numbers as numbers, ISO 8601 times, bytes."),
        click.option("--raw", is_flag=True, help="Unaligned, one space between columns."),
        click.option("-n", "--noheadings", is_flag=True, help="No header line."),
        click.option("-o", "--output", "columns", metavar="COLS",
                     help="Comma-separated columns; '+COLS' adds to the defaults. See --list-columns."),
        click.option("--output-all", is_flag=True, help="Every column."),
        click.option("-b", "--bytes", "exact", is_flag=True,
                     help="Sizes in bytes (the default when stdout is not a terminal)."),
        click.option("--numeric-ids", is_flag=True, help="User ids, not names."),
    ]


def output_options(func):
    """The output options (like lsipc's), handed to the command as one `out` object."""
    options = _output_option_list()
    names = []

    import functools

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        out = Output(**{name: kwargs.pop(name) for name in names})
        return func(*args, out=out, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    names.extend(p.name for p in wrapper.__click_params__[-len(options):])
    return wrapper


def choose_columns(spec: Optional[str], output_all: bool, defaults: Sequence[str]) -> List[str]:
    from ..errors import UsageError
    from ..fields import COLUMNS
    if output_all:
        return list(COLUMNS)
    if not spec:
        return list(defaults)
    extend = spec.startswith("+")
    names = [c.strip().upper() for c in spec.lstrip("+").split(",") if c.strip()]
    unknown = [c for c in names if c not in COLUMNS]
    if unknown:
        raise UsageError(f"unknown column '{unknown[0]}'", "", "columns: " + ",".join(COLUMNS))
    return list(defaults) + [c for c in names if c not in defaults] if extend else names


def make_style(exact: bool, numeric_ids: bool = False, out: Optional[Output] = None):
    from ..kinds import user_name
    from ..fields import Style
    return Style(exact_sizes=exact or not is_terminal(), numeric_ids=numeric_ids, user_name=user_name)


def print_rich(renderable) -> None:
    from rich.console import Console  # rich only where a terminal will show it
    Console().print(renderable)


def note_hidden(count: int) -> None:
    """Say once what the maps scan could not see, and what would help."""
    if not count:
        return
    import os
    why = ("their maps are closed even to this root (more privileged processes)" if os.geteuid() == 0
           else "run as root to see them")
    note(f"attachments of {plural(count, 'process')} not visible; {why}")
