"""The README's tables that are written by hand are checked here: every test the Security table
names exists."""
from __future__ import annotations

import ast
import re
from pathlib import Path
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


UTIL_LINUX = checked_table("util-linux")

# both sides start from one SysV segment of their own, in an IPC namespace of their own:
# its id is $ID and its key $KEY
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
    command = re.sub(r"(?<=-[imM] )(ID|KEY)\b", r"$\1", command.strip("`"))  # not the columns KEY, ID
    if command.startswith("shmctl "):
        command = '$SHMCTL ' + command[len("shmctl "):]
    env = dict(os.environ, SHMCTL=f"{sys.executable} -m shmctl_cli", PYTHONPATH=str(ROOT))
    proc = subprocess.run(["unshare", "--ipc", "sh", "-c", _SHELL % command], capture_output=True, text=True,
                          env=env, timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, (command, proc.stderr)
    return proc.stdout


@needs_isolation
@pytest.mark.parametrize("theirs, ours", [tuple(row) for row in UTIL_LINUX], ids=[row[0] for row in UTIL_LINUX])
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
