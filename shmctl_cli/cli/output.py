"""What every listing command shares: output options, and where output goes."""
from __future__ import annotations

import sys
from typing import List, Optional, Sequence

import click



def is_terminal() -> bool:
    return sys.stdout.isatty()


def terminal_width(fd: int = 1) -> int:
    """The width tables (fd 1) or progress frames (fd 2) fit into: $COLUMNS when set to a
    number (as util-linux reads it), else the size of the terminal on fd, whatever TERM says;
    80 if neither is known."""
    import os
    from ..units import is_ascii_digits
    columns = os.environ.get("COLUMNS", "")
    if is_ascii_digits(columns) and 0 < int(columns) < 1 << 16:
        return int(columns)
    try:
        return os.get_terminal_size(fd).columns or 80
    except (OSError, ValueError):
        return 80


TIME_FORMAT_HELP = ("Times: short (HH:MM today, Nov24 this year, 2025-Nov24 before), full (Tue Nov 24 00:43:45 "
                    "2026 UTC) or iso (2026-11-24T00:43:45+00:00). Default: short on a terminal, iso on a pipe.")


NOTRUNCATE_HELP = ("Never cut or drop a column to fit the terminal. Without it, a narrow terminal cuts long names "
                   "with '…' and then drops the least important columns; -o COLS keeps the columns named (a "
                   "record per segment where they cannot fit). A long address is never cut: it stands on a line "
                   "of its own.")


def terminal_options(time_help: str = TIME_FORMAT_HELP, notruncate: bool = True, times: bool = True,
                     notruncate_help: str = NOTRUNCATE_HELP) -> list:
    """--human, --time-format and -W/--notruncate: how a terminal shows sizes, times and wide tables."""
    options = [click.option("--human", is_flag=True,
                            help="Sizes in binary units (4KiB, 1.5MiB) even on a pipe (ipcs --human); -b wins.")]
    if times:
        options.append(click.option("--time-format", type=click.Choice(["short", "full", "iso"]), help=time_help))
    if notruncate:
        options.append(click.option("-W", "--notruncate", is_flag=True, help=notruncate_help))
    return options


STAT_TIME_HELP = ("Times: full (Tue Nov 24 00:43:45 2026 UTC), short (HH:MM today, Nov24 this year, 2025-Nov24 "
                  "before) or iso (2026-11-24T00:43:45+00:00). Default: full on a terminal, iso on a pipe.")
STAT_NOTRUNCATE_HELP = ("Never cut or drop a column of a table to fit the terminal (the attached processes, or the "
                        "row of -n). Without it, a narrow terminal cuts long commands with '…' and then drops the "
                        "least important columns; -o COLS keeps the columns named.")


def terminal_option_list(time_help: str = TIME_FORMAT_HELP, notruncate: bool = True, times: bool = True):
    """terminal_options as a decorator, for a command that takes its options one by one."""
    def decorate(func):
        for option in reversed(terminal_options(time_help, notruncate, times)):
            func = option(func)
        return func
    return decorate


def style_options(exact: bool, out=None, terminal_times: str = "short") -> dict:
    """Sizes, times and layout as util-linux chooses them: human sizes, `terminal_times` and
    tables fitted to the terminal's width on a terminal; exact bytes and ISO times on a pipe
    and in --raw/--export/--newline forms. --bytes, --human, --time-format and -W override."""
    terminal = is_terminal()
    table = terminal and not any(getattr(out, flag, False) for flag in ("raw", "export", "newline"))
    return {"exact_sizes": exact or not (terminal or getattr(out, "human", False)),
            "time_format": getattr(out, "time_format", None) or (terminal_times if table else "iso"),
            "notruncate": getattr(out, "notruncate", False), "width": terminal_width() if table else None,
            "pinned": pinned_columns(out)}


def pinned_columns(out) -> list:
    """The columns the user named (-o COLS, -o +COLS, --output-all): never dropped to fit."""
    from ..fields import COLUMNS
    if getattr(out, "output_all", False):
        return list(COLUMNS)
    from ..fields import ALIASES
    spec = getattr(out, "columns", None) or ""
    return [ALIASES.get(c.strip().upper(), c.strip().upper()) for c in spec.lstrip("+").split(",") if c.strip()]


