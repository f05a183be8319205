"""Helpers for tests on real kernel objects: parse our output and util-linux's."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import re
import subprocess
import sys
import time

from conftest import HERE, run


def created(*args) -> str:
    """`shmctl create ARGS`, which must succeed: the address it printed."""
    r = run("create", *args)
    assert r.code == 0, r
    return r.out.strip()


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


# --- waiting for another process, by what it has open ---

def wait_for(condition, what, timeout=30):
    """condition()'s first true value, polled until `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def fd_links(pid):
    """What a process has open, as /proc/PID/fd shows it (fds come and go while we look)."""
    links = []
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                links.append(os.readlink(f"/proc/{pid}/fd/{fd}"))
    return links


# --- shmctl's write lock, as another writer holds it ---

def lock_path(path=None, shmid=None, lock_dir=None) -> str:
    """Where shmctl's write lock of a file (by path) or a SysV segment lives."""
    if shmid is not None:
        name = f"sysv-{os.stat('/proc/self/ns/ipc').st_ino:x}-{shmid}"
    else:
        st = os.stat(path)
        name = f"file-{st.st_dev:x}-{st.st_ino:x}"
    return os.path.join(lock_dir or os.environ["SHMCTL_LOCK_DIR"], name)


@contextlib.contextmanager
def held_lock(path):
    """Hold a write lock as shmctl does, and let it go as shmctl does (unlink, then close)."""
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        with contextlib.suppress(FileNotFoundError):
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                os.unlink(path)
        os.close(fd)


def wait_until_waiting(proc: subprocess.Popen, path: str, deadline: float = 30) -> None:
    """Until the process has the lock file open (it polls for the lock from then on)."""
    def opened():
        assert proc.poll() is None, "the writer ended instead of waiting for the lock"
        return path in fd_links(proc.pid)
    wait_for(opened, f"pid {proc.pid} to open {path}", deadline)
