"""Generate man/shmctl.1, completions/ and README.md's generated blocks from the click tree,
errors.Exit and address.FORMS. A development tool, not part of the installed package:

    python tools/docgen.py [--check]

--check regenerates in memory and exits 1 if a checked-in file differs (tests run it).
"""
from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Callable, Dict, List, Tuple

import click

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere: the package of this checkout
    sys.path.insert(0, ROOT)

from shmctl_cli import KINDS, __version__  # noqa: E402
from shmctl_cli.address import FORMS  # noqa: E402
from shmctl_cli.cli import all_commands, cli  # noqa: E402
from shmctl_cli.errors import Exit  # noqa: E402

TOOL = "python tools/docgen.py"


def exit_codes() -> List[Tuple[str, str]]:
    return [(str(code.value), code.meaning) for code in Exit]


def _roff(text: str) -> str:
    text = text.replace("\\", "\\e").replace("-", "\\-")
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


def _option_names(param: click.Parameter) -> List[str]:
    return list(param.opts) + list(param.secondary_opts)


def _option_line(param: click.Option) -> Tuple[str, str]:
    names = ", ".join(_option_names(param))
    if not param.is_flag and param.metavar:
        names += f" {param.metavar}"
    elif not param.is_flag:
        names += f" {param.type.name.upper()}"
    return names, param.help or ""


def _usage_args(command: click.Command) -> str:
    args = [p for p in command.params if isinstance(p, click.Argument)]
    return " ".join(p.human_readable_name.upper() + ("..." if p.nargs == -1 else "") for p in args)


def man_page() -> str:
    out = [f'.TH SHMCTL 1 "" "shmctl {__version__}" "User Commands"', ".SH NAME",
           "shmctl \\- see, create, fill, hold and remove Linux shared memory (SysV, POSIX, mmap)",
           ".SH SYNOPSIS", ".B shmctl",
           "[\\fB\\-\\-version\\fR] [\\fB\\-\\-help\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR]...",
           ".SH DESCRIPTION", _paragraphs(cli.help), ".SH ADDRESSES"]
    for form, meaning in FORMS:
        out += [".TP", f"\\fB{_roff(form)}\\fR", _roff(meaning)]
    out.append(".SH COMMANDS")
    for path, command in every_command():
        words = f"shmctl {path} [OPTIONS] {_usage_args(command)}".rstrip()
        if isinstance(command, click.Group):
            words = f"shmctl {path} [OPTIONS] [COMMAND]"
        out += [f".SS {words}", _paragraphs(command.help)]
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                names, text = _option_line(param)
                if isinstance(param.type, click.Choice):
                    text += f" One of: {', '.join(param.type.choices)}."
                out += [".TP", f"\\fB{_roff(names)}\\fR", _roff(text)]
    out.append(".SH EXIT STATUS")
    for code, meaning in exit_codes():
        out += [".TP", f"\\fB{code}\\fR", _roff(meaning)]
    out += [".SH ENVIRONMENT", ".TP", "\\fBNO_COLOR\\fR", "Set to anything: no colour on a terminal.",
            ".TP", "\\fBSHMCTL_DEBUG\\fR", "Set to anything: an internal error shows its traceback.",
            ".SH SEE ALSO",
            "\\fBipcs\\fR(1), \\fBipcrm\\fR(1), \\fBipcmk\\fR(1), \\fBlsipc\\fR(1), \\fBshmget\\fR(2),",
            "\\fBshm_open\\fR(3), \\fBmmap\\fR(2), \\fBproc\\fR(5)"]
    return "\n".join(out) + "\n"


def _command_options(command: click.Command) -> Tuple[List[str], Dict[str, List[str]]]:
    """Every option spelling, and the choices of options that take one of a set."""
    options, choices = ["--help"], {}
    for param in command.params:
        if isinstance(param, click.Option):
            options += _option_names(param)
            if isinstance(param.type, click.Choice):
                for opt in param.opts:
                    choices[opt] = list(param.type.choices)
    return options, choices


