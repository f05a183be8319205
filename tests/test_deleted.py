"""Leaked and deleted objects on real kernel objects: POSIX objects unlinked while mapped or
held open (multiprocessing's resource tracker makes these), deleted tmpfs files still mapped,
a memfd whose creator exited; and nattch as "at least N" where processes are hidden."""
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ISOLATED, ROOT, mount_tmpfs, python_as, run, run_as, stop_child

pytestmark = pytest.mark.skipif(not (ROOT and ISOLATED), reason="needs root in the session's own namespaces")

# Makes PATH (size, first TOUCH bytes written), maps it (or only keeps its fd), unlinks it,
# prints what it made and holds it until stdin closes.
UNLINK_WHILE_HELD = r"""
import json, mmap, os, sys
path, size, touch, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o640)
os.ftruncate(fd, size)
if how == "map":
    m = mmap.mmap(fd, size, mmap.MAP_SHARED)
    m[:touch] = b"D" * touch
    st = os.fstat(fd)
    os.close(fd)
elif how == "raw":  # as C maps it: no fd left behind (Python's mmap keeps a dup of it)
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
    addr = libc.mmap(None, size, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
    ctypes.memset(addr, 0x44, touch)
    st = os.fstat(fd)
    os.close(fd)
else:
    os.write(fd, b"D" * touch)
    st = os.fstat(fd)
os.unlink(path)
print(json.dumps({"pid": os.getpid(), "inode": st.st_ino, "dev": st.st_dev}), flush=True)
sys.stdin.read()
"""

# multiprocessing.shared_memory: made and mapped here, unlinked by another process.
MP_CREATOR = r"""
import json, os, sys
from multiprocessing import shared_memory
shm = shared_memory.SharedMemory(create=True, size=65536)
shm.buf[:8192] = b"M" * 8192
st = os.stat("/dev/shm/" + shm.name.lstrip("/"))
print(json.dumps({"pid": os.getpid(), "name": shm.name.lstrip("/"), "inode": st.st_ino}), flush=True)
sys.stdin.read()
shm.close()
"""
MP_UNLINKER = r"""
import sys
from multiprocessing import shared_memory
other = shared_memory.SharedMemory(name=sys.argv[1])
other.close()
other.unlink()
"""

# A memfd mapped by the creator and by the child it forks; the creator exits at once, and the
# child speaks only once it is gone (the pipe's write end closes with it).
MEMFD_ORPHANED_CREATOR = r"""
import json, mmap, os, sys
fd = os.memfd_create(sys.argv[1])
os.ftruncate(fd, 16384)
m = mmap.mmap(fd, 16384, mmap.MAP_SHARED)
m[:4096] = b"F" * 4096
inode = os.fstat(fd).st_ino
os.close(fd)
r, w = os.pipe()
if os.fork() == 0:
    os.close(w)
    os.read(r, 1)
    print(json.dumps({"pid": os.getpid(), "inode": inode}), flush=True)
    sys.stdin.read()
    os._exit(0)
os._exit(0)
"""

# Maps an existing file read-only and holds it (another user's mapper).
MAP_READONLY = r"""
import json, mmap, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
m = mmap.mmap(fd, 4096, mmap.MAP_SHARED, mmap.PROT_READ)
print(json.dumps({"pid": os.getpid()}), flush=True)
sys.stdin.read()
"""


class Child:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self.read()

    def read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.args} said nothing (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self):
        stop_child(self.proc, 20)


@pytest.fixture
def child():
    """child(script, *args, prefix=...) starts a Python child that prints one JSON line, and
    stops it (closing its stdin) at the end of the test."""
    children = []

    def start(script, *args, prefix=(sys.executable,)):
        c = Child([*prefix, "-c", script, *map(str, args)])
        children.append(c)
        return c

    yield start
    for c in reversed(children):
        c.close()


def listed(*args, runner=run) -> dict:
    r = runner("list", "--json", "--output-all", *args)
    assert r.code == 0, r
    return {s["address"]: s for s in r.json()["segments"]}


def pids_of(segment) -> set:
    return {p["pid"] for p in segment.get("processes", ())}


