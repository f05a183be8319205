"""Generate man/ (shmctl.1 and one page per command and subcommand), completions/ and
README.md's generated blocks from the click tree, cli/examples.py, fields.COLUMNS,
errors.Exit and address.FORMS. A development tool, not part of the installed package:

    python tools/docgen.py [--check]

--check regenerates in memory and exits 1 if a checked-in file differs, or if a file in man/
or completions/ is no longer generated (tests run it).

The pages' date: the checked-in pages carry shmctl_cli.__release_date__ (bumped with __version__),
the same on every run. Run with SOURCE_DATE_EPOCH set (a packager regenerating them in a
reproducible build), docgen writes that day (UTC) instead, and --check compares with what it would
write in that same environment. The tests compare the checked-in pages with SOURCE_DATE_EPOCH
removed, so a build that exports it for everything, tests included, still passes them.
"""
from __future__ import annotations

import datetime
import inspect
import os
import re
import sys
from typing import Callable, Dict, List, Tuple

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere: the package of this checkout
    sys.path.insert(0, ROOT)

from shmctl_cli import __release_date__, __version__  # noqa: E402
from shmctl_cli.address import FORMS  # noqa: E402
from shmctl_cli.cli import all_commands, cli  # noqa: E402
from shmctl_cli.cli.completion import SHELLS, script  # noqa: E402
from shmctl_cli.cli.examples import EXAMPLES  # noqa: E402
from shmctl_cli.errors import Exit  # noqa: E402
from shmctl_cli.fields import COLUMNS  # noqa: E402

TOOL = "python tools/docgen.py"


def exit_codes() -> List[Tuple[str, str]]:
    return [(str(code.value), code.meaning) for code in Exit]


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
    text = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in text)  # groff reads ASCII
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in text.splitlines())


def _paragraphs(text: str) -> str:
    """Help text as roff paragraphs: the docstring's lines joined, blank lines become .PP."""
    paragraphs = [" ".join(p.split()) for p in inspect.cleandoc(click.unstyle(text or "")).split("\n\n")]
    return "\n.PP\n".join(_roff(p) for p in paragraphs if p)


def commands() -> List[Tuple[str, click.Command]]:
    return sorted(all_commands().items())


def subcommands(command: click.Command) -> List[Tuple[str, click.Command]]:
    if not isinstance(command, click.Group):
        return []
    ctx = click.Context(command)
    return [(name, command.get_command(ctx, name)) for name in command.list_commands(ctx)]


def every_command() -> List[Tuple[str, click.Command]]:
    """("list", cmd), ..., ("limits", group), ("limits set", cmd), ...: one level of groups."""
    found = []
    for name, command in commands():
        found.append((name, command))
        found += [(f"{name} {sub}", subcommand) for sub, subcommand in subcommands(command)]
    return found


def _context(path: str) -> click.Context:
    """The context click gives the command at PATH ("" for shmctl, "limits set"), parents included, so
    usage lines and option records read as --help prints them."""
    ctx = click.Context(cli, info_name="shmctl")
    for word in path.split():
        command = ctx.command.get_command(ctx, word)
        ctx = click.Context(command, info_name=word, parent=ctx)
    return ctx


def _option_line(param: click.Option, ctx: click.Context) -> Tuple[str, str]:
    """The option's names, value and help as --help shows them; a choice reads `sysv|posix|mmap` (the
    brackets of click's metavar would say the value is optional)."""
    names, text = param.get_help_record(ctx) or ("", "")
    if isinstance(param.type, click.Choice) and param.metavar is None:
        names = re.sub(r" [\[{]([^\]}]*)[\]}]$", r" \1", names)
    return names, text


def _usage_pieces(ctx: click.Context) -> List[str]:
    """What --help's usage line says after the command's words: `[OPTIONS] [ADDRESSES]...`."""
    return ctx.command.collect_usage_pieces(ctx)


