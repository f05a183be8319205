"""shmctl list: every segment of every kind, like ipcs -m / lsipc -m for all three."""
from __future__ import annotations

import pwd
from typing import TYPE_CHECKING, List, Optional, Sequence, Tuple

import click

from .. import KINDS
from ..errors import Exit
from .output import (check_preset_conflict, choose_columns, data, hidden_changes_summary, hidden_matters,
                     make_style, note, note_hidden, output_options, preset_columns, preset_of_kind, preset_options,
                     render_inventory)
from .params import SIZE, complete_columns, complete_segment_ids, complete_users

if TYPE_CHECKING:
    from ..model import Inventory, Segment

def resolve_user(text: str) -> int:
    from ..errors import UsageError
    from ..units import is_ascii_digits
    if is_ascii_digits(text):
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


def check_conflicts(out, preset, summary, segment_id, limits, details, sort_column=None) -> None:
    """Options that cannot both hold: a usage error (exit 2), never one silently ignored."""
    from ..errors import UsageError
    from .output import check_output_conflicts
    check_output_conflicts(out)
    cols = out.columns or ""
    check_preset_conflict(out, preset, "list")
    if summary and (cols or out.output_all or preset):
        raise UsageError("list", "-u conflicts with -o/--output-all/-t/-c/-p", "-u prints totals, no columns")
    if summary and sort_column:
        raise UsageError("list", "-u conflicts with --sort", "-u prints totals per kind, no segments to sort")
    if limits and (segment_id is not None or summary or preset or details[0] or details[1] not in (None, "-A")):
        raise UsageError("list", "-l/-g prints the limits", "give it alone, or with output options and -A")
    if details[0] and segment_id is None:
        raise UsageError("list", "--list lists the segment of -i", "add -i ID")
    if segment_id is not None and details[1]:
        raise UsageError("list", f"-i shows one segment: {details[1]} chooses among many", "drop it")


def _id_address(text: str):
    """-i ID: a number (ASCII digits) is `sysv:ID` as in ipcs -m -i; any address is accepted too."""
    import re
    from ..address import parse_address
    return parse_address(f"sysv:{text}" if re.fullmatch("[0-9]+", text) else text)


@click.command("list", short_help="List shared-memory segments: SysV, POSIX and mmap.")
@click.option("-k", "--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind (repeatable). Default: all three.")
@click.option("-m", "--shmems", "shmems", is_flag=True, help="SysV segments (ipcs -m habit).")
@preset_options
@click.option("-a", "--all", "all_", is_flag=True,
              help="Also POSIX semaphores in /dev/shm and read-only shared file mappings.")
@click.option("--user", metavar="NAME|UID", shell_complete=complete_users, help="Only segments this user owns.")
@click.option("--orphans", is_flag=True, help="Only orphans: no process attached, creator gone (sysv); "
                                             "no process maps or holds it (posix). A deleted object is never "
                                             "one: processes hold it.")
@click.option("--min-size", type=SIZE, metavar="SIZE", help="Only segments at least this large.")
@click.option("-A", "--all-namespaces", "everywhere", is_flag=True,
              help="Every IPC namespace and every /dev/shm on the host (containers), the own first, with "
                   "NAMESPACE and CONTAINER columns. Root sees them all.")
@click.option("-u", "--summary", is_flag=True, help="Totals per kind, and how much of Shmem they explain.")
@click.option("-i", "--id", "segment_id", metavar="ID", shell_complete=complete_segment_ids,
              help="One segment in detail, as `stat` shows it (ipcs -m -i): a shmid, or any address. As with "
                   "lsipc -i, -o/-t/-c/-p choose its fields and -r/-n/-e/--newline/-J its form.")