def plain_cells(out: str, address: str) -> dict:
    """The cells of one row of list's plain table, by heading."""
    lines = out.splitlines()
    heads = lines[0].split()
    for line in lines[1:]:
        cells = line.split()
        if cells[0] == address:
            return dict(zip(heads, cells))
    raise AssertionError(f"{address} not in {out}")


def test_posix_object_unlinked_while_mapped_is_listed_deleted(child, unique):
    c = child(UNLINK_WHILE_HELD, f"/dev/shm/{unique.name}", 65536, 12288, "raw")  # mapped, no fd left
    inode, pid = c.info["inode"], c.info["pid"]
    assert unique.name not in os.listdir("/dev/shm")  # ls /dev/shm shows nothing of it
    seg = listed("--kind", "posix")[f"posix:@{inode}"]
    assert seg["name"] == f"/{unique.name}" and seg["status"] == ["deleted"]
    assert seg["size"] == 65536 and seg["rss"] == 12288 and seg["perms"] == "0640" and seg["uid"] == 0
    assert pids_of(seg) == {pid} and seg["nattch"] == 1 and seg["orphan"] is None
    assert [p["perms"] for p in seg["processes"]] == ["rw-s"]
    assert seg["device"] == "%d:%d" % (os.major(os.stat("/dev/shm").st_dev), os.minor(os.stat("/dev/shm").st_dev))

    r = run("stat", f"posix:@{inode}")
    assert r.code == 0 and "status:    deleted" in r.out and f"freed when pid {pid} (python" in r.out
    assert run("read", f"posix:@{inode}", "--length", "4", "-o", "-").out == "DDDD"
    assert run("write", f"posix:@{inode}", "--data", "hello").code == 0
    assert run("read", f"posix:@{inode}", "--length", "5", "-o", "-").out == "hello"

    r = run("rm", f"posix:@{inode}")
    assert r.code == 5 and r.out == ""
    assert f"no name left to remove: it is freed when pid {pid} (python" in r.err
    r = run("rm", "--force", f"posix:@{inode}")
    assert r.code == 5  # nothing to unlink, even by force


def test_multiprocessing_segment_unlinked_by_another_process(child):
    c = child(MP_CREATOR)
    name, inode, pid = c.info["name"], c.info["inode"], c.info["pid"]
    subprocess.run([sys.executable, "-c", MP_UNLINKER, name], check=True, capture_output=True)
    assert not os.path.exists(f"/dev/shm/{name}")
    seg = listed("--kind", "posix")[f"posix:@{inode}"]
    assert seg["name"] == f"/{name}" and "deleted" in seg["status"] and pids_of(seg) == {pid}
    assert seg["rss"] == 8192 and seg["size"] == 65536
    assert f"posix:@{inode}" not in listed("--orphans")


def test_deleted_object_held_only_by_an_fd(child, unique):
    c = child(UNLINK_WHILE_HELD, f"/dev/shm/{unique.name}", 8192, 4096, "fd")
    inode, pid = c.info["inode"], c.info["pid"]
    seg = listed("--kind", "posix")[f"posix:@{inode}"]
    assert seg["status"] == ["deleted"] and seg["rss"] == 4096 and seg["size"] == 8192
    assert seg["nattch"] == 1 and [p["perms"] for p in seg["processes"]] == ["fd"] and pids_of(seg) == {pid}
    assert run("read", f"posix:@{inode}", "--length", "3", "-o", "-").out == "DDD"  # through its fd link
    r = run("rm", f"posix:@{inode}")
    assert r.code == 5 and f"pid {pid} (python" in r.err
    r = run("stat", f"posix:@{inode}")
    assert r.code == 0 and " fd " in r.out