def note(message: str) -> None:
    """One line on stderr; the names and paths in `message` come raw and are escaped here.
    What went to stdout before goes first (it may wait in the buffer: see `data`)."""
    from ..address import printable
    sys.stdout.flush()
    click.echo(f"shmctl: {printable(message)}", err=True)


def line(text: str) -> None:
    """One line of data on stdout, out at once (rm's record of what it removed must survive a
    SIGKILL a line later)."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def data(text: str) -> None:
    """Rendered text on stdout as it is: plain and JSON output hold no colour codes (every
    text from the system is escaped), so nothing is scanned for them to strip, as
    click.echo does (8 ms for the 27 MB of 32000 segments' JSON). An ASCII stdout was made
    UTF-8 at start (cli.main)."""
    sys.stdout.write(text)


class Output:
    """What the output options asked for, as one object: a command takes `out`, and a new
    output option is one line in OPTIONS, not a new parameter of every command."""

    def __init__(self, **values):
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Output({self.__dict__!r})"


COLUMNS_HELP = "Comma-separated columns; '+COLS' adds to the defaults. See --list-columns."


def _output_option_list(time_help: str, notruncate_help: str, columns_help: str) -> list:
    return [
        click.option("-J", "--json", "as_json", is_flag=True, help="JSON: numbers as numbers, ISO 8601 times, bytes."),
        click.option("-r", "--raw", is_flag=True, help="Unaligned, one space between columns."),
        click.option("-n", "--noheadings", is_flag=True, help="No header line."),
        click.option("-e", "--export", "export", is_flag=True,
                     help='One line per segment of COLUMN="value" pairs (lsipc -e), safe for eval.'),
        click.option("-y", "--shell", "shell", is_flag=True,
                     help="With --export/--newline: column names usable as shell variables (USE% -> USE_PCT)."),
        click.option("--newline", is_flag=True,
                     help='Each COLUMN="value" on a line of its own, a blank line between segments (lsipc -n).'),
        click.option("-o", "--output", "columns", metavar="COLS", shell_complete=_complete_columns, help=columns_help),
        click.option("--output-all", is_flag=True, help="Every column."),
        click.option("-b", "--bytes", "exact", is_flag=True,
                     help="Sizes in bytes (the default when stdout is not a terminal)."),
        *terminal_options(time_help, notruncate_help=notruncate_help),
        click.option("--numeric-ids", is_flag=True,
                     help="Tables: ids, not names, in OWNER, GROUP, CUSER, CGROUP (ls -n); JSON and -e keep names."),
        click.option("-P", "--numeric-perms", is_flag=True,
                     help="Permissions in octal only (PERMS already is; stat's perms line drops its rwx; lsipc -P)."),
    ]


def check_output_conflicts(out: Output, command: str = "list") -> None:
    """Options that cannot both hold, or one that would be ignored, are a usage error, never
    one silently winning: JSON has one form (bytes, ISO 8601 times), and -y names the
    variables of --export/--newline."""
    from ..errors import UsageError
    given = [flag for flag, on in (("--json", out.as_json), ("--raw", out.raw), ("--export", out.export),
                                   ("--newline", out.newline), ("--noheadings", out.noheadings)) if on]
    if out.as_json and len(given) > 1:
        raise UsageError(command, f"--json conflicts with {given[1]}", "JSON has no other form")
    if out.as_json and (out.human or out.time_format):
        flag = "--human" if out.human else "--time-format"
        raise UsageError(command, f"--json conflicts with {flag}", "JSON has sizes in bytes and ISO 8601 times")
    forms = [flag for flag in given if flag in ("--raw", "--export", "--newline")]
    if len(forms) > 1:
        raise UsageError(command, f"{forms[0]} conflicts with {forms[1]}", "choose one output form")
    if out.shell and not (out.export or out.newline):
        raise UsageError(command, "-y names the variables of --export/--newline", "add -e or --newline")
    if out.output_all and out.columns:
        raise UsageError(command, "--output-all conflicts with -o", "-o +COLS adds columns to the defaults")


def output_options_for(time_help: str = TIME_FORMAT_HELP, notruncate_help: str = NOTRUNCATE_HELP,
                       columns_help: str = COLUMNS_HELP):
    """The output options (like lsipc's), handed to the command as one `out` object; the
    texts of the help that differ between `list` and `stat`."""
    def decorate(func):
        options = _output_option_list(time_help, notruncate_help, columns_help)
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
    return decorate


output_options = output_options_for()


PRESETS = {
    # ipcs -t, -c, -p: the same columns under the same letters
    "time": ["ADDRESS", "ID", "OWNER", "ATIME", "DTIME", "CTIME"],
    "creator": ["ADDRESS", "ID", "PERMS", "CUID", "CUSER", "CGID", "CGROUP", "UID", "OWNER", "GID", "GROUP"],
    "pid": ["ADDRESS", "ID", "OWNER", "CPID", "LPID", "PROCESSES"],
}


def preset_options(func):
    """-t, -c and -p (ipcs's column presets), handed to the command as one `preset`: the
    tuple of those given, in the order time, creator, pid."""
    import functools

    @functools.wraps(func)
    def wrapper(*args, time_, creator, pid, **kwargs):
        chosen = tuple(name for name, on in (("time", time_), ("creator", creator), ("pid", pid)) if on)
        return func(*args, preset=chosen, **kwargs)

    for option in reversed([
        click.option("-t", "--time", "time_", is_flag=True,
                     help="Columns of times: ADDRESS ID OWNER ATIME DTIME CTIME (+ MTIME for files; ipcs -t). "
                          "-t, -c and -p combine, each column once (lsipc -c -t)."),
        click.option("-c", "--creator", is_flag=True,
                     help="Columns of creator and owner: PERMS CUID CUSER CGID CGROUP UID OWNER GID GROUP "
                          "(ipcs -c)."),
        click.option("-p", "--pid", "--processes", "pid", is_flag=True,
                     help="Columns of processes: ADDRESS ID OWNER CPID LPID PROCESSES, the attached pid:comm "
                          "(ipcs -p)."),
    ]):
        wrapper = option(wrapper)
    return wrapper


def preset_columns(presets: Sequence[str], kinds: Sequence[str]) -> List[str]:
    """The columns of -t, -c and -p, and of two or three of them together (lsipc combines
    them too): their union in the order time, creator, pid, ADDRESS first, each column once."""
    names: List[str] = []
    for preset, columns in PRESETS.items():
        if preset in presets:
            names += columns
            if preset == "time":  # files have an mtime too: when they are listed
                from ..fields import COLUMNS
                names += [c for c in ("MTIME",) if set(kinds) & set(COLUMNS[c].kinds)]
    return list(dict.fromkeys(names))


def preset_of_kind(preset: Sequence[str]):
    """For one segment (stat, list -i): its kind's preset columns, once the kind is known."""
    return (lambda kind: preset_columns(preset, [kind])) if preset else None


def check_preset_conflict(out, preset: Sequence[str], command: str) -> None:
    """-t/-c/-p choose the columns: -o COLS would choose them again (-o +COLS adds to them)."""
    cols = out.columns or ""
    if preset and cols and not cols.startswith("+"):
        from ..errors import UsageError
        flags = "/".join(f"-{name[0]}" for name in preset)
        raise UsageError(command, f"{flags} conflicts with -o {cols}", f"-o +{cols} adds columns to {flags}")


def choose_columns(spec: Optional[str], output_all: bool, defaults: Sequence[str]) -> List[str]:
    """-o COLS (these), -o +COLS (the defaults, or a preset, and these), --output-all, or the defaults."""
    from ..fields import COLUMNS, column_name, column_spec
    if output_all:
        return list(COLUMNS)
    if not spec:
        return list(defaults)
    extend, words = column_spec(spec, "ADDRESS,SIZE")
    # lsipc's names (USER, ATTACH, DETACH) are shmctl's columns: fields.ALIASES
    names = list(dict.fromkeys(map(column_name, words)))
    return list(defaults) + [c for c in names if c not in defaults] if extend else names


def make_style(exact: bool, numeric_ids: bool = False, out: Optional[Output] = None):
    """How values read: style_options, and user (and group) names."""
    from ..kinds import user_name
    from ..fields import Style
    style = Style(numeric_ids=numeric_ids, user_name=user_name, **style_options(exact, out))
    style.time_given = bool(getattr(out, "time_format", None))
    style.numeric_perms = bool(getattr(out, "numeric_perms", False))  # -P: stat's perms line in octal only
    return with_group_names(style)


def with_group_names(style):
    """GROUP and CGROUP read names through the style, cached as user names are."""
    from ..system import group_name
    style.group_name = group_name
    return style


def print_rich(renderable) -> None:
    """On the terminal, at its real width (rich would take 80 columns for TERM=dumb), or
    wider where a table says it needs more (-W): a line the terminal wraps keeps its cells
    whole, where rich would fold them. NO_COLOR and TERM=dumb still take the colour away."""
    from rich.console import Console  # rich only where a terminal will show it
    width = max([terminal_width()] + [getattr(r, "min_width", None) or 0 for r in _parts(renderable)])
    Console(width=width, height=25).print(renderable)


def _parts(renderable) -> list:
    return [renderable, *getattr(renderable, "renderables", ())]


def may_miss_holders(seg) -> bool:
    """Whether hidden processes may hold this segment unseen: its count is "at least" (maps
    we could not read), or the kernel's count (SysV nattch) is more than the processes seen."""
    if seg.nattch_unsure or seg.orphan_unsure:
        return True
    seen = len({a.pid for a in seg.attachments}) if seg.attachments is not None else 0
    return bool(seg.nattch) and seg.nattch > seen


SHOWN_PIDS = 5  # the hidden pids a note names


def hidden_matters(segments, names: Sequence[str], kinds: Sequence[str] = ()) -> bool:
    """Whether hidden processes change what is shown: a PROCESSES column that may miss some, a
    NATTCH of `N+`/`?`, a status or reason of `orphan?`, or a kind whose segments only the
    processes show (mmap: a hidden process hides whole segments)."""
    if _found_in_processes(kinds):
        return True
    if "PROCESSES" in names and any(map(may_miss_holders, segments)):
        return True
    if "NATTCH" in names and any(s.nattch_unsure for s in segments):
        return True
    return bool({"STATUS", "ORPHAN"} & set(names)) and any(s.orphan_unsure for s in segments)


def hidden_changes_summary(segments, kinds: Sequence[str]) -> bool:
    """Whether hidden processes change -u's totals: the count of a kind that only the
    processes show, or the deleted objects still held (only the processes show those, and
    the pids that free them). SysV and POSIX counts, sizes and RSS are the kernel's and
    /dev/shm's: no."""
    return _found_in_processes(kinds) or any(s.deleted for s in segments)


def _found_in_processes(kinds: Sequence[str]) -> bool:
    from .. import kinds as backend
    return any(backend.kind(name).found_in_processes for name in kinds)


def note_hidden(pids: Sequence[int]) -> None:
    """Say, once, which processes the maps scan could not see: call it only where they change
    the answer in front of the user (a NATTCH of `N+`/`?`, `orphan?`, a PROCESSES column,
    a stat that may miss holders, an rm that skipped for them)."""
    if not pids:
        return
    import os
    pids = sorted(pids)
    named = ", ".join(map(str, pids[:SHOWN_PIDS]))
    more = f" and {len(pids) - SHOWN_PIDS} more" if len(pids) > SHOWN_PIDS else ""
    why = ("their maps are closed even to this root (more privileged processes)" if os.geteuid() == 0
           else "run as root to see them")
    word = "process" if len(pids) == 1 else "processes"
    note(f"attachments of {word} {named}{more} not visible; {why}")


def render_inventory(inv, chosen, names, style, out, summary, processes, json_columns=None) -> None:
    """Segments in the form `out` asks for (JSON, -u's totals, -e/--newline, a terminal's
    table, a plain or raw one): `list`, and the one row of `stat -r/-n/-e` and `list -i`."""
    from .. import render
    totals = render.summarize(inv, chosen) if summary else None
    if out.as_json:
        for text in render.inventory_json_chunks(inv, style, processes, totals, json_columns):
            data(text)  # written as rendered: no whole document in memory
    elif summary:
        data(render.summary_text(totals, style))
    elif out.export or out.newline:
        from ..render.export import export_text
        data(export_text(inv.segments, names, style, shell=out.shell, newline=out.newline))
    elif is_terminal() and not out.raw:
        print_rich(render.rich_table(inv.segments, names, style, headings=not out.noheadings))
    else:
        for text in render.plain_table_chunks(inv.segments, names, style, headings=not out.noheadings, raw=out.raw):
            data(text)


def _complete_columns(ctx, param, incomplete):
    from .params import complete_columns  # shell completion only
    return complete_columns(ctx, param, incomplete)
