"""Helpers for tests on real kernel objects: parse our output and util-linux's."""
from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys

from conftest import HERE, run


def listed(*args) -> dict:
    """`shmctl list --json ARGS` as {address: segment}."""
    r = run("list", "--json", *args)
    assert r.code == 0, r
    return {s["address"]: s for s in r.json()["segments"]}


def ipcs_m() -> dict:
    """`ipcs -m` and `ipcs -m -p` rows by shmid."""
    rows = {}
    for line in subprocess.run(["ipcs", "-m"], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) >= 6 and parts[0].startswith("0x"):
            rows[int(parts[1])] = {"key": int(parts[0], 16), "owner": parts[2], "perms": int(parts[3], 8),
                                   "size": int(parts[4]), "nattch": int(parts[5]), "status": parts[6:]}
    for line in subprocess.run(["ipcs", "-m", "-p"], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0].isdigit():
            rows[int(parts[0])].update(cpid=int(parts[2]), lpid=int(parts[3]))
    return rows


def lsipc_m() -> dict:
    out = subprocess.run(["lsipc", "-m", "--json", "--bytes", "--numeric-perms", "-o",
                          "KEY,ID,OWNER,PERMS,SIZE,NATTCH,CPID,LPID,STATUS"],
                         capture_output=True, text=True, check=True).stdout
    return {int(r["id"]): r for r in json.loads(out)["sharedmemory"]}


def pids_of(segment: dict) -> set:
    return {p["pid"] for p in segment.get("processes", [])}


def on_terminal(*args, env=None, columns=200, merge_stderr=False, raw=False):
    """Run shmctl with stdout (and stderr too, with merge_stderr) on a pseudo-terminal; what a
    person would see, as text, or with raw=True every byte it wrote."""
    master, slave = pty.openpty()
    full_env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE), COLUMNS=str(columns), TERM="xterm-256color")
    full_env.pop("NO_COLOR", None)
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, "-m", "shmctl_cli", *args], stdout=slave,
                            stderr=slave if merge_stderr else subprocess.PIPE,
                            stdin=subprocess.DEVNULL if merge_stderr else None, env=full_env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(30)
    os.close(master)
    if proc.stderr is not None:
        proc.stderr.close()
    output = b"".join(chunks)
    return output if raw else output.decode("utf-8", "replace")


ANSI = re.compile(r"\x1b\[[0-9;]*m")