@click.option("--list", "as_list", is_flag=True, help="With -i: a one-row table instead of the details (lsipc -l).")
@click.option("-l", "--limits", "limits", is_flag=True, help="The limits, as `shmctl limits` prints them (ipcs -l).")
@click.option("-g", "--global", "limits_", is_flag=True, help="The same as -l (lsipc -g).")
@click.option("--sort", "sort_column", metavar="COL", shell_complete=complete_columns, help="Sort by a column (sizes and ids as numbers).")
@click.option("--list-columns", is_flag=True, help="List the columns -o accepts, and exit (with -J: as JSON).")
@output_options
@click.pass_context
def list_command(ctx, kinds, shmems, preset, all_, user, orphans, min_size, everywhere, summary,
                 segment_id, as_list, limits, limits_, sort_column, list_columns, out):
    """List shared-memory segments of all kinds (ipcs -m / lsipc -m for SysV, POSIX and mmap).

    On a terminal: a table with human sizes. On a pipe: plain aligned columns, sizes in
    bytes, no colour, one line per segment, white space inside a cell escaped as \\x20
    (awk-friendly).

    Names, paths and process names are shown as printable text in every form, JSON too: a
    backslash, each control character (ESC, CR, LF, TAB, DEL, C1, line separators) and each
    byte that is not UTF-8 is written \\xHH. Every command reads \\xHH back as that byte, so
    a printed address is accepted as it is. With --export, `"`, `$` and a backquote are
    \\xHH too, so `eval "$(shmctl list -e -y)"` is safe.
    """
    from .. import kinds as backend
    from ..fields import COLUMNS, default_columns

    if list_columns:
        return print_columns(ctx, out.as_json)
    filters = [flag for flag, on in (("--user", user is not None),
                                     ("--orphans", orphans), ("--min-size", min_size), ("-u", summary),
                                     ("--sort", sort_column), ("-a", all_), ("-A", everywhere)) if on]
    check_conflicts(out, preset, summary, segment_id, limits or limits_,
                    (as_list, filters[0] if filters else None), sort_column)
    if limits or limits_:
        from .limits import show_limits  # every output option passed on: -o, -e, --human, -W, ...
        return show_limits(out, everywhere, "list")
    if segment_id is not None:
        from .stat import show_segment
        return show_segment(_id_address(segment_id), out, preset_of_kind(preset), as_list)
    chosen = _kinds(kinds, shmems)
    defaults = preset_columns(preset, chosen) if preset else default_columns(chosen, everywhere)
    names = choose_columns(out.columns, out.output_all, defaults)
    if sort_column and sort_column.upper() not in COLUMNS:
        from ..errors import UsageError
        raise UsageError(f"unknown sort column '{sort_column}'", "", "columns: " + ",".join(COLUMNS))
    uid = resolve_user(user) if user is not None else None

    view = backend.View()
    processes = "PROCESSES" in names
    inv = backend.collect(chosen, view, all_mappings=all_, processes=processes, everywhere=everywhere)
    select(inv, uid, orphans, min_size)
    style = make_style(out.exact, out.numeric_ids, out)
    inv.segments = sort_segments(inv.segments, sort_column and sort_column.upper(), style)
    if summary:
        inv.meminfo = backend.meminfo(view)
    json_columns = names if (out.columns or preset) else None  # --output-all: every JSON field
    render_inventory(inv, chosen, names, style, out, summary, processes, json_columns)
    report_unseen(inv, view, names if not (out.as_json and json_columns is None) else _json_names(processes),
                  chosen, summary)
    return Exit.OK


def print_columns(ctx, as_json: bool) -> Exit:
    """--list-columns: each column and what it holds; with --json as a document (as
    util-linux's --list-columns honours -J). Any other option would be ignored: a usage error."""
    from click.core import ParameterSource
    from ..errors import UsageError
    from ..fields import COLUMNS
    given = [p.opts[0] for p in ctx.command.params if p.name not in ("list_columns", "as_json")
             and ctx.get_parameter_source(p.name) == ParameterSource.COMMANDLINE]
    if given:
        raise UsageError("list", f"--list-columns conflicts with {given[0]}", "give it alone, or with --json")
    if as_json:
        from ..fields import ALIASES
        from ..render import to_json
        data(to_json({"columns": [{"name": name, "key": c.key, "kinds": list(c.kinds), "description": c.help}
                                  for name, c in COLUMNS.items()], "aliases": dict(ALIASES)}))
        return Exit.OK
    from ..fields import columns_listing  # the columns, then lsipc's names for some (USER = OWNER)
    data("".join(line + "\n" for line in columns_listing()))
    return Exit.OK


def _json_names(processes: bool) -> List[str]:
    from ..fields import COLUMNS
    return [n for n in COLUMNS if processes or n != "PROCESSES"]


def report_unseen(inv: "Inventory", view, names: Sequence[str], kinds: Sequence[str] = (),
                  summary: bool = False) -> None:
    """The hidden-processes note, once, where they change the answer printed (the table's
    columns, or -u's totals)."""
    if view.host.scanned and view.maps.hidden_pids and (hidden_changes_summary(inv.segments, kinds) if summary
                                                         else hidden_matters(inv.segments, names, kinds)):
        note_hidden(view.maps.hidden_pids)
    if inv.skipped:
        note(f"not segments, left out: {', '.join(inv.skipped)}")
