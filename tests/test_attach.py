"""`shmctl attach`: holds a segment, and always detaches."""
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import HERE, needs_isolation, run
from kernel import listed

pytestmark = needs_isolation
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))


STARTED = []


@pytest.fixture(autouse=True)
def stop_attachers():
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture
def segment(tmp_path):
    made = []

    def make(address="sysv", size="64K"):
        r = run("create", address, "--size", size)
        assert r.code == 0, r
        made.append(r.out.strip())
        return made[-1]
    yield make
    for address in made:
        run("rm", "--force", address)


def start(*args):
    proc = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "attach", *args], stderr=subprocess.PIPE, text=True,
                            env=ENV)
    STARTED.append(proc)
    line = proc.stderr.readline()
    assert line.startswith("shmctl: attached "), line + proc.stderr.read()
    return proc, line


@pytest.mark.parametrize("kind", ["sysv", "/shmctl-attach"])
def test_held_until_sigint_then_detached(segment, kind):
    address = segment(kind)
    proc, line = start(address)
    assert f"attached {address} at 0x" in line and "(64KiB, read-write)" in line and f"pid {proc.pid}" in line
    seg = listed("--output-all")[address]
    assert seg["nattch"] == 1 and [p["pid"] for p in seg["processes"]] == [proc.pid]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == 130
    assert proc.stderr.read() == f"shmctl: detached {address}\n"
    assert listed()[address]["nattch"] == 0


def test_sigterm_and_duration(segment):
    address = segment()
    proc, _ = start(address)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 143
    began = time.monotonic()
    proc, _ = start(address, "--for", "0.5s")
    assert proc.wait(30) == 0 and time.monotonic() - began > 0.4  # held at least the time asked
    assert listed()[address]["nattch"] == 0


def test_command_status_and_environment(segment, tmp_path):
    address = segment("/shmctl-attach-cmd")
    out = tmp_path / "seen"
    r = run("attach", address, "--", "sh", "-c", f'echo "$SHMCTL_ADDRESS" > {out}; exit 7')
    assert r.code == 7 and out.read_text() == f"{address}\n"
    r = run("attach", address, "--", "no-such-command-xyz")
    assert r.code == 127 and "run no-such-command-xyz: No such file or directory" in r.err
    # while the command runs, the segment is attached by shmctl
    r = run("attach", address, "--", sys.executable, "-c",
            "import os, sys; maps = open(f'/proc/{os.getppid()}/maps').read(); "
            "sys.exit(0 if '/dev/shm/shmctl-attach-cmd' in maps else 1)")
    assert r.code == 0


def test_readonly_and_lock(segment):
    address = segment()
    proc, line = start(address, "--readonly", "--lock")
    try:
        assert "read-only, locked" in line
        perms = {p["perms"] for p in listed("--output-all")[address]["processes"]}
        assert perms == {"r--s"}
        status = open(f"/proc/{proc.pid}/status").read()
        locked_kb = int(next(x for x in status.splitlines() if x.startswith("VmLck")).split()[1])
        assert locked_kb >= 64
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def test_attach_mmap_file(segment, tmp_path):
    address = segment(f"mmap:{tmp_path}/held.bin")
    proc, _ = start(address)
    try:
        assert listed("--kind", "mmap")[address]["nattch"] == 1
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 130


def test_errors():
    r = run("attach", "sysv:2147483000")
    assert r.code == 3 and r.err.startswith("shmctl: sysv:2147483000: no SysV segment")
    r = run("attach", "sysv:1", "--for", "soon")
    assert r.code == 2 and "invalid duration 'soon'" in r.err
