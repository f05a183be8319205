"""As an ordinary user: no traceback, and a clear word about what could not be seen."""
import os

import pytest

from conftest import ROOT, needs_isolation, nobody_command, nobody_prefix, run

pytestmark = [needs_isolation, pytest.mark.skipif(not ROOT, reason="needs root to become nobody")]


@pytest.fixture(scope="module")
def as_nobody():
    prefix = nobody_prefix()
    return lambda *args: run(*args, prefix=prefix)


def test_list_says_what_it_could_not_see(hold, unique, as_nobody):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "mode": 0o600},
             {"kind": "posix", "name": unique.name, "size": 4096, "mode": 0o600})
    r = as_nobody("list", "-p")
    assert r.code == 0 and "Traceback" not in r.err
    assert f"sysv:{h.objects[0]['shmid']}" in r.out  # /proc/sysvipc/shm shows every segment
    assert f"posix:/{unique.name}" in r.out
    assert "not visible; run as root to see them" in r.err
    assert len([line for line in r.err.splitlines() if "not visible" in line]) == 1
    data = as_nobody("list", "--json").json()
    assert data["hidden_processes"] > 0
    sysv = next(s for s in data["segments"] if s["address"] == f"sysv:{h.objects[0]['shmid']}")
    assert sysv["nattch"] == 1  # the kernel's count stays right even where the pids are hidden


def test_posix_orphans_are_not_claimed_blindly(hold, unique, as_nobody):
    hold({"kind": "posix", "name": unique.name, "size": 4096})
    seg = next(s for s in as_nobody("list", "--json").json()["segments"] if s["address"] == f"posix:/{unique.name}")
    # root's holder is invisible to nobody: if it looks orphaned, the reason must say so
    assert seg["orphan"] is None or "as far as visible" in seg["orphan"]


def test_stat_as_nobody(hold, unique, as_nobody):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096})
    r = as_nobody("stat", f"sysv:{h.objects[0]['shmid']}")
    assert r.code == 0 and "Traceback" not in r.err and "not visible" in r.err
    r = as_nobody("stat", "sysv:2147483000")
    assert r.code == 3 and r.err.startswith("shmctl: sysv:2147483000: no SysV segment")


def test_nobody_is_really_unprivileged(as_nobody):
    import subprocess
    argv, env = nobody_command()
    out = subprocess.run([*argv[:-2], "-c", "import os; print(os.geteuid(), open('/proc/self/status').read())"],
                         capture_output=True, text=True, env=dict(os.environ, **env))
    uid, status = out.stdout.split(" ", 1)
    assert uid == "65534"
    cap_eff = int(next(line for line in status.splitlines() if line.startswith("CapEff")).split()[1], 16)
    assert cap_eff == 0, f"nobody kept capabilities {cap_eff:#x}"
