r"""Live shell completion: click's protocol (the shell calls `shmctl` back with
_SHMCTL_COMPLETE=SHELL_complete, COMP_WORDS and COMP_CWORD), with scripts of our own where
click's fall short for shmctl's words, and the completers of shmctl's arguments.

What the scripts do better than click's (8.4):
- bash splits words at `:` and `=` (COMP_WORDBREAKS): `sysv:12` reaches a completion function
  as three words. Our bash script sends the line up to the cursor instead (COMP_CWORD empty:
  "the last word of the line"), and takes back from each candidate what bash keeps before
  its own current word.
- candidates are quoted for the shell (printf %q), read with `read -r`/mapfile (a backslash
  stays one), and never glob: an address printed as `posix:/a\x0ab` reaches shmctl as it was
  printed, and names the same object.
- `--opt=VALUE` words get back candidates with their `--opt=`.

Every candidate a completer returns is escaped (address.printable): a newline, an escape
sequence or a quote in a segment's name can neither split a candidate nor reach the shell.
Nothing here imports rich or psutil, and nothing scans /proc/PID/maps unless the word being
completed starts with `mmap:`.
"""
from __future__ import annotations

import os

import click

VAR = "_SHMCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

BASH = r"""# bash completion for shmctl: live, answered by shmctl itself (`shmctl completion bash`)
_shmctl_completion() {
    local line cur=${COMP_WORDS[COMP_CWORD]} strip= item value nospace=
    local -a items
    if [[ -n ${COMP_LINE+set} ]]; then
        line=${COMP_LINE:0:COMP_POINT}
    else
        local IFS=' '
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}"
    fi
    # bash split the word at ':' or '=': keep what it holds before its own current word
    local word=${line##*[[:space:]]}
    [[ $word == *"$cur" ]] && strip=${word%%"$cur"}
    mapfile -t items < <(env COMP_WORDS="$line" COMP_CWORD= %(complete_var)s=bash_complete "$1" 2>/dev/null)
    COMPREPLY=()
    for item in "${items[@]}"; do
        value=${item#*,}
        case ${item%%%%,*} in
            file) COMPREPLY=(); compopt -o default; return 0 ;;
            dir) COMPREPLY=(); compopt -o dirnames; return 0 ;;
            plain)
                [[ $value == *[:=,] ]] && nospace=1
                [[ $value == *[^A-Za-z0-9_,+:=./@%%-]* ]] && printf -v value '%%q' "$value"
                [[ -n $strip && $value == "$strip"* ]] && value=${value#"$strip"}
                COMPREPLY+=("$value") ;;
        esac
    done
    [[ -n $nospace ]] && compopt -o nospace 2>/dev/null
    return 0
}

complete -o nosort -F _shmctl_completion %(prog_name)s
"""

ZSH = r"""#compdef %(prog_name)s
# zsh completion for shmctl: live, answered by shmctl itself (`shmctl completion zsh`)

%(complete_func)s() {
    local -a completions completions_with_descriptions response
    local type key descr
    (( ! $+commands[%(prog_name)s] )) && return 1

    response=("${(@f)$(env COMP_WORDS="${words[*]}" COMP_CWORD=$((CURRENT-1)) \
%(complete_var)s=zsh_complete %(prog_name)s 2>/dev/null)}")

    for type key descr in ${response}; do
        if [[ "$type" == "plain" ]]; then
            if [[ "$descr" == "_" ]]; then
                completions+=("$key")
            else
                completions_with_descriptions+=("$key":"$descr")
            fi
        elif [[ "$type" == "dir" ]]; then
            _path_files -/
        elif [[ "$type" == "file" ]]; then
            _path_files -f
        fi
    done

    if [ -n "$completions_with_descriptions" ]; then
        _describe -V unsorted completions_with_descriptions -U
    fi

    if [ -n "$completions" ]; then
        compadd -U -V unsorted -a completions
    fi
}

if [[ $zsh_eval_context[-1] == loadautofunc ]]; then
    %(complete_func)s "$@"
else
    compdef %(complete_func)s %(prog_name)s
fi
"""

FISH = r"""# fish completion for shmctl: live, answered by shmctl itself (`shmctl completion fish`)
function %(complete_func)s
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -t) %(prog_name)s 2>/dev/null)
    for completion in $response
        set -l metadata (string split -m 2 \t -- $completion)
        if test "$metadata[1]" = dir
            __fish_complete_directories $metadata[2]
        else if test "$metadata[1]" = file
            __fish_complete_path $metadata[2]
        else if test "$metadata[1]" = plain
            if test -n "$metadata[3]"
                printf '%%s\t%%s\n' $metadata[2] $metadata[3]
            else
                printf '%%s\n' $metadata[2]
            end
        end
    end
end

complete --no-files --command %(prog_name)s --arguments "(%(complete_func)s)"
"""


def _one_line(text: str) -> str:
    from ..address import printable
    return printable(" ".join((text or "").split()))


class _Shmctl:
    """What the three shells share: the candidates of `--opt=VALUE` keep their `--opt=`,
    and no value or help can break the line-based protocol."""

    word_prefix = ""

    def get_completions(self, args, incomplete):
        self.word_prefix = ""
        if incomplete.startswith("-") and "=" in incomplete:
            self.word_prefix = incomplete.partition("=")[0] + "="
        return super().get_completions(args, incomplete)

    def value(self, item) -> str:
        value = str(item.value)
        if item.type == "plain" and self.word_prefix and not value.startswith("-"):
            value = self.word_prefix + value
        return _one_line(value) if "\n" in value or "\r" in value else value