def page_date() -> str:
    """SOURCE_DATE_EPOCH (reproducible builds) as a UTC date, else the release date."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    if epoch.isascii() and epoch.isdigit():
        return datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc).strftime("%Y-%m-%d")
    return __release_date__


def page_name(path: str) -> str:
    """`shmctl-limits-set` for "limits set", `shmctl` for ""."""
    return "-".join(["shmctl", *path.split()])


def _bold(text: str) -> str:
    return f"\\fB{_roff(text)}\\fR"


def _tagged(rows: List[Tuple[str, str]]) -> List[str]:
    out = []
    for tag, text in rows:
        out += [".TP", tag, _roff(" ".join(text.split()))]
    return out


def _options(ctx: click.Context) -> List[str]:
    rows = []
    for param in ctx.command.params:
        if isinstance(param, click.Option) and not param.hidden:
            names, text = _option_line(param, ctx)
            rows.append((_bold(names).replace("|", "|\\:"), text))  # a long list of choices may break after a |
    rows.append((_bold("-h, --help"), "Show the help, with examples, and exit."))
    return _tagged(rows)


# Commands that never look at a segment: their synopsis leaves out the global --ns PID.
NO_NAMESPACE = {"help", "completion"}


def _synopsis(path: str, ctx: click.Context) -> List[str]:
    """`shmctl [--ns PID] limits set [OPTIONS] NAME=VALUE...`: --help's usage line, with the global option
    that goes before the command's words."""
    words = [_bold("shmctl")]
    if path and path.split()[0] not in NO_NAMESPACE:
        words.append("[\\fB\\-\\-ns\\fR \\fIPID\\fR]")
    if path:
        words.append(_bold(path))
    for piece in _usage_pieces(ctx):
        words.append("[\\fIOPTIONS\\fR]" if piece == "[OPTIONS]" else _roff(piece))
    return [".SH SYNOPSIS", " ".join(words)]


# Every variable shmctl reads (a test greps the code for os.environ and checks each is here).
ENVIRONMENT = [
    ("COLUMNS", "The width tables fit into, as util-linux reads it; else the terminal's real width."),
    ("NO_COLOR", "Set to anything: no colour on a terminal."),
    ("TZ", "The time zone of text times (--time-format); JSON times carry their UTC offset."),
    ("SHMCTL_DEBUG", "Set to anything: an internal error shows its traceback."),
    ("SHMCTL_LOCK_DIR", "The directory of write's locks (default /run/shmctl for root, "
                        "$XDG_RUNTIME_DIR/shmctl or $TMPDIR/shmctl-UID for others); it must be the user's own, "
                        "mode 0700."),
    ("SHMCTL_LOCK_TIMEOUT", "Seconds a write waits for another shmctl write to the same segment (default 30); "
                            "then exit 5."),
    ("SHMCTL_SYSCTL_DIR", "The directory limits --persist writes 60-shmctl.conf to (default /etc/sysctl.d)."),
    ("SHMCTL_ETC_DIR", "The directory doctor reads logind.conf(.d) and login.defs from (default /etc); /run, "
                       "/usr/lib and /usr/local/lib are taken beside it."),
    ("TERM", "dumb: no colour on a terminal, as NO_COLOR."),
    ("XDG_RUNTIME_DIR", "Where a non-root user's write locks live, when it is a directory of theirs, mode 0700."),
    ("TMPDIR", "Where a non-root user's write locks live otherwise (default /tmp)."),
    ("SHMCTL_ADDRESS", "Set by attach for COMMAND: the address of the segment held."),
    ("_SHMCTL_COMPLETE, COMP_WORDS, COMP_CWORD, COMP_WORDBREAKS, _SHMCTL_WORD",
     "Set by the completion scripts (shmctl completion) when the shell asks shmctl for the words it may "
     "complete: the line, the word, and where bash splits words."),
]

FILES_USED = [
    ("/proc/sysvipc/shm", "Every SysV segment of the IPC namespace, whatever its mode."),
    ("/dev/shm", "POSIX shared-memory objects (a tmpfs per mount namespace); sem.* are semaphores."),
    ("/proc/PID/maps", "Each process's mappings: who has a segment attached, and the mmap segments."),
    ("/proc/PID/map_files", "Anonymous and memfd segments, opened through a mapping (root)."),
    ("/proc/sys/kernel/shm*", "shmmax, shmall, shmmni and shm_rmid_forced of the IPC namespace."),
    ("/sys/kernel/mm/hugepages", "The huge page pools, one directory per page size."),
    ("/etc/systemd/logind.conf", "doctor: RemoveIPC=, with the logind.conf.d drop-ins of /etc, /run, /usr/local/lib "
                                 "and /usr/lib (systemd's order)."),
    ("/etc/login.defs", "doctor: SYS_UID_MAX or UID_MIN, which users are system users."),
    ("/etc/sysctl.d/60-shmctl.conf", "What limits set --persist and limits hugepages --persist write."),
    ("/run/shmctl", "root's write locks (see SHMCTL_LOCK_DIR)."),
]

SEE_ALSO = ["ipcs(1)", "ipcrm(1)", "ipcmk(1)", "lsipc(1)", "lsfd(1)", "shmget(2)", "shmctl(2)", "shm_open(3)",
            "mmap(2)", "proc(5)"]


