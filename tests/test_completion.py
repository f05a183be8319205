"""Live shell completion on real segments: through click's environment variables (the
protocol the scripts speak) for bash, zsh and fish, and through a real bash that sources the
generated script. `shmctl completion SHELL` prints the scripts that pip installs."""
import os
import re
import subprocess
import sys

import pytest
from click.shell_completion import split_arg_string

from conftest import HERE, run, stop_child

ROOT = os.path.dirname(HERE)
SCRIPTS = {"bash": "completions/shmctl.bash", "zsh": "completions/_shmctl", "fish": "completions/shmctl.fish"}


def complete(shell, line, cword=None, fish_word=None):
    """The candidates shmctl answers for the line (its last word being completed): a list of
    (type, value, help), the values as the shell reads them. bash: as our script asks (the
    line, COMP_CWORD empty; no COMP_WORDBREAKS: whole words, quoted for the shell) or, with
    `cword`, as click's protocol has it; zsh: words and an index; fish: the line, the word and
    the word as fish unescapes it (`fish_word`, default: the word)."""
    words = line.split(" ")
    if shell == "bash":
        env = {"COMP_WORDS": line, "COMP_CWORD": "" if cword is None else str(cword)}
    elif shell == "zsh":
        env = {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    else:
        env = {"COMP_WORDS": line, "COMP_CWORD": words[-1], "_SHMCTL_WORD": fish_word or words[-1]}
    r = run(env={"_SHMCTL_COMPLETE": f"{shell}_complete", **env})
    assert r.code == 0 and r.err == "", r
    return parse(shell, r.out, quoted=cword is None)


def parse(shell, out, quoted=True):
    out = out[:-1] if out.endswith("\n") else out  # click ends the answer with a newline
    if not out:
        return []
    if shell == "bash":  # our script's answers are quoted for bash: read them back as bash does
        items = [line.split(",", 1) for line in out.split("\n")]
        return [(t, split_arg_string(v)[0] if quoted and v else v, "") for t, v in items]
    if shell == "zsh":  # _describe's keys and descriptions: `\X` is X
        lines = out.split("\n")
        assert len(lines) % 3 == 0, out
        return [(t, v, "") if h == "_" else (t, re.sub(r"\\(.)", r"\1", v), re.sub(r"\\(.)", r"\1", h))
                for t, v, h in zip(*[iter(lines)] * 3)]
    return [tuple((line.split("\t") + ["", ""])[:3]) for line in out.split("\n")]


def values(shell, line, cword=None, fish_word=None):
    return [value for kind, value, _ in complete(shell, line, cword, fish_word) if kind == "plain"]


SHELLS = ["bash", "zsh", "fish"]


@pytest.fixture
def segments(hold, unique):
    holder = hold({"kind": "sysv", "key": unique.key, "size": 4096},
                  {"kind": "posix", "name": unique.name, "size": 8192},
                  {"kind": "anon", "size": 4096})
    shmid = holder.objects[0]["shmid"]
    return {"shmid": shmid, "key": f"0x{unique.key:08x}", "name": unique.name, "inode": holder.objects[2]["inode"]}


@pytest.mark.parametrize("shell", SHELLS)
def test_addresses_of_segments_that_exist_now(shell, segments):
    found = values(shell, "shmctl stat ")
    assert f"sysv:{segments['shmid']}" in found and f"posix:/{segments['name']}" in found
    assert "mmap:" in found and not [v for v in found if v.startswith("mmap:@")]  # no maps scan yet
    assert f"sysv:key={segments['key']}" in values(shell, "shmctl stat sysv:")
    assert values(shell, f"shmctl rm /{segments['name'][:-2]}") == [f"/{segments['name']}"]
    assert f"mmap:@{segments['inode']}" in values(shell, "shmctl stat mmap:")
    assert all(v.startswith(f"sysv:{segments['shmid']}") for v in values(shell, f"shmctl read sysv:{segments['shmid']}"))


@pytest.mark.parametrize("shell", ["zsh", "fish"])
def test_descriptions_say_kind_size_and_owner(shell, segments):
    about = {value: help_ for _, value, help_ in complete(shell, "shmctl stat ")}
    assert about[f"posix:/{segments['name']}"] == "POSIX 8KiB, owner root"
    assert about[f"sysv:{segments['shmid']}"] == f"SysV 4KiB, owner root, key {segments['key']}"


@pytest.mark.parametrize("shell", SHELLS)
def test_a_hostile_name_is_one_escaped_candidate(shell, unique, cleanup_shm):
    names, _ = cleanup_shm
    name = f"{unique.name}\nx\x1b[31m'$(id)"
    names.append(name)
    with open(f"/dev/shm/{name}", "w"):
        pass
    out = complete(shell, f"shmctl stat posix:/{unique.name}")
    assert [v for _, v, _ in out] == [f"posix:/{unique.name}\\x0ax\\x1b[31m'$(id)"]
    assert run("stat", out[0][1]).code == 0  # the candidate names the object


@pytest.mark.parametrize("shell", SHELLS)
def test_columns_for_output_and_sort(shell):
    assert "SIZE" in values(shell, "shmctl list -o ")
    assert values(shell, "shmctl list -o ADDRESS,SI") == ["ADDRESS,SIZE"]
    assert values(shell, "shmctl list -o +OWN") == ["+OWNER"]
    assert "ADDRESS,SIZE,OWNER" in values(shell, "shmctl list --output ADDRESS,SIZE,")
    assert "ADDRESS,SIZE,SIZE" not in values(shell, "shmctl list --output ADDRESS,SIZE,")
    assert values(shell, "shmctl list --sort SI") == ["SIZE"]
    assert values(shell, "shmctl list --sort +") == []


@pytest.mark.parametrize("shell", SHELLS)
def test_users_kinds_sysctls_choices(shell):
    assert "root" in values(shell, "shmctl list --user r")
    assert "root" in values(shell, "shmctl rm --user ")
    assert "root" in values(shell, "shmctl create sysv --size 1M --owner ro")
    assert values(shell, "shmctl list -k ") == ["sysv", "posix", "mmap"]
    assert values(shell, "shmctl limits set ") == ["shmmax=", "shmall=", "shmmni=", "shm_rmid_forced="]
    assert values(shell, "shmctl limits set shmmax=1G shmm") == ["shmmax=", "shmmni="]
    assert values(shell, "shmctl completion ") == ["bash", "zsh", "fish"]
    assert values(shell, "shmctl help limits ") == ["hugepages", "recommend", "set"]
    assert {"list", "stat", "help", "completion"} <= set(values(shell, "shmctl "))


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("line", ["shmctl create posix:/x --from ", "shmctl read sysv:1 -o ",
                                  "shmctl write posix:/x ", "shmctl limits set shmmax=1G --persist "])
def test_files_where_a_file_is_expected(shell, line):
    assert [kind for kind, _, _ in complete(shell, line)] == ["file"]


@pytest.mark.parametrize("shell", SHELLS)
def test_rm_options_complete_their_part_of_an_address(shell, segments):
    shmid, key, name = str(segments["shmid"]), segments["key"], segments["name"]
    ids = values(shell, "shmctl rm -m ")
    assert shmid in ids and all(i.isdigit() for i in ids)
    assert values(shell, f"shmctl rm --shmid {shmid}") == [shmid] or shmid in values(shell, f"shmctl rm -m {shmid}")
    assert key in values(shell, "shmctl rm -M ") and values(shell, f"shmctl rm -M {key[:-1]}") == [key]
    assert name in values(shell, "shmctl rm --posix ")
    assert values(shell, f"shmctl rm --posix /{name[:-1]}") == [f"/{name}"]
    assert values(shell, "shmctl rm -a ") == ["sysv", "posix", "mmap"]
    assert values(shell, "shmctl rm --all=p") == ["--all=posix"]


@pytest.mark.parametrize("shell", SHELLS)
def test_list_id_completes_a_shmid_or_an_address(shell, segments):
    shmid, name = str(segments["shmid"]), segments["name"]
    found = values(shell, "shmctl list -i ")
    assert f"sysv:{shmid}" in found and f"posix:/{name}" in found
    assert shmid in values(shell, f"shmctl list -i {shmid}")
    assert f"sysv:key={segments['key']}" in values(shell, "shmctl list -i sysv:")
    assert values(shell, f"shmctl list --id=posix:/{name[:-1]}") == [f"--id=posix:/{name}"]


@pytest.mark.parametrize("shell", SHELLS)
def test_an_address_on_the_line_is_not_offered_again(shell, segments):
    shmid, key, name = segments["shmid"], segments["key"], segments["name"]
    for line in (f"shmctl rm sysv:{shmid} ", f"shmctl rm sysv:key={key} ", f"shmctl rm -m {shmid} ",
                 f"shmctl rm -M {key} sysv:"):
        found = values(shell, line)
        assert f"posix:/{name}" in found or line.endswith("sysv:"), line
        assert f"sysv:{shmid}" not in found, line
    for line in (f"shmctl rm /{name} ", f"shmctl rm --posix {name} ", f"shmctl rm posix:/{name} sysv:1 "):
        assert f"posix:/{name}" not in values(shell, line) and f"sysv:{shmid}" in values(shell, f"{line} "), line
    assert str(shmid) not in values(shell, f"shmctl rm sysv:{shmid} -m ")


@pytest.fixture
def other_namespace():
    """A process of ours in an IPC namespace of its own (a container's, as --ns sees it)."""
    proc = subprocess.Popen(["unshare", "--ipc", sys.executable, "-c", "import sys; print('ready', flush=True); "
                             "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc.pid
    stop_child(proc)


@pytest.mark.parametrize("shell", SHELLS)
def test_ns_offers_pids_of_other_namespaces_first(shell, other_namespace):
    pid = other_namespace
    found = complete(shell, "shmctl --ns ")
    pids = [value for _, value, _ in found]
    assert pids.index(str(pid)) < pids.index(str(os.getpid()))  # ours are in the session's namespace
    if shell != "bash":  # bash shows no descriptions: shmctl reads no comm for it
        with open(f"/proc/{pid}/comm") as f:
            comm = f.read().strip()
        about = dict((v, h) for _, v, h in found)[str(pid)]
        assert about.startswith(f"{comm} (ipc:") and "mnt:" not in about
    assert all(p.startswith(str(pid)[:2]) for p in values(shell, f"shmctl --ns {str(pid)[:2]}"))


@pytest.mark.parametrize("shell", SHELLS)
def test_attach_offers_double_dash_then_a_command(shell, segments):
    address = f"sysv:{segments['shmid']}"
    assert values(shell, f"shmctl attach {address} ") == ["--"]
    assert [kind for kind, _, _ in complete(shell, f"shmctl attach {address} -- ")] == ["command"]
    assert [kind for kind, _, _ in complete(shell, f"shmctl attach {address} -- ls ")] == ["file"]


@pytest.mark.parametrize("shell", SHELLS)
def test_a_directory_option_completes_directories(shell):
    assert [kind for kind, _, _ in complete(shell, "shmctl metrics --textfile-dir pl")] == ["dir"]


def test_every_dir_option_completes_directories():
    from shmctl_cli.cli import all_commands
    from shmctl_cli.cli.params import FileParam

    def options(command):
        yield from command.params
        for sub in getattr(command, "commands", {}).values():
            yield from options(sub)
    dirs = [p for c in all_commands().values() for p in options(c) if "DIR" in (p.metavar or "")]
    assert dirs and all(isinstance(p.type, FileParam) and p.type.directory for p in dirs), dirs


@pytest.fixture
def spaced(unique, cleanup_shm):
    names, _ = cleanup_shm
    name = f"{unique.name}a b"
    names.append(name)
    with open(f"/dev/shm/{name}", "w"):
        pass
    return unique.name


@pytest.mark.parametrize("shell", SHELLS)
def test_the_printed_form_is_completed_too(shell, spaced):
    """`posix:/NAMEa\x20b` is how list prints it on a pipe: typed so (unquoted, the shell
    would drop the backslash), it completes in that form; the shell's form still works."""
    printed = f"posix:/{spaced}a\\x20"
    fish_word = f"posix:/{spaced}a " if shell == "fish" else None  # fish reads \x20 as a space
    expected = [f"posix:/{spaced}a b"] if shell == "fish" else [f"posix:/{spaced}a\\x20b"]
    assert values(shell, f"shmctl stat {printed}", fish_word=fish_word) == expected
    assert run("stat", expected[0]).code == 0
    assert values(shell, f"shmctl stat posix:/{spaced}a") == [f"posix:/{spaced}a b"]
    assert values(shell, f"shmctl rm -M 1 --posix {spaced}a\\x2", fish_word=f"{spaced}a\\x2") == \
        [f"{spaced}a\\x20b"]


def test_descriptions_stop_past_many_candidates(unique, cleanup_shm):
    from shmctl_cli.kinds.base import DESCRIBED
    names, _ = cleanup_shm
    for i in range(DESCRIBED + 1):
        names.append(f"{unique.name}-{i:04d}")
        with open(f"/dev/shm/{names[-1]}", "w"):
            pass
    many = complete("zsh", f"shmctl stat posix:/{unique.name}-")
    assert len(many) == DESCRIBED + 1 and all(help_ == "" for _, _, help_ in many)
    few = complete("zsh", f"shmctl stat posix:/{unique.name}-000")
    assert len(few) == 10 and all(help_ == "POSIX 0B, owner root" for _, _, help_ in few)


@pytest.mark.parametrize("line, words, head, raw_head, quote", [
    ("shmctl stat posix:/a\\ b", ["shmctl", "stat", "posix:/a b"], "posix:", "posix:", ""),
    ("shmctl stat 'posix:/a\\x20", ["shmctl", "stat", "posix:/a\\x20"], "", "'", "'"),
    ("shmctl stat posix:'/a b", ["shmctl", "stat", "posix:/a b"], "posix:", "posix:'", "'"),
    ('shmctl stat "posix:/a\\$', ["shmctl", "stat", "posix:/a$"], "", '"', '"'),
    ("shmctl stat 'posix:/a b'c", ["shmctl", "stat", "posix:/a bc"], "", "", ""),
    ("shmctl list --id=sysv:1", ["shmctl", "list", "--id=sysv:1"], "--id=sysv:", "--id=sysv:", ""),
    ("shmctl stat ", ["shmctl", "stat", ""], "", "", ""),
])
def test_bash_line_is_read_as_readline_reads_it(line, words, head, raw_head, quote):
    from shmctl_cli.cli.completion import BashLine
    read = BashLine(line, " \t\n\"'><=;|&(:")
    assert (read.words, read.head, read.raw_head, read.quote) == (words, head, raw_head, quote)


def test_bash_quoting_for_each_place():
    from shmctl_cli.cli.completion import bash_quote
    assert bash_quote("/a b$(x)'\\x0a") == "/a\\ b\\$\\(x\\)\\'\\\\x0a"
    assert bash_quote("/ü2") == "/ü2"  # whatever the locale: no $'...'
    assert bash_quote("it's", "'") == "it'\\''s"
    assert bash_quote('a"$`\\!', '"') == 'a\\"\\$\\`\\\\"\'!\'"'


def test_option_equals_value_keeps_its_option():
    assert values("bash", "shmctl list --output=SI") == ["--output=SIZE"]


def test_clicks_own_bash_protocol_still_answers(segments):
    assert f"sysv:{segments['shmid']}" in values("bash", "shmctl stat ", cword=2)


def test_completion_loads_neither_rich_nor_psutil(segments):
    # the interpreter's own record of every import (a completion leaves with os._exit)
    env = dict(os.environ, PYTHONPATH=ROOT, _SHMCTL_COMPLETE="bash_complete", COMP_WORDS="shmctl stat ",
               COMP_CWORD="")
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "shmctl_cli"], capture_output=True, text=True,
                       env=env)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in r.stderr.splitlines() if "|" in line}
    assert r.returncode == 0 and "shmctl_cli" in imported and f"sysv:{segments['shmid']}" in r.stdout
    assert not imported & {"rich", "psutil"}


