r"""Live shell completion: click's protocol (the shell calls `shmctl` back with
_SHMCTL_COMPLETE=SHELL_complete, COMP_WORDS and COMP_CWORD), with scripts of our own where
click's fall short for shmctl's words, and the completers of shmctl's arguments.

What the scripts do better than click's (8.4):
- bash splits words at `:` and `=` (COMP_WORDBREAKS): `sysv:12` reaches a completion function
  as three words. Our bash script sends the line up to the cursor instead (COMP_CWORD empty:
  "the last word of the line") with COMP_WORDBREAKS, and shmctl reads the line as bash and
  readline do (BashLine): which word is completed, what of it readline replaces (after the
  last unquoted break character, or after a quote left open), and answers with exactly that
  part of each candidate, quoted for where it goes (backslashes, or inside the open quote).
  bash itself quotes nothing: no `$'...'` in the C locale, no prefix given twice.
- candidates are read with mapfile (a backslash stays one) and never glob: an address printed
  as `posix:/a\x0ab` reaches shmctl as it was printed, and names the same object.
- zsh: `_describe` takes `\\` and `\:` in a candidate as `\` and `:` (both are escaped).
- fish: the word is unescaped by fish itself (`string unescape`: `\x20` is a space there).
- `--opt=VALUE` words get back candidates with their `--opt=`.
- an address typed as a pipe prints it (`posix:/a\x20`, unquoted: the shell would make it
  `posix:/ax20`) is matched as typed too (kinds.base.Typed), and completed in that form.
- types `dir` (a directory option) and `command` (attach -- COMMAND) beside click's `file`.

Every candidate a completer returns is escaped (address.printable): a newline, an escape
sequence or a quote in a segment's name can neither split a candidate nor reach the shell.
Nothing here imports rich or psutil, and nothing scans /proc/PID/maps unless the word being
completed starts with `mmap:`.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from operator import itemgetter
from typing import List, Optional, Tuple

import click

VAR = "_SHMCTL_COMPLETE"
SHELLS = ("bash", "zsh", "fish")

BASH = r"""# bash completion for shmctl: live, answered by shmctl itself (`shmctl completion bash`)
_shmctl_completion() {
    local line item nospace=
    local -a items
    if [[ -n ${COMP_LINE+set} ]]; then
        line=${COMP_LINE:0:COMP_POINT}
    else
        local IFS=' '
        line="${COMP_WORDS[*]:0:COMP_CWORD+1}"
    fi
    # shmctl answers with what replaces bash's current word, quoted already
    mapfile -t items < <(env COMP_WORDS="$line" COMP_CWORD= COMP_WORDBREAKS="$COMP_WORDBREAKS" \
%(complete_var)s=bash_complete "$1" 2>/dev/null)
    COMPREPLY=()
    for item in "${items[@]}"; do
        case ${item%%%%,*} in
            file) COMPREPLY=(); compopt -o default; return 0 ;;
            dir) COMPREPLY=(); compopt -o dirnames; return 0 ;;
            command) mapfile -t COMPREPLY < <(compgen -c -- "${COMP_WORDS[COMP_CWORD]}"); return 0 ;;
            plain)
                item=${item#*,}
                [[ $item == *[:=,] ]] && nospace=1
                COMPREPLY+=("$item") ;;
        esac
    done
    [[ -n $nospace ]] && compopt -o nospace 2>/dev/null
    return 0
}

complete -o nosort -F _shmctl_completion %(prog_name)s
"""

ZSH = r"""#compdef %(prog_name)s
# zsh completion for shmctl: live, answered by shmctl itself (`shmctl completion zsh`)