def test_deleted_tmpfs_file_still_mapped(child, tmpfs):
    c = child(UNLINK_WHILE_HELD, tmpfs / "data", 16384, 8192, "raw")
    inode, dev, pid = c.info["inode"], c.info["dev"], c.info["pid"]
    address = f"mmap:@{os.major(dev)}:{os.minor(dev)}:{inode}"
    seg = listed("--kind", "mmap")[address]
    assert seg["status"] == ["deleted"] and seg["backing"] == "tmpfs" and seg["name"] == str(tmpfs / "data")
    assert seg["rss"] == 8192 and seg["size"] == 16384 and pids_of(seg) == {pid}
    assert run("stat", address).code == 0
    bare = run("stat", f"mmap:@{inode}")  # any device: unique, or the usage error naming each
    assert bare.code == 0 or (bare.code == 2 and address in bare.err), bare
    r = run("rm", address)
    assert r.code == 5 and f"freed when pid {pid} (python" in r.err
    c.close()
    assert run("stat", address).code == 3  # gone with its last holder


def test_memfd_whose_creator_exited_is_listed_with_the_child(child, unique):
    c = child(MEMFD_ORPHANED_CREATOR, unique.name)
    creator = c.proc.pid
    assert c.proc.wait(20) == 0 and not os.path.exists(f"/proc/{creator}")
    kid, inode = c.info["pid"], c.info["inode"]
    try:
        seg = listed("--kind", "mmap")[f"mmap:@{inode}"]  # the internal shmem mount: no device said
        assert seg["backing"] == "memfd" and seg["name"] == f"memfd:{unique.name}"
        assert "deleted" not in seg["status"]  # it never had a name to lose
        assert pids_of(seg) == {kid} and seg["rss"] == 4096
        assert run("stat", f"mmap:@{inode}").code == 0
    finally:
        c.proc.stdin.close()
        deadline = time.monotonic() + 20
        while _alive(kid) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not _alive(kid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_orphans_summary_and_addresses(child, unique, tmpfs):
    mapped = child(UNLINK_WHILE_HELD, f"/dev/shm/{unique.name}-m", 65536, 16384, "raw")
    held = child(UNLINK_WHILE_HELD, f"/dev/shm/{unique.name}-f", 8192, 8192, "fd")
    on_tmpfs = child(UNLINK_WHILE_HELD, tmpfs / "x", 8192, 4096, "map")
    ours = {f"posix:@{mapped.info['inode']}", f"posix:@{held.info['inode']}"}
    dev = on_tmpfs.info["dev"]
    ours.add(f"mmap:@{os.major(dev)}:{os.minor(dev)}:{on_tmpfs.info['inode']}")

    assert not ours & set(listed("--orphans"))
    r = run("rm", "--orphans", "--dry-run", "--kind", "posix", "--kind", "mmap")
    assert r.code == 0 and not any(a in r.out for a in ours)
    r = run("rm", "--all", "--dry-run", "--kind", "posix")
    assert all(f"skipped {a}: deleted" in r.err for a in ours if a.startswith("posix"))

    r = run("list", "-u", "--json")
    summary = r.json()["summary"]
    assert summary["deleted"]["count"] >= 3 and summary["deleted"]["rss"] >= 16384 + 8192 + 4096
    assert {mapped.info["pid"], held.info["pid"], on_tmpfs.info["pid"]} <= set(summary["deleted"]["pids"])
    assert summary["kinds"]["posix"]["rss"] >= 16384 + 8192 and summary["explained"] >= 16384 + 8192 + 4096
    text = run("list", "-u").out
    assert "deleted but still held (in the totals above; no directory lists them): " in text

    r = run("list", "--all")  # every address list prints, as printed, is accepted by stat
    addresses = [line.split()[0] for line in r.out.splitlines()[1:]]
    assert ours <= set(addresses)
    for address in addresses:
        code = run("stat", address).code
        assert code == 0 or (code == 3 and address not in ours), address


def test_shmem_counts_a_deleted_object(child, unique):
    """/proc/meminfo's Shmem includes the pages of an unlinked, still mapped tmpfs object: what
    -u explains with it. Other processes move Shmem too: only a large, certain rise is asked."""
    def shmem():
        with open("/proc/meminfo") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Shmem:"))
    before = shmem()
    c = child(UNLINK_WHILE_HELD, f"/dev/shm/{unique.name}", 32 << 20, 32 << 20, "map")
    after = shmem()
    seg = listed("--kind", "posix")[f"posix:@{c.info['inode']}"]
    assert seg["rss"] == 32 << 20
    assert after - before > 24 << 20, (before, after)


def test_nattch_is_at_least_where_processes_are_hidden(hold, child, unique):
    h = hold({"kind": "posix", "name": unique.name, "size": 4096, "mode": 0o644},
             {"kind": "posix", "name": unique.name + "-2", "size": 4096, "mode": 0o644},
             {"kind": "sysv", "key": unique.key, "size": 4096, "mode": 0o644})
    shmid = h.objects[2]["shmid"]
    child(MAP_READONLY, f"/dev/shm/{unique.name}-2", prefix=python_as("nobody"))
    seen = listed("--kind", "posix", "--kind", "sysv", runner=lambda *a: run_as("nobody", *a))
    one, two, sysv = seen[f"posix:/{unique.name}"], seen[f"posix:/{unique.name}-2"], seen[f"sysv:{shmid}"]
    assert one["nattch"] == 0 and one["nattch_exact"] is False  # root's mapper is hidden: unknown, not 0
    assert two["nattch"] == 1 and two["nattch_exact"] is False  # nobody's own mapper, root's hidden
    assert sysv["nattch"] == 1 and sysv["nattch_exact"] is True  # the kernel counts SysV's
    out = run_as("nobody", "list", "--kind", "posix").out
    assert plain_cells(out, f"posix:/{unique.name}")["NATTCH"] == "?"
    assert plain_cells(out, f"posix:/{unique.name}-2")["NATTCH"] == "1+"
    out = run_as("nobody", "list", "--kind", "sysv").out
    assert plain_cells(out, f"sysv:{shmid}")["NATTCH"] == "1"
    r = run_as("nobody", "stat", f"posix:/{unique.name}-2")
    assert r.code == 0 and "nattch:    at least 1 (" in r.out and "processes not visible)" in r.out


def test_bare_inode_on_several_devices_names_each(child, tmp_path):
    """Every fresh tmpfs numbers its first file alike: `mmap:@INODE` then names several
    objects, and the usage error gives the address of each."""
    mounts = [tmp_path / "a", tmp_path / "b"]
    for mnt in mounts:
        mnt.mkdir()
        mount_tmpfs(mnt)
    try:
        held = [child(UNLINK_WHILE_HELD, mnt / "f", 4096, 4096, "map") for mnt in mounts]
        assert held[0].info["inode"] == held[1].info["inode"]
        qualified = [f"mmap:@{os.major(c.info['dev'])}:{os.minor(c.info['dev'])}:{c.info['inode']}" for c in held]
        r = run("stat", f"mmap:@{held[0].info['inode']}")
        assert r.code == 2 and "several devices" in r.err and all(q in r.err for q in qualified), r
        for q, c in zip(qualified, held):
            r = run("stat", "--json", q)
            assert r.code == 0 and r.json()["processes"][0]["pid"] == c.info["pid"]
            c.close()
    finally:
        for mnt in mounts:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_a_users_own_deleted_object_without_root(child, unique):
    """Without root, map_files is closed: what the mapping shows (owner, mapped size) stands in
    for the file, and its bytes cannot be reached; root sees the file itself."""
    import pwd
    nobody = pwd.getpwnam("nobody").pw_uid
    c = child(UNLINK_WHILE_HELD, f"/dev/shm/{unique.name}", 65536, 8192, "raw", prefix=python_as("nobody"))
    assert not any(os.readlink(f"/proc/{c.info['pid']}/fd/{fd}").startswith("/dev/shm")
                   for fd in os.listdir(f"/proc/{c.info['pid']}/fd"))
    address = f"posix:@{c.info['inode']}"
    seg = listed("--kind", "posix", runner=lambda *a: run_as("nobody", *a))[address]
    assert seg["status"] == ["deleted"] and seg["uid"] == nobody and seg["size"] == 65536 and seg["rss"] is None
    assert seg["nattch"] == 1 and seg["nattch_exact"] is False and pids_of(seg) == {c.info["pid"]}
    r = run_as("nobody", "read", address, "--length", "4", "-o", "-")
    assert r.code == 4 and "run as root" in r.err
    seg = listed("--kind", "posix")[address]
    assert seg["rss"] == 8192 and seg["uid"] == nobody and seg["perms"] == "0640"
