"""shmctl stat ADDRESS: everything about one segment, and every process attached to it."""
from __future__ import annotations

from typing import Callable, List, Optional, Sequence

import click

from ..errors import Exit
from .output import (STAT_NOTRUNCATE_HELP, STAT_TIME_HELP, check_output_conflicts, check_preset_conflict,
                     choose_columns, data, hidden_matters, is_terminal, make_style, may_miss_holders, note_hidden,
                     output_options_for, preset_of_kind, preset_options, print_rich, render_inventory)
from .params import ADDRESS


@click.command("stat")
@click.argument("address", type=ADDRESS)
@preset_options
@output_options_for(STAT_TIME_HELP, STAT_NOTRUNCATE_HELP,
                    "Only these fields, comma-separated, in this order (lsipc -i -o); '+COLS' adds to them. "
                    "The columns of `shmctl list --list-columns`; PROCESSES is the table of attached processes.")
def stat_command(address, preset, out):
    """Show one segment: its fields, status and attached processes.

    ADDRESS is sysv:SHMID, sysv:key=KEY, sysv:ftok=PATH,PROJ, posix:/NAME (or /NAME),
    mmap:/PATH or mmap:@INODE; \\xHH in it is the byte HH, as `list` prints names.
    `shmctl list -i ID` prints the same, and takes the same options.

    -o COLS, -o +COLS and --output-all choose the fields; -r, -n, -e and --newline print
    the segment as one row of `list` in that form; --json honours -o.
    """
    check_output_conflicts(out, "stat")
    check_preset_conflict(out, preset, "stat")
    return show_segment(address, out, preset_of_kind(preset))


def one_row(out, as_list: bool = False) -> bool:
    """Whether the segment is printed as one row of a list form (-r, -n, -e, --newline, --list),
    not as the detail view."""
    return as_list or any((out.raw, out.noheadings, out.export, out.newline))


def show_segment(address, out, preset: Optional[Callable[[str], List[str]]] = None, as_list: bool = False) -> Exit:
    """The one path of `stat` and `list -i`: the detail view (its fields chosen by -o,
    --output-all or list's presets -t/-c/-p: `preset(kind)`, their columns), JSON (the fields
    `list --json` gives for the same options), or one row of `list` in the form asked for
    (-r, -n, -e, --newline, --list)."""
    from .. import kinds as backend

    view = backend.View()
    segment = backend.find(address, view)
    backend.describe_processes(segment)
    style = make_style(out.exact, out.numeric_ids, out)
    detail = not (out.as_json or one_row(out, as_list))
    preset_names = preset(segment.kind) if preset else []
    names = _fields_of(segment, out, preset_names, detail)
    chosen = names if (out.columns or preset_names) else None  # --output-all: every JSON field, as list's
    if out.as_json:
        from .. import render
        obj = render.segment_dicts([segment], style, True, chosen)[0]
        obj["hidden_processes"] = view.maps.hidden
        data(render.to_json(obj))
    elif detail:
        _print_detail(segment, style, names)
    else:
        from ..fields import default_columns
        from ..model import Inventory
        inv = Inventory()
        inv.segments = [segment]
        names = names or default_columns([segment.kind])
        render_inventory(inv, [segment.kind], names, style, out, False, True, chosen)
    if view.host.scanned and may_miss_holders(segment) and _hidden_matter(segment, names):
        note_hidden(view.maps.hidden_pids)
    return Exit.OK


def _print_detail(segment, style, names: Optional[List[str]]) -> None:
    from .. import render
    if is_terminal():
        print_rich(render.rich_detail(segment, style, names))
    else:
        data(render.detail_text(segment, style, names))


def _fields_of(segment, out, preset: Sequence[str], detail: bool) -> Optional[List[str]]:
    """The columns -o/--output-all/a preset (-t, -c, -p of list) choose, or None: the whole
    detail view, every JSON field. `+COLS` adds to the preset, else to what the form shows
    by default: every detail line (and the processes), or the kind's columns of `list`."""
    if not (out.columns or out.output_all or preset):
        return None
    if preset:
        defaults = list(preset)
    elif detail:
        from ..render import detail_columns
        defaults = detail_columns(segment)
    else:
        from ..fields import default_columns
        defaults = default_columns([segment.kind])
    return choose_columns(out.columns, out.output_all, defaults)


def _hidden_matter(segment, names: Optional[List[str]]) -> bool:
    """Whether the hidden processes change what is shown of a segment that may miss holders:
    the whole view (names None: its processes), or chosen fields as for `list`."""
    return names is None or hidden_matters([segment], names)