# named as the file: autoloaded, the file's body defines it anew and calls it, and every later
# Tab calls it directly (a function of another name would be compdef'd on the second Tab, and
# that Tab would complete nothing)
_%(prog_name)s() {
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
                # shmctl escaped `\` and `:` in the key for _describe
                completions_with_descriptions+=("$key":"$descr")
            fi
        elif [[ "$type" == "dir" ]]; then
            _path_files -/
        elif [[ "$type" == "file" ]]; then
            _path_files -f
        elif [[ "$type" == "command" ]]; then
            _command_names -e
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
    _%(prog_name)s "$@"
else
    compdef _%(prog_name)s %(prog_name)s
fi
"""

FISH = r"""# fish completion for shmctl: live, answered by shmctl itself (`shmctl completion fish`)
function %(complete_func)s
    set -l response (env %(complete_var)s=fish_complete COMP_WORDS=(commandline -cp) \
COMP_CWORD=(commandline -ct) _SHMCTL_WORD=(commandline -ct | string unescape) %(prog_name)s 2>/dev/null)
    for completion in $response
        set -l metadata (string split -m 2 \t -- $completion)
        if test "$metadata[1]" = dir
            __fish_complete_directories $metadata[2]
        else if test "$metadata[1]" = file
            __fish_complete_path $metadata[2]
        else if test "$metadata[1]" = command
            __fish_complete_command
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


class _Request:
    """What the shell class learnt of the word being completed, for the completers (click
    hands them only the value): the word as typed where it differs (Typed), whether the
    shell shows descriptions, and the words before it."""
    literal: Optional[str] = None
    describe = True
    args: Tuple[str, ...] = ()


REQUEST = _Request()


class BashLine:
    r"""A bash command line up to the cursor, read as bash and readline read it: its words
    (values: quotes and backslashes removed, `words`; as typed, `raw_words`); where readline's
    replacement starts in the last one (after the last unquoted COMP_WORDBREAKS character, or
    after a quote left open, which readline then closes), what of the word lies before it as
    a value (`head`) and as typed (`raw_head`); and the quote left open (`quote`)."""

    def __init__(self, line: str, breaks: str = ""):
        self.words: List[str] = []
        self.raw_words: List[str] = []
        self.head = self.raw_head = self.quote = ""
        self._read(line, set(breaks) - set(" \t\n\"'\\"))

    def _read(self, line: str, breaks: set) -> None:
        value: List[str] = []
        start, quote, i = None, "", 0
        after_break = after_quote = (0, 0)  # (length of the value, index in the line) there
        while i < len(line):
            c = line[i]
            if start is None and c not in " \t\n":
                start, after_break = i, (0, i)
            if start is None:
                pass
            elif quote:
                escaped = quote == '"' and c == "\\" and line[i + 1:i + 2] in ('$', '`', '"', "\\", "\n")
                if c == quote:
                    quote = ""
                else:
                    i += escaped
                    value.append(line[i])
            elif c == "\\":  # the escaped character is quoted: never a break
                i += 1
                value.append(line[i:i + 1])
            elif c in " \t\n":
                self._word(value, line[start:i])
                value, start = [], None
            elif c in "'\"":
                quote, after_quote = c, (len(value), i + 1)
            else:
                value.append(c)
                if c in breaks:
                    after_break = (len(value), i + 1)
            i += 1
        self._word(value, line[start:] if start is not None else "")
        if start is not None:
            length, at = after_quote if quote else after_break
            self.quote, self.raw_head, self.head = quote, line[start:at], "".join(value[:length])

    def _word(self, value: List[str], raw: str) -> None:
        self.words.append("".join(value))
        self.raw_words.append(raw)


# unquoted: a backslash before each ASCII character the shell would take (a regular expression
# of them: C speed, and nothing to do for most names; not beyond ASCII, not a newline, which
# separates candidates)
_SAFE = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_,+:=./@%-\n"


@lru_cache(maxsize=None)
def _special():
    import re
    return re.compile("[" + "".join(re.escape(chr(c)) for c in range(128) if chr(c) not in _SAFE) + "]")


def _backslashed(text: str) -> str:
    return _special().sub(lambda m: "\\" + m[0], text)


def bash_quote(text: str, quote: str = "") -> str:
    """`text` as bash reads it back where readline puts it: unquoted (a backslash before each
    character the shell would take), or inside a quote left open (readline closes it). The
    text is printable already (address.printable): no control character reaches here, and
    characters beyond ASCII are left as they are, whatever the locale."""
    if quote == "'":
        return text.replace("'", "'\\''")
    if quote == '"':
        return "".join("\\" + c if c in '\\$`"' else ("\"'!'\"" if c == "!" else c) for c in text)
    return _backslashed(text)


def _literal(raw: Optional[str]) -> Optional[str]:
    r"""The word as typed, where it differs from its value only by backslashes the shell
    removes (`posix:/a\x20`, unquoted): Typed's second form."""
    if raw and "\\" in raw and not set(raw) & {"'", '"'}:
        return raw
    return None


class Candidate(tuple):
    """(value, help, typed form, type): what click's CompletionItem holds, and which typed form
    the value continues (kinds.base.Typed). A plain tuple: a completion may make thousands."""
    __slots__ = ()
    value, help, form, type = (property(itemgetter(i)) for i in range(4))


class _Shmctl:
    """What the three shells share: the candidates of `--opt=VALUE` keep their `--opt=`,
    and no value or help can break the line-based protocol."""

    word_prefix = ""
    describes = True

    def typed_word(self) -> Optional[str]:
        """The current word as the user typed it (quotes and backslashes kept), if known."""
        return None

    def get_completions(self, args, incomplete):
        self.word_prefix = ""
        literal = _literal(self.typed_word())
        if incomplete.startswith("-") and "=" in incomplete:
            self.word_prefix = incomplete.partition("=")[0] + "="
            literal = literal.partition("=")[2] if literal and literal.startswith(self.word_prefix) else None
        REQUEST.literal, REQUEST.describe, REQUEST.args = literal, self.describes, tuple(args)
        return super().get_completions(args, incomplete)

    def value(self, item) -> str:
        value = str(item.value)
        if item.type == "plain" and self.word_prefix and not value.startswith("-"):
            value = self.word_prefix + value
        return _one_line(value) if "\n" in value or "\r" in value else value


def _shell_classes():
    from click.shell_completion import BashComplete, FishComplete, ZshComplete

    class Bash(_Shmctl, BashComplete):
        source_template = BASH
        describes = False  # bash shows none: no stat for them
        line: Optional[BashLine] = None

        def source(self) -> str:  # click's probes the bash version in a subprocess: not needed
            return self.source_template % self.source_vars()

        def get_completion_args(self):
            if os.environ.get("COMP_CWORD", "") != "":
                return super().get_completion_args()
            # our script: the line up to the cursor, read as bash reads it
            self.line = BashLine(os.environ.get("COMP_WORDS", ""), os.environ.get("COMP_WORDBREAKS", ""))
            return self.line.words[1:-1], self.line.words[-1]

        def typed_word(self):
            return self.line.raw_words[-1] if self.line else None

        def complete(self) -> str:
            args, incomplete = self.get_completion_args()
            items = self.get_completions(args, incomplete)
            line = self.line
            if line is not None and not (self.word_prefix or line.quote) and items and \
                    all(type(item) is Candidate and item[2:] == (0, "plain") for item in items):
                # thousands of addresses: stripped and quoted in C loops
                head, values = line.head, [item[0] for item in items]
                if head:
                    values = [v[len(head):] if v.startswith(head) else v for v in values]
                return _backslashed("plain," + "\nplain,".join(values))
            return "\n".join([self.format_completion(item) for item in items])

        def format_completion(self, item) -> str:
            line = self.line
            if line is None or item.type != "plain":
                return f"{item.type},{self.value(item)}"
            value = self.value(item)
            head = line.raw_head if getattr(item, "form", 0) else line.head
            if head and value.startswith(head):
                value = value[len(head):]
            return "plain," + bash_quote(value, line.quote)

    class Zsh(_Shmctl, ZshComplete):
        source_template = ZSH

        def typed_word(self):
            try:
                return BashLine(os.environ["COMP_WORDS"]).raw_words[int(os.environ["COMP_CWORD"])]
            except (KeyError, ValueError, IndexError):
                return None

        def format_completion(self, item) -> str:
            value = self.value(item)
            help_ = _one_line(item.help) if item.help else ""
            if not help_:  # compadd: the value as it is
                return f"{item.type}\n{value}\n_"
            # _describe reads `\X` as X, and the first other `:` ends the key
            value = value.replace("\\", "\\\\").replace(":", "\\:")
            help_ = help_.replace("\\", "\\\\")
            return f"{item.type}\n{value}\n{help_}"

    class Fish(_Shmctl, FishComplete):
        source_template = FISH

        def get_completion_args(self):
            args, incomplete = super().get_completion_args()
            word = os.environ.get("_SHMCTL_WORD")  # unescaped by fish: `\x20` is a space there
            return args, incomplete if word is None else word

        def typed_word(self):
            return os.environ.get("COMP_CWORD")

        def format_completion(self, item) -> str:
            help_ = _one_line(item.help) if item.help else ""
            return f"{item.type}\t{self.value(item)}" + (f"\t{help_}" if help_ else "")

    return {"bash": Bash, "zsh": Zsh, "fish": Fish}


def register() -> None:
    """Our shell classes in place of click's, for the completion run that is starting."""
    from click.shell_completion import add_completion_class
    for name, cls in _shell_classes().items():
        add_completion_class(cls, name)


def answer(complete) -> None:
    """Run click's completion (`complete`, which prints the answer and exits) with our shell
    classes, then leave at once: the interpreter's teardown of every module imported would
    take a third of a completion's time, and the shell is waiting. An error is no answer."""
    register()
    try:
        complete()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    try:
        sys.stdout.flush()
    except OSError:
        code = code or 1
    os._exit(code)


def script(shell: str, root: click.Command, prog_name: str = "shmctl") -> str:
    """The completion script of a shell for the command tree `root`, as `shmctl completion
    SHELL` prints it and completions/ holds it."""
    cls = _shell_classes()[shell]
    return cls(root, {}, prog_name, VAR).source()


# --- completers of shmctl's parameters (shell_complete of params.py's types and options) ---

def _items(pairs, incomplete: str = "") -> list:
    from click.shell_completion import CompletionItem
    return [CompletionItem(value, help=about or None) for value, about in pairs if value.startswith(incomplete)]


ADDRESS_OPTIONS = {"-m": "shmid", "--shmid": "shmid", "-M": "key", "--shmkey": "key", "--posix": "name"}


def _taken() -> tuple:
    """The addresses already on the line (rm's, and its -m, -M and --posix): not offered
    again. Read from the words themselves: click's parse of a line that ends in an option
    still waiting for its value keeps none of them."""
    from ..address import Address, parse_address
    found, words = [], list(REQUEST.args)
    for before, word in zip([""] + words, words):
        option, equals, value = word.partition("=")
        what = ADDRESS_OPTIONS.get(before) or (ADDRESS_OPTIONS.get(option) if equals else None)
        value = value if equals and not ADDRESS_OPTIONS.get(before) else word
        if what == "shmid":
            found.append(_parsed(lambda: Address.sysv_shmid(_shmid(value))))
        elif what == "key":
            found.append(_parsed(lambda: Address.sysv_key(_key(value))))
        elif what == "name":
            found.append(_parsed(lambda: Address.posix(_name(value))))
        elif ":" in word or word.startswith("/"):
            found.append(_parsed(lambda: parse_address(word)))
    return tuple(a for a in found if a is not None)


def _shmid(text):
    from ..units import parse_count
    return parse_count(text, "shmid", 0, 0x7FFFFFFF)


def _key(text):
    from ..address import parse_key
    return parse_key(text)


def _name(text):
    from ..address import check_posix_name, unescape
    return check_posix_name(unescape(text))


def _parsed(make):
    from ..errors import ShmctlError
    try:
        return make()
    except ShmctlError:
        return None  # a word still being typed: nothing to leave out


def _found(ctx, forms: List[str]) -> list:
    """(candidate, description, typed form) of the segments whose address continues one of
    the typed forms, as the command would see them: from --ns PID's namespaces when given
    (the root group's callback, which would enter them, does not run in a completion).
    Namespaces this process may not look from offer nothing."""
    from .. import kinds
    from ..errors import ShmctlError
    from ..kinds.base import Typed
    ns_pid = ctx.find_root().params.get("ns_pid")
    if ns_pid is not None:
        try:
            kinds.look_from(ns_pid)
        except ShmctlError:
            return []
    return kinds.complete_addresses(Typed(forms, REQUEST.describe, _taken()), kinds.View())


def _forms(incomplete: str) -> List[str]:
    """The word as the shell passes it and, where it differs, as it was typed (Typed)."""
    literal = REQUEST.literal
    return [incomplete] + ([literal] if literal is not None and literal != incomplete else [])


def addresses(ctx, param, incomplete: str) -> list:
    """The addresses of the segments that exist now, in the form that continues what was
    typed; those already on the line left out."""
    return [Candidate((c, about or None, form, "plain")) for c, about, form in _found(ctx, _forms(incomplete))]


def _within(ctx, incomplete: str, head: str, keep=lambda rest: True) -> list:
    """Candidates for an option that takes part of an address (rm -m SHMID, -M KEY, --posix
    NAME): the addresses that continue head + the word, given without the head."""
    found = _found(ctx, [head + form for form in _forms(incomplete)])
    return [Candidate((c[len(head):], about or None, form, "plain")) for c, about, form in found
            if c.startswith(head) and keep(c[len(head):])]


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit()


def shmids(ctx, param, incomplete: str) -> list:
    """rm -m SHMID: the shmids of the SysV segments."""
    return _within(ctx, incomplete, "sysv:", _is_id)


def shm_keys(ctx, param, incomplete: str) -> list:
    """rm -M KEY: the keys of the SysV segments (IPC_PRIVATE has none)."""
    return _within(ctx, incomplete, "sysv:key=")


def posix_names(ctx, param, incomplete: str) -> list:
    """rm --posix NAME: the POSIX names, with their slash when the word has one."""
    return _within(ctx, incomplete, "posix:" if incomplete.startswith("/") else "posix:/")


def segment_ids(ctx, param, incomplete: str) -> list:
    """list -i ID: a shmid once the word is a number, else any address."""
    if incomplete[:1].isdigit():
        return shmids(ctx, param, incomplete)
    return addresses(ctx, param, incomplete)


def all_kinds(ctx, param, incomplete: str) -> list:
    """rm -a/--all KIND."""
    from .. import KINDS
    return _items([(name, f"every {name} segment") for name in KINDS], incomplete)


def pids(ctx, param, incomplete: str) -> list:
    """--ns PID: the processes, those in IPC or mount namespaces other than ours first (a
    container's), each with its command name (zsh, fish) and the namespaces that differ."""
    from .. import kinds
    return _items(kinds.complete_pids(incomplete, REQUEST.describe))


def attach_command(ctx, param, incomplete: str) -> list:
    """attach ADDRESS -- COMMAND [ARGS]: after `--` a command, then its arguments (files);
    before it, `--` itself (options are offered once the word starts with `-`)."""
    from click.shell_completion import CompletionItem
    if "--" not in REQUEST.args:
        return _items([("--", "then a command to run while it is attached")], incomplete)
    return [CompletionItem(incomplete, type="file" if ctx.params.get(param.name) else "command")]


def columns(ctx, param, incomplete: str) -> list:
    """Column names for -o/--sort: after the last comma too, and after a leading `+`; the
    limits' for `limits -o` and `list -l/-g -o` (which passes -o on to the limits)."""
    many = param is None or param.name == "columns"  # -o takes a list and `+`; --sort one name
    head, comma, last = incomplete.rpartition(",") if many else ("", "", incomplete)
    plus = "+" if many and not comma and last.startswith("+") else ""
    before = head + comma + plus
    last = last[len(plus):].upper()
    chosen = {c.strip().lstrip("+").upper() for c in head.split(",")}
    return _items([(before + name, about) for name, about in _column_table(ctx, many)
                   if name.startswith(last) and name not in chosen])


def _column_table(ctx, many: bool) -> list:
    """(name, help) of the columns -o names here: the limits' and pools', or list's."""
    params = ctx.params if ctx is not None else {}
    if many and ctx is not None and (ctx.command.name == "limits" or params.get("limits") or params.get("limits_")):
        from ..render.limits import LIMIT_COLUMNS, POOL_COLUMNS
        return [(name, column.help) for table in (LIMIT_COLUMNS, POOL_COLUMNS) for name, column in table.items()]
    from ..fields import COLUMNS
    return [(name, column.help) for name, column in COLUMNS.items()]


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


def directories(ctx, param, incomplete: str) -> list:
    from click.shell_completion import CompletionItem
    return [CompletionItem(incomplete, type="dir")]


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