def test_a_completion_answers_whole_and_leaves(segments):
    """It skips the interpreter's teardown (os._exit): the answer must be flushed all the same,
    into a pipe that a slow reader empties."""
    env = dict(os.environ, PYTHONPATH=ROOT, _SHMCTL_COMPLETE="zsh_complete", COMP_WORDS="shmctl stat ",
               COMP_CWORD="2")
    proc = subprocess.Popen([sys.executable, "-m", "shmctl_cli"], stdout=subprocess.PIPE, env=env)
    out = proc.stdout.read().decode()
    assert proc.wait() == 0 and out.endswith("\n")  # parse: whole triples of type, value, help
    assert f"sysv:{segments['shmid']}" in [value for _, value, _ in parse("zsh", out)]


@pytest.mark.parametrize("shell", SHELLS)
def test_completion_command_prints_the_installed_scripts(shell):
    r = run("completion", shell)
    assert r.code == 0 and r.err == ""
    assert r.out == open(os.path.join(ROOT, SCRIPTS[shell])).read()
    assert "_SHMCTL_COMPLETE" in r.out


def test_unknown_shell_is_a_usage_error():
    assert run("completion", "tcsh").code == 2


@pytest.fixture
def shmctl_on_path(tmp_path):
    """`shmctl` on PATH as this checkout runs it (what the scripts call back)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "shmctl"
    wrapper.write_text(f"#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m shmctl_cli \"$@\"\n")
    wrapper.chmod(0o755)
    from shmctl_cli.cli import cli
    from shmctl_cli.cli.completion import script
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SHMCTL_TEST_SCRIPT=script("bash", cli))


def bash_complete(env, line, words):
    """COMPREPLY of the generated script (`shmctl completion bash`) in a real bash, given the
    line as bash would split it (COMP_WORDBREAKS makes `sysv:1` three words): what readline
    puts in place of the text after the last break character."""
    script = f"""