def _reference(name: str) -> str:
    page, section = name[:-1].split("(")
    return f"\\fB{_roff(page)}\\fR({section})"


def _see_also(path: str) -> List[str]:
    ours = [f"{page_name(p)}(1)" for p in ["", *[p for p, _ in every_command()]] if p != path]
    return [".SH SEE ALSO", ",\n".join(_reference(n) for n in ours + SEE_ALSO)]


# What a page's line holds at 80 columns (MANWIDTH=80): the section indent (7) and the example's own (4).
PAGE_WIDTH = 80
EXAMPLE_WIDTH = PAGE_WIDTH - 7 - 4


def _spaces_outside_quotes(line: str) -> List[int]:
    found, quote = [], ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == " ":
            found.append(i)
    return found


def example_lines(line: str, width: int = EXAMPLE_WIDTH) -> List[str]:
    """An example command as the page shows it: longer than WIDTH, it goes on over shell continuation
    lines (` \\`, then 4 spaces), broken at spaces outside quotes; still one command when pasted."""
    lines = []
    while len(line) > width:
        cuts = [i for i in _spaces_outside_quotes(line) if 4 < i <= width - 2]
        if not cuts:
            break
        lines.append(line[:cuts[-1]] + " \\")
        line = "    " + line[cuts[-1] + 1:]
    return lines + [line]


def _examples(path: str) -> List[str]:
    out = [".SH EXAMPLES"]
    for line, why in EXAMPLES.get(path, []):
        out += [".PP", _roff(why), ".RS 4", ".nf"] + [f"\\fB{_roff(part)}\\fR" for part in example_lines(line)]
        out += [".fi", ".RE"]
    return out


def _common_sections(path: str) -> List[str]:
    out = [".SH EXIT STATUS"] + _tagged([(_bold(code), meaning) for code, meaning in exit_codes()])
    out += [".SH ENVIRONMENT"] + _tagged([(_bold(name), text) for name, text in ENVIRONMENT])
    out += [".SH FILES"] + _tagged([(f"\\fI{_roff(name)}\\fR", text) for name, text in FILES_USED])
    return out + _examples(path) + _see_also(path)


def _head(path: str, summary: str) -> List[str]:
    """.TH and NAME; no hyphenation and a ragged right margin (`.nh`, `.ad l`), so that no page, option or
    file name is ever broken at the end of a line."""
    name = page_name(path)
    return [f'.TH {name.upper()} 1 "{page_date()}" "shmctl {__version__}" "User Commands"', ".nh", ".ad l",
            ".SH NAME", f"{_roff(name)} \\- {_roff(whatis_entry(summary))}"]


# How long a short description may be: whole in NAME (the whatis line) and in --help's command list.
WHATIS_MAX = 60


def _first_sentence(text: str) -> str:
    paragraph = " ".join(inspect.cleandoc(click.unstyle(text or "")).split("\n\n")[0].split())
    match = re.match(r"(.+?[.!?])(?=\s|$)", paragraph)
    return match[1] if match else paragraph


def short(path: str, command: click.Command) -> str:
    """A command's short description: its short_help, else its help's first sentence, whole and without
    the final full stop. One longer than WHATIS_MAX stops docgen rather than being cut."""
    text = " ".join((command.short_help or _first_sentence(command.help)).split()).rstrip(".")
    if len(text) > WHATIS_MAX or not text:
        raise SystemExit(f"shmctl {path}: no short description of at most {WHATIS_MAX} characters "
                         f"(set short_help= on the command): {text!r}")
    return text


