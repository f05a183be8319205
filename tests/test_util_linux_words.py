"""Issue 11, util-linux habits that scripts carry over: ipcrm's old `ipcrm shm ID...`, ipcmk's
`-M 0x1000`, lsipc's column names (`-o KEY,USER`). Each against the util-linux tool itself,
on real SysV segments of this test's IPC namespace."""
from __future__ import annotations

import os
import subprocess

import pytest

from conftest import run, run_in_process

pytestmark = pytest.mark.skipif(not all(os.path.exists(f"/usr/bin/{t}") for t in ("ipcrm", "ipcmk", "lsipc")),
                                reason="needs util-linux's ipcrm, ipcmk and lsipc")


def _shmids():
    with open("/proc/sysvipc/shm") as f:
        return {int(line.split()[1]) for line in f.readlines()[1:]}


def _sizes():
    with open("/proc/sysvipc/shm") as f:
        return {int(line.split()[1]): int(line.split()[3]) for line in f.readlines()[1:]}


@pytest.fixture
def segments(cleanup_shm):
    """make(n): n new SysV segments of 4 KiB (removed at teardown if still there)."""
    def make(n):
        made = []
        for _ in range(n):
            r = run("create", "sysv", "--size", "4K")
            assert r.code == 0, r
            made.append(int(r.out.strip().split(":")[1]))
        cleanup_shm[1].extend(made)
        return made
    return make


def test_rm_shm_ids_as_ipcrm_shm_ids(segments):
    """`ipcrm shm A B` removes shmids A and B; `shmctl rm shm A B` too, printing each address
    (several named segments still need --yes off a terminal, as for rm -m A -m B)."""
    theirs, ours = segments(2), segments(2)
    done = subprocess.run(["ipcrm", "shm", *map(str, theirs)], capture_output=True, text=True)
    assert done.returncode == 0 and not set(theirs) & _shmids(), done
    r = run("rm", "--yes", "shm", *map(str, ours))
    assert (r.code, r.out) == (0, "".join(f"sysv:{i}\n" for i in ours)), r
    assert not set(ours) & _shmids()


def test_rm_shm_with_a_missing_id_removes_the_others(segments):
    """ipcrm says `invalid id`, removes the rest and exits 1; shmctl removes the rest and exits
    3, its code for a segment that does not exist."""
    theirs, ours = segments(2), segments(2)
    missing = max(_shmids()) + 1000
    done = subprocess.run(["ipcrm", "shm", str(theirs[0]), str(missing), str(theirs[1])], capture_output=True, text=True)
    assert done.returncode == 1 and not set(theirs) & _shmids(), done
    r = run("rm", "--yes", "shm", str(ours[0]), str(missing), str(ours[1]))
    assert r.code == 3 and r.out == f"sysv:{ours[0]}\nsysv:{ours[1]}\n", r
    assert r.err == (f"shmctl: sysv:{missing}: no SysV segment with shmid {missing} (a segment marked for removal "
                     "loses its key; see shmctl list -m)\n")
    assert not set(ours) & _shmids()


@pytest.mark.parametrize("args,message", [
    (("msg", "1"), "shmctl: rm msg: shmctl handles shared memory only (use ipcrm for message queues and semaphores)\n"),
    (("sem", "1"), "shmctl: rm sem: shmctl handles shared memory only (use ipcrm for message queues and semaphores)\n"),
    (("shm",), "shmctl: rm shm: ipcrm's form names shmids after shm (e.g. shmctl rm shm 32769 32770)\n"),
    (("shm", "5", "x"), "shmctl: invalid shmid 'x': expected a number in ASCII digits 0-9\n"),
    (("shm", " 5"), "shmctl: invalid shmid ' 5': expected a number in ASCII digits 0-9\n"),
    (("shm", "posix:/a"), "shmctl: invalid shmid 'posix:/a': expected a number in ASCII digits 0-9\n"),
])
def test_rm_shm_usage_errors(args, message):
    r = run_in_process("rm", "--yes", *args)
    assert (r.code, r.out, r.err) == (2, "", message), r


def test_rm_shm_is_only_the_first_word(segments):
    """`shm` later on is no address, as before: the old form is ipcrm's, first word only."""
    shmid, = segments(1)
    r = run_in_process("rm", f"sysv:{shmid}", "shm")
    assert r.code == 2 and "unknown kind 'shm'" in r.err
    assert shmid in _shmids()


@pytest.mark.parametrize("size", ["0x1000", "0X2000", "0x10K"])
def test_create_M_takes_hex_sizes_as_ipcmk(size, cleanup_shm):
    done = subprocess.run(["ipcmk", "-M", size], capture_output=True, text=True)
    assert done.returncode == 0, done
    theirs = int(done.stdout.split(":")[1])
    cleanup_shm[1].append(theirs)
    r = run("create", "-M", size)
    assert r.code == 0, r
    ours = int(r.out.strip().split(":")[1])
    cleanup_shm[1].append(ours)
    sizes = _sizes()
    assert sizes[ours] == sizes[theirs] == int(size[2:].rstrip("K"), 16) << (10 if size.endswith("K") else 0)


def test_lsipc_column_names_are_shmctls_columns(segments):
    """-o KEY,USER,ATTACH,DETACH as lsipc takes it: the same rows as OWNER, ATIME, DTIME, the
    header in shmctl's names (one name per meaning); USER holds what lsipc's USER holds."""
    shmid, = segments(1)
    lsipc = subprocess.run(["lsipc", "-m", "-r", "-o", "ID,KEY,USER"], capture_output=True, text=True).stdout
    theirs = next(line.split() for line in lsipc.splitlines() if line.split()[0] == str(shmid))
    asked = run("list", "-m", "-r", "-o", "ID,KEY,USER,ATTACH,DETACH")
    named = run("list", "-m", "-r", "-o", "ID,KEY,OWNER,ATIME,DTIME")
    assert asked.code == 0 and asked.out == named.out and asked.out.startswith("ID KEY OWNER ATIME DTIME\n"), asked
    ours = next(line.split() for line in asked.out.splitlines() if line.split()[0] == str(shmid))
    assert ours[:3] == theirs
    seg = next(s for s in run("list", "-m", "--json", "-o", "ID,USER").json()["segments"] if s["id"] == shmid)
    assert list(seg) == ["id", "owner"] and seg["owner"] == theirs[2]


def test_lsipc_names_without_a_shmctl_column():
    r = run_in_process("list", "-o", "KEY,COMMAND")
    assert (r.code, r.out) == (2, "")
    assert r.err == ("shmctl: unknown column 'COMMAND': lsipc's COMMAND, the creator's command line, is not kept; "
                     "CPID is the creator's pid, PROCESSES the attached processes\n")


def test_list_columns_names_the_aliases():
    lines = run_in_process("list", "--list-columns").out.splitlines()
    assert lines[-3:] == ["USER       lsipc's name for OWNER", "ATTACH     lsipc's name for ATIME",
                          "DETACH     lsipc's name for DTIME"]
