"""The inspector on a fake /proc: a small tree in tmp_path (sysvipc/shm, PID dirs with maps,
comm, ns/ipc and fd) and a fake /dev/shm, read through kinds.View(proc=..., shm_dir=...).
Pure and fast; the real-kernel tests stay beside it."""
import os

import pytest

from shmctl_cli import kinds
from shmctl_cli.procfs import maps as maps_module

OUR_NS, OTHER_NS = "ipc:[4026531839]", "ipc:[4026532999]"
SHMEM_DEV = os.makedev(0, 1)
HEADER = ("       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid"
          "      atime      dtime      ctime                   rss                  swap\n")


def _row(key, shmid, perms, size, cpid, nattch):
    return (f"{key:10d} {shmid:10d} {perms:5o} {size:21d} {cpid:5d} {cpid:5d} {nattch:6d} {0:5d} {0:5d} {0:5d}"
            f" {0:5d} {0:10d} {0:10d} {1700000000:10d} {size:21d} {0:21d}\n")


def _map_line(start, perms, dev, inode, path):
    return (f"{start:x}-{start + 0x1000:x} {perms} 00000000 {os.major(dev):02x}:{os.minor(dev):02x} {inode}"
            f"                          {path}\n")


class FakeProc:
    def __init__(self, root):
        self.root = root
        self.proc = root / "proc"
        self.shm_dir = root / "shm"
        (self.proc / "sysvipc").mkdir(parents=True)
        self.shm_dir.mkdir()
        self.process("self", "shmctl", OUR_NS)
        (self.proc / "self" / "mountinfo").write_text("")
        self.rows = []

    def sysv(self, *rows):
        (self.proc / "sysvipc" / "shm").write_text(HEADER + "".join(_row(*r) for r in rows))

    def process(self, pid, comm, ns=OUR_NS, maps=(), fds=()):
        d = self.proc / str(pid)
        (d / "ns").mkdir(parents=True)
        (d / "fd").mkdir()
        os.symlink(ns, d / "ns" / "ipc")
        (d / "comm").write_text(comm + "\n")
        (d / "maps").write_text("".join(_map_line(0x7f0000000000 + i * 0x10000, *m) for i, m in enumerate(maps)))
        for n, target in enumerate(fds):
            os.symlink(target, d / "fd" / str(n + 3))

    def view(self):
        view = kinds.View(proc=str(self.proc), shm_dir=str(self.shm_dir))
        view.host.__dict__["shmem_dev"] = SHMEM_DEV  # the kernel's shmem mount, as the fake maps show it
        return view


@pytest.fixture
def fake(tmp_path):
    return FakeProc(tmp_path)


def _by_address(inventory):
    return {s.address: s for s in inventory.segments}


def test_sysv_attachments_by_shmid_in_our_ipc_namespace(fake):
    fake.sysv((0x5EED0001, 32769, 0o600, 4096, 100, 1), (0x5EED0002, 32770, 0o640, 8192, 999, 0),
              (0, 32771, 0o600, 4096, 100, 0))
    fake.process(100, "holder", maps=[("rw-s", SHMEM_DEV, 32769, "/SYSV5eed0001 (deleted)")])
    # another IPC namespace reuses shmid 32769: not an attachment of ours
    fake.process(200, "container", ns=OTHER_NS, maps=[("rw-s", SHMEM_DEV, 32769, "/SYSV5eed0001 (deleted)")])
    inv = kinds.collect(["sysv"], fake.view(), processes=True)
    seg = _by_address(inv)
    assert set(seg) == {"sysv:32769", "sysv:32770", "sysv:32771"}
    assert [(a.pid, a.comm) for a in seg["sysv:32769"].attachments] == [(100, "holder")]
    assert seg["sysv:32769"].key == 0x5EED0001 and seg["sysv:32769"].size == 4096
    assert not seg["sysv:32769"].hugetlb
    # orphans: nobody attached and the creator gone; a live creator keeps it
    assert seg["sysv:32770"].orphan == "no process attached and creator pid 999 is gone"
    assert seg["sysv:32771"].orphan is None
    assert inv.hidden_processes == 0