eval "$SHMCTL_TEST_SCRIPT"
COMP_WORDBREAKS=$' \\t\\n"\\'><=;|&(:'
compopt() {{ :; }}
COMP_LINE={_quote(line)}; COMP_POINT=${{#COMP_LINE}}
COMP_WORDS=({' '.join(_quote(w) for w in words)}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 ))
_shmctl_completion shmctl
printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    r = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.splitlines()


def _quote(text):
    return "'" + text.replace("'", "'\\''") + "'"


def test_real_bash_completes_a_real_segment(segments, shmctl_on_path):
    env = shmctl_on_path
    shmid, name = segments["shmid"], segments["name"]
    assert f"sysv:{shmid}" in bash_complete(env, "shmctl stat ", ["shmctl", "stat", ""])
    # bash split `sysv:` at the colon: the candidates replace only what follows it
    assert str(shmid) in bash_complete(env, "shmctl stat sysv:", ["shmctl", "stat", "sysv", ":"])
    assert f"key={segments['key']}" in bash_complete(env, "shmctl stat sysv:k", ["shmctl", "stat", "sysv", ":", "k"])
    assert bash_complete(env, f"shmctl rm /{name}", ["shmctl", "rm", f"/{name}"]) == [f"/{name}"]
    assert bash_complete(env, "shmctl list -o ADDRESS,SI", ["shmctl", "list", "-o", "ADDRESS,SI"]) == ["ADDRESS,SIZE"]


def test_real_bash_quotes_a_hostile_name_for_the_shell(unique, cleanup_shm, shmctl_on_path):
    names, _ = cleanup_shm
    name = f"{unique.name} $(touch pwned)\n"
    names.append(name)
    with open(f"/dev/shm/{name}", "w"):
        pass
    line = f"shmctl stat /{unique.name}"
    [candidate] = bash_complete(shmctl_on_path, line, ["shmctl", "stat", f"/{unique.name}"])
    # what bash inserts, read back by a shell, is the address shmctl printed: it names the object
    r = subprocess.run(["bash", "-c", f"printf %s {candidate}"], capture_output=True, text=True)
    assert r.stdout == f"/{unique.name} $(touch pwned)\\x0a"
    assert run("stat", r.stdout).code == 0


@pytest.mark.parametrize("shell", SHELLS)
def test_limits_columns_complete_as_list_columns_do(shell):
    """`limits -o` and `list -l -o` (which passes -o on to the limits) offer the limits'
    columns, each described as list's are (zsh, fish)."""
    assert values(shell, "shmctl list -l -o RES") == ["RESOURCE"]
    assert values(shell, "shmctl list -g -o NAME,+OVER") == []  # `+` only at the start
    assert values(shell, "shmctl list -g -o +OVER") == ["+OVERCOMMIT"]
    assert values(shell, "shmctl list -o RES") == []  # list's own columns otherwise
    described = complete(shell, "shmctl limits -o US")
    assert [v for _, v, _ in described] == ["USED", "USE%"]
    assert shell == "bash" or all(help_ for _, _, help_ in described), described