ADDRESS_PREFIXES = [f"{kind}:" for kind in KINDS] + ["sysv:key=", "sysv:ftok="]
SYSCTL_WORDS = ["shmmax=", "shmall=", "shmmni=", "shm_rmid_forced="]


def positional_words(path: str, command: click.Command) -> List[str]:
    """What a bare word completes to: addresses, sysctl assignments, or nothing known."""
    if path == "limits set":
        return SYSCTL_WORDS
    names = [p.name for p in command.params if isinstance(p, click.Argument)]
    return ADDRESS_PREFIXES if any(n and "address" in n for n in names) else []


def _bash_body(path: str, command: click.Command, indent: str) -> List[str]:
    options, choices = _command_options(command)
    lines = []
    if choices:
        lines.append(f'{indent}case "$prev" in')
        for opt, values in choices.items():
            lines.append(f'{indent}    {opt}) COMPREPLY=($(compgen -W "{" ".join(values)}" -- "$cur")); return;;')
        lines.append(f"{indent}esac")
    words = positional_words(path, command)
    lines.append(f'{indent}if [[ $cur == -* ]]; then COMPREPLY=($(compgen -W "{" ".join(options)}" -- "$cur"))')
    if words:
        lines.append(f'{indent}else COMPREPLY=($(compgen -W "{" ".join(words)}" -- "$cur")); compopt -o nospace')
    else:
        lines.append(f'{indent}else COMPREPLY=($(compgen -f -- "$cur"))')
    lines += [f"{indent}fi", f"{indent};;"]
    return lines


def bash() -> str:
    lines = [f"# bash completion for shmctl, generated by `{TOOL}`",
             "_shmctl() {",
             "    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]} cword=$COMP_CWORD",
             '    local -a words=("${COMP_WORDS[@]}")',
             f'    local commands="{" ".join(n for n, _ in commands())}"',
             '    if [[ $cword -eq 1 ]]; then',
             '        COMPREPLY=($(compgen -W "$commands --help --version" -- "$cur")); return', "    fi",
             '    case "${words[1]}" in']
    for name, command in commands():
        subs = subcommands(command)
        lines.append(f"        {name})")
        if subs:
            options, _ = _command_options(command)
            lines += ["            if [[ $cword -eq 2 ]]; then",
                      f'                COMPREPLY=($(compgen -W "{" ".join([n for n, _ in subs] + options)}" '
                      '-- "$cur")); return',
                      "            fi", '            case "${words[2]}" in']
            for sub, subcommand in subs:
                lines.append(f"                {sub})")
                lines += _bash_body(f"{name} {sub}", subcommand, " " * 20)
            lines.append("                *)")
            lines += _bash_body(name, command, " " * 20)
            lines += ["            esac", "            ;;"]
        else:
            lines += _bash_body(name, command, " " * 12)
    lines += ["    esac", "}", "complete -F _shmctl shmctl"]
    return "\n".join(lines) + "\n"


def _zsh_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "'\\''").replace("[", "\\[").replace("]", "\\]") \
        .replace(":", "\\:")


def _zsh_arguments(path: str, command: click.Command, indent: str) -> List[str]:
    specs = ["'--help[show help]'"]
    for param in command.params:
        if isinstance(param, click.Option):
            action = ""
            if isinstance(param.type, click.Choice):
                action = f":{param.name}:({' '.join(param.type.choices)})"
            elif not param.is_flag:
                action = f":{param.name}:"
            for opt in _option_names(param):
                specs.append(f"'{opt}[{_zsh_escape(param.help or '')}]{action}'")
    words = positional_words(path, command)
    specs.append(f"'*:argument:({' '.join(words)})'" if words else "'*:file:_files'")
    return [f"{indent}_arguments \\"] + [f"{indent}  {spec} \\" for spec in specs[:-1]] + [f"{indent}  {specs[-1]}"]


def _zsh_describe(pairs: List[Tuple[str, click.Command]], indent: str) -> List[str]:
    lines = [f"{indent}local -a commands", f"{indent}commands=("]
    lines += [f"{indent}  '{name}:{_zsh_escape(command.get_short_help_str(80))}'" for name, command in pairs]
    return lines + [f"{indent})", f"{indent}_describe 'command' commands"]


