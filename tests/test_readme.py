"""The README's tables that are written by hand are checked here: every test the Security table
names exists."""
from __future__ import annotations

import ast
import re
from pathlib import Path
from shutil import which as shutil_which
from typing import List

import pytest
from conftest import needs_isolation

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def checked_table(name: str) -> List[List[str]]:
    """The rows (cells) of the table between `<!-- checked: NAME -->` and `<!-- end -->`."""
    block = README.split(f"<!-- checked: {name} -->", 1)[1].split("<!-- end -->", 1)[0]
    rows = [line for line in block.strip().splitlines() if line.startswith("|")][2:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def functions_in(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_test_the_security_table_names_exists():
    rows = checked_table("security")
    assert len(rows) >= 10
    for guarantee, tests in rows:
        named = re.findall(r"`([\w.]+)::(\w+)`", tests)
        assert named, guarantee
        for file, function in named:
            path = ROOT / "tests" / file
            assert path.exists(), f"{guarantee}: {file}"
            assert function in functions_in(path), f"{guarantee}: {file}::{function}"


def command_pairs(rows: List[List[str]]) -> List[tuple]:
    """(theirs, ours) of each row of the util-linux table: a cell may hold several commands, each in
    backquotes, paired in order with those of the other cell."""
    pairs = []
    for theirs, ours in rows:
        theirs, ours = re.findall(r"`([^`]+)`", theirs), re.findall(r"`([^`]+)`", ours)
        assert theirs and len(theirs) == len(ours), (theirs, ours)
        pairs += zip(theirs, ours)
    return pairs


UTIL_LINUX = command_pairs(checked_table("util-linux"))

# both sides start from one SysV segment of their own, in an IPC namespace of their own:
# its id is $ID, its key $KEY and its address sysv:$ID
_SHELL = r'''set -e
out=$(ipcmk -M 4096)
ID=${out##*: }
KEY=$(awk -v id="$ID" '$2 == id {print $1}' /proc/sysvipc/shm)
%s >/dev/null
echo "after: $(awk -v id="$ID" '$2 == id {print "kept"}' /proc/sysvipc/shm)"
awk 'NR > 1 {print $4, $3}' /proc/sysvipc/shm | sort
'''


def _side(command: str) -> str:
    """Run one side of a row in a new IPC namespace; what is left afterwards."""
    import os
    import subprocess
    import sys
    command = re.sub(r"(?:(?<=-[imM] )|(?<=shm ))(ID|KEY)\b", r"$\1", command)  # not the columns KEY, ID
    command = re.sub(r"(?<=stat )ADDRESS\b", "sysv:$ID", command)  # not the column ADDRESS
    if command.startswith("shmctl "):
        command = '$SHMCTL ' + command[len("shmctl "):]
    env = dict(os.environ, SHMCTL=f"{sys.executable} -m shmctl_cli", PYTHONPATH=str(ROOT))
    proc = subprocess.run(["unshare", "--ipc", "sh", "-c", _SHELL % command], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (command, proc.stderr)
    return proc.stdout


def test_a_row_of_several_commands_pairs_them_in_order():
    assert command_pairs([["`lsipc -m -J`, `lsipc -g -J`", "`shmctl list -m -J`, `shmctl list -g -J`"]]) == [
        ("lsipc -m -J", "shmctl list -m -J"), ("lsipc -g -J", "shmctl list -g -J")]
    with pytest.raises(AssertionError):
        command_pairs([["`ipcs -l`, `ipcs -m -l --human`", "`shmctl list -l`"]])


@needs_isolation
@pytest.mark.parametrize("theirs, ours", UTIL_LINUX, ids=[theirs for theirs, _ in UTIL_LINUX])
def test_each_util_linux_line_and_its_shmctl_line_do_the_same(theirs, ours):
    """Both run, and leave the same segments behind (removed, kept, or a new one of that size and mode)."""
    assert _side(ours) == _side(theirs)


def _unit_sections(text: str) -> dict:
    """section -> its `Key=value` lines, of a systemd unit file (comments left out)."""
    sections, current = {}, None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line, [])
        elif line and not line.startswith("#") and current is not None:
            current.append(line)
    return sections


def _excerpts() -> List[tuple]:
    """(file, section, line) of every unit-file excerpt the README shows in an ```ini block."""
    found = []
    for block in re.findall(r"```ini\n(.*?)```", README, re.S):
        for part in re.split(r"^# (contrib/\S+) \(excerpt\)\n", block, flags=re.M)[1:]:
            found.append(part)
    pairs = []
    for i in range(0, len(found), 2):
        name, body = found[i], found[i + 1]
        for section, lines in _unit_sections(body).items():
            pairs += [(name, section, line) for line in lines]
    return pairs


def test_the_contrib_unit_excerpts_are_what_the_files_say():
    excerpts = _excerpts()
    assert {name for name, _, _ in excerpts} == {
        "contrib/shmctl-metrics.service", "contrib/shmctl-metrics.timer",
        "contrib/shmctl-cleanup.service", "contrib/shmctl-cleanup.timer"}
    for name, section, line in excerpts:
        assert line in _unit_sections((ROOT / name).read_text()).get(section, []), (name, section, line)


# --- "Manual pages and completion": where pip's files land, and which shells find them --------------

BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def _shared_data() -> dict:
    """pyproject's wheel shared-data: checkout path -> path under the prefix pip installs into."""
    text = (ROOT / "pyproject.toml").read_text()
    table = text.split("[tool.hatch.build.targets.wheel.shared-data]", 1)[1].split("\n[", 1)[0]
    return dict(re.findall(r'^"([^"]+)" = "([^"]+)"', table, re.M))


def _install_prefix(prefix: Path) -> Path:
    """PREFIX as pip leaves it: bin/shmctl (this checkout) and the wheel's data under it."""
    import shutil
    import sys
    for source, target in _shared_data().items():
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, prefix / target, dirs_exist_ok=True)
        else:
            (prefix / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, prefix / target)
    (prefix / "bin").mkdir(parents=True)
    (prefix / "bin" / "shmctl").write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m shmctl_cli "$@"\n')
    (prefix / "bin" / "shmctl").chmod(0o755)
    return prefix


def _shell(argv: list, home: Path, path: str, **env) -> str:
    import subprocess
    clean = {"HOME": str(home), "PATH": path, "LC_ALL": "C.UTF-8", **env}
    return subprocess.run(argv, capture_output=True, text=True, env=clean, timeout=60).stdout


def _bash_finds(home: Path, path: str, **env) -> bool:
    load = ('. %s; if declare -F _comp_load >/dev/null; then _comp_load shmctl; else __load_completion shmctl; fi; '
            'complete -p shmctl' % BASH_COMPLETION)
    return "_shmctl_completion" in _shell(["bash", "--norc", "-c", load], home, path, **env)


def test_the_readme_says_where_pip_puts_each_file():
    section = README.split("## Manual pages and completion", 1)[1].split("\n## ", 1)[0]
    for target in _shared_data().values():
        assert f"`PREFIX/{target.rstrip('/')}`" in section or f"`PREFIX/{target}`" in section, target


@pytest.mark.skipif(not Path(BASH_COMPLETION).exists(), reason="no bash-completion (apt-get install bash-completion)")
def test_bash_completion_finds_the_prefixes_the_readme_says(tmp_path):
    prefix, home = _install_prefix(tmp_path / "venv"), tmp_path / "home"
    system_path = "/usr/bin:/bin"
    loader = Path(BASH_COMPLETION).read_text()
    looks_beside_path = "_comp_load()" in loader  # 2.12 and later
    assert _bash_finds(home, f"{prefix}/bin:{system_path}") == looks_beside_path
    # /usr/local: in the default XDG_DATA_DIRS of every version; any prefix named there is found
    assert "/usr/local/share:/usr/share" in loader
    assert _bash_finds(home, system_path, XDG_DATA_DIRS=f"{prefix}/share:/usr/share")
    _install_prefix(home / ".local")  # pip install --user
    assert _bash_finds(home, system_path)
    # the README's fallback for a "no"
    shmctl = prefix / "bin" / "shmctl"
    out = _shell(["bash", "--norc", "-c", f'eval "$({shmctl} completion bash)"; complete -p shmctl'], home, system_path)
    assert "_shmctl_completion" in out


@pytest.mark.skipif(not shutil_which("zsh"), reason="no zsh")
def test_zsh_finds_the_prefixes_the_readme_says(tmp_path):
    prefix, home = _install_prefix(tmp_path / "venv"), tmp_path / "home"
    fpath = _shell(["zsh", "-fc", "print -l $fpath"], home, "/usr/bin:/bin").split()
    assert "/usr/local/share/zsh/site-functions" in fpath
    assert not [d for d in fpath if d.startswith(str(home))]
    found = _shell(["zsh", "-fc", f"fpath=({prefix}/share/zsh/site-functions $fpath); autoload -U compinit; "
                    "compinit -u -D; print ${_comps[shmctl]}"], home, "/usr/bin:/bin")
    assert found.strip() == "_shmctl"


@pytest.mark.skipif(not shutil_which("fish"), reason="no fish")
def test_fish_finds_the_prefixes_the_readme_says(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    paths = _shell(["fish", "-c", "string join \\n $fish_complete_path"], home, "/usr/bin:/bin").split()
    assert f"{home}/.local/share/fish/vendor_completions.d" in paths
    assert "/usr/local/share/fish/vendor_completions.d" not in paths
    paths = _shell(["fish", "-c", "string join \\n $fish_complete_path"], home, "/usr/bin:/bin",
                   XDG_DATA_DIRS="/usr/local/share:/usr/share").split()
    assert "/usr/local/share/fish/vendor_completions.d" in paths


@pytest.mark.skipif(not shutil_which("man"), reason="no man")
def test_man_finds_the_pages_of_any_prefix_on_path(tmp_path):
    prefix, home = _install_prefix(tmp_path / "venv"), tmp_path / "home"
    found = _shell(["man", "-w", "shmctl-limits-set"], home, f"{prefix}/bin:/usr/bin:/bin")
    assert found.strip() == f"{prefix}/share/man/man1/shmctl-limits-set.1"


# --- the tour: every command of "A short tour" runs, and prints what the README shows ----------------
#
# The tour is run for real, at 80 columns in a pseudo-terminal, in IPC, mount and PID namespaces of its
# own (a tmpfs /dev/shm of 1 GiB and /tmp; only the tour's own processes, all visible to root): its
# first SysV segment is sysv:0 as in the README. `python tests/test_readme.py` prints each block as it
# runs now, to paste into the README.

TOUR_WIDTH = 80

# Runs inside the namespaces: argv[1] the checkout, argv[2] the commands as JSON; prints the results as
# JSON, one {"command", "output", "rc"} per command.
_TOUR_DRIVER = r'''
import ctypes, fcntl, json, os, pty, re, select, struct, subprocess, sys, termios, time
root, commands = sys.argv[1], json.loads(sys.argv[2])
libc = ctypes.CDLL("libc.so.6", use_errno=True)
# the interpreter's prefix (a venv) and the checkout stay reachable where they live under /tmp
kept = {path: os.open(path, os.O_PATH | os.O_DIRECTORY) for path in {os.path.realpath(sys.prefix), os.path.realpath(root)}
        if path.startswith("/tmp/")}
for target, options in (("/dev/shm", b"mode=1777,size=1g"), ("/tmp", b"mode=1777")):
    assert libc.mount(b"tour", target.encode(), b"tmpfs", 0, options) == 0, target
MS_BIND = 4096
for path, fd in kept.items():
    os.makedirs(path, exist_ok=True)
    assert libc.mount(f"/proc/self/fd/{fd}".encode(), path.encode(), None, MS_BIND, None) == 0, path
os.mkdir("/tmp/bin")
with open("/tmp/bin/shmctl", "w") as f:  # as pip's console script: its processes are named shmctl
    f.write(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {root!r})\nfrom shmctl_cli.cli import run\nrun()\n")
os.chmod("/tmp/bin/shmctl", 0o755)
with open("/tmp/orders.bin", "wb") as f:
    f.write(os.urandom(1 << 20))
env = {"PATH": "/tmp/bin:/usr/bin:/bin", "HOME": "/tmp", "TERM": "xterm", "TZ": "UTC", "LC_ALL": "C.UTF-8"}
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def start(command):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, WIDTH, 0, 0))
    proc = subprocess.Popen(["sh", "-c", command], stdin=slave, stdout=slave, stderr=slave, env=env,
                            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0))
    os.close(slave)
    return proc, master


def read_until(proc, master, done, answer=None):
    out = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not done(out):
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the last writer closed the terminal
                break
            if not chunk:
                break
            out += chunk
            if answer is not None and b"[y/N]" in out:
                os.write(master, answer)
                answer = None
        elif proc.poll() is not None:
            break
    return ESCAPES.sub("", out.decode("utf-8", "replace").replace("\r\n", "\n"))


results, rc, background = [], 0, []
for command in commands:
    if command == "echo $?":
        results.append({"command": command, "output": f"{rc}\n", "rc": 0})
        continue
    if command.startswith("addr=$("):  # a variable for the commands after it
        inner = command[len("addr=$("):-1]
        proc = subprocess.run(["sh", "-c", inner], capture_output=True, text=True, env=env)
        env["addr"], rc = proc.stdout.strip(), proc.returncode
        results.append({"command": command, "output": proc.stderr, "rc": rc})
        continue
    if command.endswith("&"):  # held in the background: its first line is all the README shows
        proc, master = start(command[:-1])
        background.append((proc, master))
        results.append({"command": command, "output": read_until(proc, master, lambda out: b"\n" in out), "rc": 0})
        continue
    proc, master = start(command)
    output = read_until(proc, master, lambda out: False, answer=b"n\n" if "rm --orphans" in command else None)
    rc = proc.wait()
    os.close(master)
    results.append({"command": command, "output": output, "rc": rc})
    if command.startswith("shmctl write /orders"):  # the README's "some program made sysv:1 and exited"
        subprocess.run([sys.executable, "-c", "import ctypes; ctypes.CDLL('libc.so.6').shmget(0, 65536, 0o1600)"],
                       check=True)
for proc, master in background:
    proc.kill()
    proc.wait()
print(json.dumps(results))
'''.replace("WIDTH", str(TOUR_WIDTH))


def tour_blocks() -> List[tuple]:
    """(commands, {command: the lines the README shows after it}) of each console block of the tour."""
    section = README.split("## A short tour", 1)[1].split("\n## ", 1)[0]
    blocks = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        commands, shown = [], {}
        for line in block.splitlines():
            if line.startswith("$ "):
                commands.append(line[2:])
                shown[len(commands) - 1] = []
            elif commands:
                shown[len(commands) - 1].append(line)
        blocks.append((commands, [shown[i] for i in range(len(commands))]))
    return blocks


# run after the tour, in its world: every column `list` shows when nothing has to fit
TOUR_EXTRA = ["shmctl list | head -n 1"]


def run_tour() -> List[dict]:
    """Each tour command (then TOUR_EXTRA) as it runs: {"command", "output", "rc"}."""
    import json
    import subprocess
    import sys
    commands = [command for block, _ in tour_blocks() for command in block] + TOUR_EXTRA
    proc = subprocess.run(["unshare", "--ipc", "--mount", "--pid", "--fork", "--mount-proc", "--propagation",
                           "private", sys.executable, "-c", _TOUR_DRIVER, str(ROOT), json.dumps(commands)],
                          capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


_SHAPES = [  # what differs from one machine or run to the next, and what stands for it
    (re.compile(r"(?<![\w/])/[^\s,;)]*"), "PATH"),
    (re.compile(r"\b(0x)?[0-9a-f]*\d[0-9a-f]*-[0-9a-f]*\d[0-9a-f]*\b"), "RANGE"),
    (re.compile(r"\b0x[0-9a-f]+\b"), "HEX"),
    (re.compile(r"\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\b"), "DATE"),
    (re.compile(r"\d+(\.\d+)?(B|KiB|MiB|GiB|TiB)\b"), "SIZE"),
    (re.compile(r"\d+(\.\d+)?"), "N"),
]


def shape(line: str) -> str:
    """A line with its numbers, sizes, paths, addresses and dates replaced by what they are, white
    space collapsed: the same for the README and a run elsewhere when the layout is the same. A
    command line cut to its cell is one PATH however many paths fit (the interpreter's path, a
    venv's or pyenv's, sets how many)."""
    for pattern, name in _SHAPES:
        line = pattern.sub(name, line)
    return re.sub(r"PATH(?: PATH)+", "PATH", " ".join(line.split()))


def _same_shape(shown: List[str], printed: List[str]) -> bool:
    """Every line the README shows, in order, has a line of that shape in the output; `...` stands for
    lines left out."""
    printed = [shape(line) for line in printed]
    at = 0
    skipping = False
    for line in shown:
        if line == "...":
            skipping = True
            continue
        if skipping:
            while at < len(printed) and printed[at] != shape(line):
                at += 1
        if at >= len(printed) or printed[at] != shape(line):
            return False
        at += 1
        skipping = False
    return skipping or at == len(printed)


@pytest.fixture(scope="module")
def tour():
    return run_tour()


def as_the_terminal_shows(output: str) -> List[str]:
    """Output lines as an 80-column terminal shows them: a message (`shmctl: ...`, one line by
    contract) folds at column 80; nothing else may need to."""
    lines = []
    for line in output.rstrip("\n").split("\n") if output.strip() else []:
        line = line.rstrip()
        while line.startswith("shmctl: ") and len(line) > TOUR_WIDTH:
            lines.append(line[:TOUR_WIDTH].rstrip())
            line = line[TOUR_WIDTH:]
        lines.append(line)
    return lines


@needs_isolation
def test_every_tour_command_runs_and_prints_what_the_readme_shows(tour):
    commands = [(command, shown) for block in tour_blocks() for command, shown in zip(*block)]
    assert [result["command"] for result in tour[:len(commands)]] == [command for command, _ in commands]
    for (command, shown), result in zip(commands, tour):
        printed = as_the_terminal_shows(result["output"])
        assert not [line for line in printed if len(line) > TOUR_WIDTH], (command, printed)
        assert _same_shape(shown, printed), (command, "\n".join(printed))


@needs_isolation
def test_the_tour_names_the_columns_an_80_column_terminal_leaves_out(tour):
    every = tour[-1]["output"].split()
    [shown] = [result["output"].split("\n")[0].split() for result in tour if result["command"] == "shmctl list"]
    left_out = [column for column in every if column not in shown]
    claimed = re.search(r"least important first\s+\(([A-Z,\s]+?)\s+here\)", README)
    assert claimed and re.split(r",\s+", claimed[1]) == left_out, left_out


def test_the_tour_is_what_an_80_column_terminal_shows():
    for commands, shown in tour_blocks():
        for command, lines in zip(commands, shown):
            assert len(f"$ {command}") <= TOUR_WIDTH and not [line for line in lines if len(line) > TOUR_WIDTH]


def test_shape_keeps_the_layout_and_drops_the_values():
    assert shape("sysv:0   0 root  5727 5809 5809:shmctl") == shape("sysv:0   0 root  31 402 402:shmctl")
    assert shape("posix:/orders  posix root  4MiB 1MiB") == shape("posix:/orders posix root 256MiB 0B")
    assert shape("atime     Tue Nov 24 01:40:44 2026 UTC") == shape("atime     Sat Jan 3 11:00:04 2027 UTC")
    assert shape("ADDRESS KIND OWNER SIZE") != shape("ADDRESS KIND SIZE")
    assert _same_shape(["a 1", "...", "c 3"], ["a 2", "b", "b", "c 4"]) and not _same_shape(["a 1"], ["a 1", "b"])


if __name__ == "__main__":  # print the tour as it runs now, block by block, for the README
    results = iter(run_tour())
    for block, _ in tour_blocks():
        print("```console")
        for _command in block:
            result = next(results)
            print("\n".join([f"$ {result['command']}"] + as_the_terminal_shows(result["output"])))
        print("```\n")
