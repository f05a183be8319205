"""Live shell completion on real segments: through click's environment variables (the
protocol the scripts speak) for bash, zsh and fish, and through a real bash that sources the
generated script. `shmctl completion SHELL` prints the scripts that pip installs."""
import os
import subprocess
import sys

import pytest

from conftest import HERE, run

ROOT = os.path.dirname(HERE)
SCRIPTS = {"bash": "completions/shmctl.bash", "zsh": "completions/_shmctl", "fish": "completions/shmctl.fish"}


def complete(shell, line, cword=None):
    """The candidates shmctl answers for the line (its last word being completed): a list of
    (type, value, help). bash: as our script asks (the line, COMP_CWORD empty) or, with
    `cword`, as click's protocol has it; zsh: words and an index; fish: the line and the word."""
    words = line.split(" ")
    if shell == "bash":
        env = {"COMP_WORDS": line, "COMP_CWORD": "" if cword is None else str(cword)}
    elif shell == "zsh":
        env = {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    else:
        env = {"COMP_WORDS": line, "COMP_CWORD": words[-1]}
    r = run(env={"_SHMCTL_COMPLETE": f"{shell}_complete", **env})
    assert r.code == 0 and r.err == "", r
    return parse(shell, r.out)


def parse(shell, out):
    out = out[:-1] if out.endswith("\n") else out  # click ends the answer with a newline
    if not out:
        return []
    if shell == "bash":
        return [tuple(line.split(",", 1)) + ("",) for line in out.split("\n")]
    if shell == "zsh":
        lines = out.split("\n")
        assert len(lines) % 3 == 0, out
        return [(t, v.replace("\\:", ":"), "" if h == "_" else h) for t, v, h in zip(*[iter(lines)] * 3)]
    return [tuple((line.split("\t") + ["", ""])[:3]) for line in out.split("\n")]


def values(shell, line, cword=None):
    return [value for kind, value, _ in complete(shell, line, cword) if kind == "plain"]


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


def test_option_equals_value_keeps_its_option():
    assert values("bash", "shmctl list --output=SI") == ["--output=SIZE"]


def test_clicks_own_bash_protocol_still_answers(segments):
    assert f"sysv:{segments['shmid']}" in values("bash", "shmctl stat ", cword=2)


def test_completion_loads_neither_rich_nor_psutil(segments):
    code = ("import os, sys\n"
            "from shmctl_cli.cli import main\n"
            "try:\n    main([])\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'psutil'}), file=sys.stderr)\n")
    env = dict(os.environ, PYTHONPATH=ROOT, _SHMCTL_COMPLETE="bash_complete", COMP_WORDS="shmctl stat ",
               COMP_CWORD="")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert r.stderr.strip() == "[]" and f"sysv:{segments['shmid']}" in r.stdout


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
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


def bash_complete(env, line, words):
    """COMPREPLY of the generated script in a real bash, given the line as bash would split it
    (COMP_WORDBREAKS makes `sysv:1` three words)."""
    script = f"""
source {os.path.join(ROOT, SCRIPTS['bash'])}
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
    # bash split `sysv:` at the colon: the candidates replace only its own last word
    assert f":{shmid}" in bash_complete(env, "shmctl stat sysv:", ["shmctl", "stat", "sysv", ":"])
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