def test_sysv_on_another_device_is_hugetlb(fake):
    fake.sysv((0x5EED0003, 5, 0o600, 2 << 20, 100, 1))
    fake.process(100, "holder", maps=[("rw-s", os.makedev(0, 42), 5, "/SYSV5eed0003 (deleted)")])
    (seg,) = kinds.collect(["sysv"], fake.view(), processes=True).segments
    assert seg.hugetlb and seg.pids == [100]


def test_posix_attachments_by_device_and_inode_orphans_and_holders(fake):
    for name in ("mapped", "held", "alone", "sem.lock"):
        (fake.shm_dir / name).write_bytes(b"x" * 100)
    (fake.shm_dir / "dir").mkdir()
    st = {name: os.stat(fake.shm_dir / name) for name in ("mapped", "held", "alone")}
    mapped = st["mapped"]
    fake.process(300, "mapper", maps=[("rw-s", mapped.st_dev, mapped.st_ino, "/dev/shm/mapped"),
                                      # same inode on another device (another tmpfs): not ours
                                      ("rw-s", os.makedev(0, 77), st["alone"].st_ino, "/dev/shm/alone")])
    fake.process(301, "opener", fds=[str(fake.shm_dir / "held")])
    inv = kinds.collect(["posix"], fake.view())
    seg = _by_address(inv)
    assert set(seg) == {"posix:/mapped", "posix:/held", "posix:/alone"}  # sem.* only with --all
    assert inv.skipped == ["dir (directory)"]
    assert seg["posix:/mapped"].pids == [300] and seg["posix:/mapped"].nattch == 1
    assert seg["posix:/mapped"].orphan is None
    assert seg["posix:/held"].nattch == 0 and seg["posix:/held"].orphan is None  # held open: in use
    assert seg["posix:/alone"].orphan == "no process maps it or holds it open"
    assert not seg["posix:/alone"].orphan_unsure
    with_sems = kinds.collect(["posix"], fake.view(), all_mappings=True)
    assert _by_address(with_sems)["posix:/sem.lock"].semaphore


def test_hidden_processes_are_counted_and_make_orphans_unsure(fake, monkeypatch):
    (fake.shm_dir / "alone").write_bytes(b"")
    fake.process(400, "secret")
    real = maps_module.read_bytes

    def read_bytes(path):
        if path == f"{fake.proc}/400/maps":
            raise PermissionError(13, "Permission denied", path)
        return real(path)

    monkeypatch.setattr(maps_module, "read_bytes", read_bytes)
    inv = kinds.collect(["posix"], fake.view())
    assert inv.hidden_processes == 1
    (seg,) = inv.segments
    assert seg.orphan_unsure and seg.orphan == ("no process maps it or holds it open"
                                                " (as far as visible: 1 process hidden)")


def test_mmap_anonymous_is_one_segment_per_inode(fake):
    fake.process(500, "parent", maps=[("rw-s", SHMEM_DEV, 9001, "/dev/zero (deleted)"),
                                      ("rw-s", SHMEM_DEV, 9002, "/memfd:ring (deleted)")])
    fake.process(501, "child", maps=[("rw-s", SHMEM_DEV, 9001, "/dev/zero (deleted)")])
    seg = _by_address(kinds.collect(["mmap"], fake.view()))
    assert set(seg) == {"mmap:@9001", "mmap:@9002"}
    assert seg["mmap:@9001"].backing == "anonymous" and seg["mmap:@9001"].pids == [500, 501]
    assert seg["mmap:@9001"].nattch == 2 and seg["mmap:@9001"].size == 0x1000
    assert seg["mmap:@9002"].backing == "memfd" and seg["mmap:@9002"].name == "memfd:ring"
