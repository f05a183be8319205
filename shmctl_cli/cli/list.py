"""shmctl list: every segment of every kind, like ipcs -m / lsipc -m for all three."""
from __future__ import annotations

import pwd
from typing import TYPE_CHECKING, List, Optional, Tuple

import click

from .. import KINDS
from ..errors import Exit
from .output import choose_columns, is_terminal, make_style, note, note_hidden, output_options, print_rich
from .params import SIZE

if TYPE_CHECKING:
    from ..model import Inventory, Segment

def resolve_user(text: str) -> int:
    from ..errors import UsageError
    if text.isdigit():
        return int(text)
    try:
        return pwd.getpwnam(text).pw_uid
    except KeyError:
        raise UsageError(f"unknown user '{text}'", "no such user name", "give a name or a numeric uid") from None


def select(inv: "Inventory", uid: Optional[int], orphans: bool, min_size: Optional[int]) -> None:
    keep: "List[Segment]" = inv.segments
    if uid is not None:
        keep = [s for s in keep if s.uid == uid]
    if orphans:
        keep = [s for s in keep if s.orphan]
    if min_size:
        keep = [s for s in keep if s.size >= min_size]
    inv.segments = keep


def sort_segments(segments: "List[Segment]", column: Optional[str], style) -> "List[Segment]":
    """By the field's sort key (fields.py): numbers as numbers, the rest by their text."""
    if not column:
        return segments
    from ..fields import COLUMNS
    return sorted(segments, key=COLUMNS[column].sort_key(style))


def _kinds(kinds: Tuple[str, ...], shmems: bool) -> List[str]:
    """The --kind values in order, or every kind; `-m` (ipcs's habit) adds its kinds first."""
    chosen = list(dict.fromkeys(kinds)) or ([] if shmems else list(KINDS))
    if shmems:
        from ..fields import IPCS_KINDS
        chosen = [k for k in IPCS_KINDS if k not in chosen] + chosen
    return chosen


@click.command("list")
@click.option("-k", "--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind (repeatable). Default: all three.")
@click.option("-m", "--shmems", "shmems", is_flag=True, help="SysV segments (ipcs -m habit).")
@click.option("-p", "--processes", is_flag=True, help="Add the attached processes (pid:comm).")
@click.option("-a", "--all", "all_", is_flag=True,
              help="Also POSIX semaphores in /dev/shm and read-only shared file mappings.")
@click.option("--user", metavar="NAME|UID", help="Only segments this user owns.")
@click.option("--orphans", is_flag=True, help="Only orphans: no process attached, creator gone (sysv); "
                                             "no process maps or holds it (posix). A deleted object is never "
                                             "one: processes hold it.")
@click.option("--min-size", type=SIZE, metavar="SIZE", help="Only segments at least this large.")
@click.option("-A", "--all-namespaces", "everywhere", is_flag=True,
              help="Every IPC namespace and every /dev/shm on the host (containers), the own first, with "
                   "NAMESPACE and CONTAINER columns. Root sees them all.")
@click.option("-u", "--summary", is_flag=True, help="Totals per kind, and how much of Shmem they explain.")
@click.option("--sort", "sort_column", metavar="COL", help="Sort by a column (sizes and ids as numbers).")
@click.option("--list-columns", is_flag=True, help="List the columns -o accepts, and exit.")
@output_options
def list_command(kinds, shmems, processes, all_, user, orphans, min_size, everywhere, summary, sort_column,
                 list_columns, out):
    """List shared-memory segments of all kinds (ipcs -m / lsipc -m for SysV, POSIX and mmap).

    On a terminal: a table with human sizes. On a pipe: plain aligned columns, sizes in
    bytes, no colour, one line per segment, white space inside a cell escaped as \\x20
    (awk-friendly).

    Names, paths and process names are shown as printable text in every form, JSON too: a
    backslash, each control character (ESC, CR, LF, TAB, DEL, C1, line separators) and each
    byte that is not UTF-8 is written \\xHH. Every command reads \\xHH back as that byte, so
    a printed address is accepted as it is.
    """
    from .. import kinds as backend
    from ..fields import COLUMNS, default_columns

    if list_columns:
        for name, column in COLUMNS.items():
            click.echo(f"{name:<10} {column.help}")
        return Exit.OK
    chosen = _kinds(kinds, shmems)
    names = choose_columns(out.columns, out.output_all, default_columns(chosen, everywhere))
    if processes and "PROCESSES" not in names:
        names.append("PROCESSES")
    if sort_column and sort_column.upper() not in COLUMNS:
        from ..errors import UsageError
        raise UsageError(f"unknown sort column '{sort_column}'", "", "columns: " + ",".join(COLUMNS))
    uid = resolve_user(user) if user is not None else None

    view = backend.View()
    inv = backend.collect(chosen, view, all_mappings=all_, processes=processes or "PROCESSES" in names,
                          everywhere=everywhere)
    select(inv, uid, orphans, min_size)
    style = make_style(out.exact, out.numeric_ids, out)
    inv.segments = sort_segments(inv.segments, sort_column and sort_column.upper(), style)
    if summary:
        inv.meminfo = backend.meminfo(view)
    render_inventory(inv, chosen, names, style, out, summary, processes)
    report_unseen(inv)
    return Exit.OK


def render_inventory(inv, chosen, names, style, out, summary, processes) -> None:
    from .. import render
    totals = render.summarize(inv, chosen) if summary else None
    if out.as_json:
        click.echo(render.inventory_json(inv, style, processes or "PROCESSES" in names, totals), nl=False)
    elif summary:
        click.echo(render.summary_text(totals, style), nl=False)
    elif is_terminal() and not out.raw:
        print_rich(render.rich_table(inv.segments, names, style, headings=not out.noheadings))
    else:
        click.echo(render.plain_table(inv.segments, names, style, headings=not out.noheadings, raw=out.raw), nl=False)


def report_unseen(inv: "Inventory") -> None:
    note_hidden(inv.hidden_processes)
    if inv.skipped:
        note(f"not segments, left out: {', '.join(inv.skipped)}")