def zsh() -> str:
    lines = ["#compdef shmctl", f"# zsh completion for shmctl, generated by `{TOOL}`",
             "_shmctl() {", "  if (( CURRENT == 2 )); then"]
    lines += _zsh_describe(commands(), "    ") + ["    return", "  fi", "  case $words[2] in"]
    for name, command in commands():
        subs = subcommands(command)
        lines.append(f"    {name})")
        if subs:
            lines += ["      if (( CURRENT == 3 )); then"] + _zsh_describe(subs, "        ") + \
                     ["        return", "      fi", "      case $words[3] in"]
            for sub, subcommand in subs:
                lines += [f"        {sub})"] + _zsh_arguments(f"{name} {sub}", subcommand, "          ") + \
                         ["          ;;"]
            lines += ["      esac", "      ;;"]
        else:
            lines += _zsh_arguments(name, command, "      ") + ["      ;;"]
    lines += ["  esac", "}", '_shmctl "$@"']
    return "\n".join(lines) + "\n"


def _fish_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("'", "\\'")


def _fish_options(condition: str, path: str, command: click.Command) -> List[str]:
    lines = []
    for param in command.params:
        if not isinstance(param, click.Option):
            continue
        spec = f"complete -c shmctl -n '{condition}'"
        for opt in _option_names(param):
            spec += f" -l {opt[2:]}" if opt.startswith("--") else f" -s {opt[1:]}"
        if isinstance(param.type, click.Choice):
            spec += f" -x -a '{' '.join(param.type.choices)}'"
        elif not param.is_flag:
            spec += " -r"
        lines.append(spec + f" -d '{_fish_escape(param.help or '')}'")
    words = positional_words(path, command)
    if words:
        lines.append(f"complete -c shmctl -n '{condition}' -a '{' '.join(words)}'")
    return lines


def fish() -> str:
    lines = [f"# fish completion for shmctl, generated by `{TOOL}`",
             "complete -c shmctl -f", "complete -c shmctl -n __fish_use_subcommand -l version -d 'show the version'"]
    for name, command in commands():
        lines.append(f"complete -c shmctl -n __fish_use_subcommand -a {name} "
                     f"-d '{_fish_escape(command.get_short_help_str(80))}'")
        subs = subcommands(command)
        here = f"__fish_seen_subcommand_from {name}"
        if subs:
            names = " ".join(sub for sub, _ in subs)
            for sub, subcommand in subs:
                lines.append(f"complete -c shmctl -n '{here}; and not __fish_seen_subcommand_from {names}' -a {sub} "
                             f"-d '{_fish_escape(subcommand.get_short_help_str(80))}'")
                lines += _fish_options(f"{here}; and __fish_seen_subcommand_from {sub}", f"{name} {sub}", subcommand)
            here += f"; and not __fish_seen_subcommand_from {names}"
        lines += _fish_options(here, name, command)
    return "\n".join(lines) + "\n"


def _markdown_table(header: Tuple[str, str], rows: List[Tuple[str, str]], code: bool) -> List[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    return lines + [f"| {f'`{key}`' if code else key} | {cell(meaning)} |" for key, meaning in rows]


# README.md's generated blocks: the lines between `<!-- generated: NAME -->` and `<!-- end -->`
README_BLOCKS: Dict[str, Callable[[], List[str]]] = {
    "addresses": lambda: _markdown_table(("address", "meaning"), list(FORMS), code=True),
    "exit-codes": lambda: _markdown_table(("code", "meaning"), exit_codes(), code=False),
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


FILES = {"man/shmctl.1": man_page, "completions/shmctl.bash": bash, "completions/_shmctl": zsh,
         "completions/shmctl.fish": fish, "README.md": readme}


def main(argv: List[str]) -> int:
    check = "--check" in argv
    stale = []
    for relative, make in FILES.items():
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
    if stale:
        print(f"out of date (run {TOOL}): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