def _shell_classes():
    from click.shell_completion import BashComplete, FishComplete, ZshComplete, split_arg_string

    class Bash(_Shmctl, BashComplete):
        source_template = BASH

        def source(self) -> str:  # click's probes the bash version in a subprocess: not needed
            return self.source_template % self.source_vars()

        def get_completion_args(self):
            if os.environ.get("COMP_CWORD", "") != "":
                return super().get_completion_args()
            line = os.environ.get("COMP_WORDS", "")  # our script: the line up to the cursor
            words = split_arg_string(line)
            if not line or line[-1].isspace() and not (words and words[-1].endswith(line[-1])):
                words.append("")
            return words[1:-1], words[-1] if words else ""

        def format_completion(self, item) -> str:
            return f"{item.type},{self.value(item)}"

    class Zsh(_Shmctl, ZshComplete):
        source_template = ZSH

        def format_completion(self, item) -> str:
            help_ = _one_line(item.help) or "_"
            value = self.value(item)
            value = value.replace(":", r"\:") if help_ != "_" else value
            return f"{item.type}\n{value}\n{help_}"

    class Fish(_Shmctl, FishComplete):
        source_template = FISH

        def format_completion(self, item) -> str:
            help_ = _one_line(item.help)
            return f"{item.type}\t{self.value(item)}" + (f"\t{help_}" if help_ else "")

    return {"bash": Bash, "zsh": Zsh, "fish": Fish}


def register() -> None:
    """Our shell classes in place of click's, for the completion run that is starting."""
    from click.shell_completion import add_completion_class
    for name, cls in _shell_classes().items():
        add_completion_class(cls, name)


def script(shell: str, root: click.Command, prog_name: str = "shmctl") -> str:
    """The completion script of a shell for the command tree `root`, as `shmctl completion
    SHELL` prints it and completions/ holds it."""
    cls = _shell_classes()[shell]
    return cls(root, {}, prog_name, VAR).source()


# --- completers of shmctl's parameters (shell_complete of params.py's types and options) ---

def _items(pairs, incomplete: str = "") -> list:
    from click.shell_completion import CompletionItem
    return [CompletionItem(value, help=about or None) for value, about in pairs if value.startswith(incomplete)]


def addresses(incomplete: str, ns_pid=None) -> list:
    """The addresses that start with `incomplete`, as the command would see them: from
    --ns PID's namespaces when given (the root group's callback, which would enter them, does
    not run in a completion). Namespaces this process may not look from offer nothing."""
    from .. import kinds
    from ..errors import ShmctlError
    if ns_pid is not None:
        try:
            kinds.look_from(ns_pid)
        except ShmctlError:
            return []
    return _items(kinds.complete_addresses(incomplete, kinds.View()))


def columns(ctx, param, incomplete: str) -> list:
    """Column names for -o/--sort: after the last comma too, and after a leading `+`."""
    from ..fields import COLUMNS
    many = param is None or param.name == "columns"  # -o takes a list and `+`; --sort one name
    head, comma, last = incomplete.rpartition(",") if many else ("", "", incomplete)
    plus = "+" if many and not comma and last.startswith("+") else ""
    before = head + comma + plus
    last = last[len(plus):].upper()
    chosen = {c.strip().lstrip("+").upper() for c in head.split(",")}
    return _items([(before + name, column.help) for name, column in COLUMNS.items()
                   if name.startswith(last) and name not in chosen])


def users(ctx, param, incomplete: str) -> list:
    import pwd
    return _items(sorted({(p.pw_name, f"uid {p.pw_uid}") for p in pwd.getpwall()}), incomplete)


def groups(ctx, param, incomplete: str) -> list:
    import grp
    return _items(sorted({(g.gr_name, f"gid {g.gr_gid}") for g in grp.getgrall()}), incomplete)


def sysctl_assignments(ctx, param, incomplete: str) -> list:
    """`shmmax=` ... for `limits set`: the names, then nothing more to guess."""
    from ..limits.setting import HINTS, KEYS
    if "=" in incomplete:
        return []
    return _items([(f"{name}=", HINTS.get(name, "")) for name in KEYS], incomplete)


def files(ctx, param, incomplete: str) -> list:
    from click.shell_completion import CompletionItem
    return [CompletionItem(incomplete, type="file")]


def command_words(ctx, param, incomplete: str) -> list:
    """`shmctl help COMMAND [SUB]`: the commands, then a group's subcommands."""
    context = ctx.find_root()
    command = context.command
    for word in ctx.params.get(param.name) or ():
        command = command.get_command(context, word) if isinstance(command, click.Group) else None
        if command is None:
            return []
        context = click.Context(command, info_name=word, parent=context)
    if not isinstance(command, click.Group):
        return []
    names = [n for n in command.list_commands(context) if n.startswith(incomplete)]
    return _items([(n, "") for n in names])


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion_command(ctx: click.Context, shell: str):
    """Print the shell completion script for bash, zsh or fish.

    pip installs the three (share/bash-completion/completions/shmctl,
    share/zsh/site-functions/_shmctl, share/fish/vendor_completions.d/shmctl.fish); this
    prints the same bytes, for a shell or a prefix that does not read those. The scripts are
    live: they ask shmctl for the addresses of the segments that exist now, the columns of
    -o, users, sysctl names and files.
    """
    click.echo(script(shell, ctx.find_root().command), nl=False)