def whatis_entry(text: str) -> str:
    """NAME's description as man-pages(7) and util-linux write it: lower case first (not `SysV`)."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def main_page() -> str:
    ctx = _context("")
    out = _head("", "see, create, fill, hold and remove Linux shared memory")
    out += _synopsis("", ctx) + [".SH DESCRIPTION", _paragraphs(cli.help), ".PP",
                                 "This page is \\fBshmctl\\fR(1), the command; \\fBshmctl\\fR(2) is the system "
                                 "call. \\fBman 1 shmctl\\fR shows this page.", ".SH OPTIONS"] + _options(ctx)
    out.append(".SH COMMANDS")
    for path, command in every_command():
        out += [".TP", _bold(f"shmctl {path}"), _roff(short(path, command) + f". See {page_name(path)}(1).")]
    out.append(".SH ADDRESSES")
    out += _tagged([(_bold(form), meaning) for form, meaning in FORMS])
    return "\n".join(out + _common_sections("")) + "\n"


def _columns() -> List[str]:
    return [".SH OUTPUT COLUMNS"] + _tagged([(_bold(name), column.help or "") for name, column in COLUMNS.items()])


def command_page(path: str, command: click.Command) -> str:
    ctx = _context(path)
    out = _head(path, short(path, command)) + _synopsis(path, ctx)
    out += [".SH DESCRIPTION", _paragraphs(command.help)]
    subs = subcommands(command)
    if subs:
        out.append(".SH COMMANDS")
        out += _tagged([(_bold(f"shmctl {path} {sub}"), short(f"{path} {sub}", c) +
                         f". See {page_name(f'{path} {sub}')}(1).") for sub, c in subs])
    out += [".SH OPTIONS"] + _options(ctx)
    if path in ("list", "stat"):
        out += _columns()
    return "\n".join(out + _common_sections(path)) + "\n"


def man_pages() -> Dict[str, Callable[[], str]]:
    pages: Dict[str, Callable[[], str]] = {"man/shmctl.1": main_page}
    for path, command in every_command():
        pages[f"man/{page_name(path)}.1"] = (lambda p=path, c=command: command_page(p, c))
    return pages


COMPLETION_FILES = {"bash": "completions/shmctl.bash", "zsh": "completions/_shmctl", "fish": "completions/shmctl.fish"}


def completion_files() -> Dict[str, Callable[[], str]]:
    return {COMPLETION_FILES[shell]: (lambda s=shell: script(s, cli)) for shell in SHELLS}


def _markdown_table(header: Tuple[str, str], rows: List[Tuple[str, str]], code: bool) -> List[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return lines + [f"| {f'`{key}`' if code else key} | {cell(meaning)} |" for key, meaning in rows]


def compares() -> List[str]:
    """README's "How shmctl compares": built from bench/RESULTS.md (written by bench/run), never typed."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("bench_results", os.path.join(ROOT, "bench", "results.py"))
    results = sys.modules["bench_results"] = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(results)
    path = os.path.join(ROOT, "bench", "RESULTS.md")
    parsed = results.parse(open(path).read()) if os.path.exists(path) else None
    return results.compares_block(parsed)


# README.md's generated blocks: the lines between `<!-- generated: NAME -->` and `<!-- end -->`
README_BLOCKS: Dict[str, Callable[[], List[str]]] = {
    "addresses": lambda: _markdown_table(("address", "meaning"), list(FORMS), code=True),
    "exit-codes": lambda: _markdown_table(("code", "meaning"), exit_codes(), code=False),
    "compares": compares,
}
_BLOCK = re.compile(r"^(<!-- generated: ([a-z-]+) -->\n)(.*?)(^<!-- end -->$)", re.M | re.S)


def readme() -> str:
    """README.md with every generated block written anew (an unknown block name is an error)."""
    text = open(os.path.join(ROOT, "README.md")).read()
    found = set()

    def block(match: "re.Match[str]") -> str:
        name = match[2]
        if name not in README_BLOCKS:
            raise SystemExit(f"README.md: unknown generated block '{name}'")
        found.add(name)
        return match[1] + "\n".join(README_BLOCKS[name]()) + "\n" + match[4]

    text = _BLOCK.sub(block, text)
    missing = set(README_BLOCKS) - found
    if missing:
        raise SystemExit(f"README.md: no generated block for {', '.join(sorted(missing))}")
    return text


def generated() -> Dict[str, Callable[[], str]]:
    """Every generated file, relative to the checkout: the man pages, the completions, README.md."""
    return {**man_pages(), **completion_files(), "README.md": readme}


def stray(files: Dict[str, Callable[[], str]]) -> List[str]:
    """Files in man/ and completions/ that nothing generates any more."""
    found = []
    for folder in ("man", "completions"):
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            if f"{folder}/{name}" not in files:
                found.append(f"{folder}/{name}")
    return found


def main(argv: List[str]) -> int:
    check = "--check" in argv
    files = generated()
    stale = []
    for relative, make in files.items():
        path = os.path.join(ROOT, relative)
        text = make()
        current = open(path).read() if os.path.exists(path) else None
        if current == text:
            continue
        if check:
            stale.append(relative)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
            print(f"wrote {relative}")
    for relative in stray(files):
        if check:
            stale.append(f"{relative} (no longer generated)")
        else:
            os.remove(os.path.join(ROOT, relative))
            print(f"removed {relative}")
    if stale:
        print(f"out of date (run {TOOL}): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
