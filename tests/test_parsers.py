"""The /proc parsers on captured text (Linux 6.x, x86_64): pure functions, no kernel."""
import os

import pytest

from shmctl_cli.procfs import maps, meminfo, mountinfo, sysvipc

SYSVIPC = b"""\
       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap
         0          0  1600                  4096  7624  7624      1     0     0     0     0 1795453381          0 1795453381                     0                     0
      4660          1   600                 10000  7624  7624      1     0     0     0     0 1795453381          0 1795453381                  8192                     0
-559038737      32769  2640            1073741824   100   200      0  1000  1001  1002  1003 1795453300 1795453390 1795453200            1073741824                  4096
"""

# a kernel before 3.x had no rss and swap columns
SYSVIPC_OLD = b"""\
       key      shmid perms       size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime
      4660          1   600      10000  7624  7624      1     0     0     0     0 1795453381          0 1795453381
"""


def sysvipc_rows(text):
    """The records as tuples of ints in FIELDS order."""
    columns = sysvipc.parse_sysvipc_shm_columns(text)
    return list(zip(*(columns[f] for f in sysvipc.FIELDS)))


def test_sysvipc_columns_and_conversions():
    rows = sysvipc_rows(SYSVIPC)
    fields = [dict(zip(sysvipc.FIELDS, r)) for r in rows]
    dest, plain, locked = fields
    assert dest["key"] == 0 and dest["perms"] == 0o1600  # SHM_DEST + 0600
    assert plain == {"key": 4660, "shmid": 1, "perms": 0o600, "size": 10000, "cpid": 7624, "lpid": 7624,
                     "nattch": 1, "uid": 0, "gid": 0, "cuid": 0, "cgid": 0, "atime": 1795453381, "dtime": 0,
                     "ctime": 1795453381, "rss": 8192, "swap": 0}
    assert locked["key"] == 0xDEADBEEF  # printed signed with %d
    assert locked["perms"] == 0o2640 and locked["size"] == 1 << 30
    assert (locked["uid"], locked["gid"], locked["cuid"], locked["cgid"]) == (1000, 1001, 1002, 1003)
    assert (locked["rss"], locked["swap"]) == (1 << 30, 4096)


def test_sysvipc_without_rss_and_swap():
    (row,) = sysvipc_rows(SYSVIPC_OLD)
    record = dict(zip(sysvipc.FIELDS, row))
    assert record["size"] == 10000 and record["rss"] is None and record["swap"] is None


def test_sysvipc_empty_and_torn():
    assert sysvipc_rows(SYSVIPC.split(b"\n", 1)[0] + b"\n") == []
    with pytest.raises(ValueError):
        sysvipc_rows(SYSVIPC + b"1 2 3\n")


def test_sysv_segments_carry_status_bits_not_in_mode():
    from shmctl_cli.kinds.sysv import from_columns
    dest, plain, locked = from_columns(sysvipc.parse_sysvipc_shm_columns(SYSVIPC), live={100, 7624})
    assert (dest.mode, dest.dest, dest.locked) == (0o600, True, False)
    assert (plain.mode, plain.dest, plain.locked) == (0o600, False, False)
    assert (locked.mode, locked.dest, locked.locked) == (0o640, False, True)
    assert locked.address == "sysv:32769" and locked.status == ["locked"]


MAPS = b"""\
559b384dc000-559b384dd000 r--p 00000000 fe:00 26723                      /usr/bin/python3.11
7fef42ac3000-7fef42ac5000 rw-s 00000000 00:01 648906                     /dev/zero (deleted)
7fef42ac5000-7fef42ac7000 rw-s 00000000 00:28 2                          /dev/shm/my seg
7fef42ce8000-7fef42ceb000 rw-s 00000000 00:01 1                          /SYSV00001234 (deleted)
7fef437ba000-7fef437bb000 rw-s 00001000 fe:00 2146477                    /tmp/x.db
7fef43940000-7fef43941000 rw-s 00000000 00:01 648907                     /memfd:mfd (deleted)
7fef43941000-7fef43942000 rw-s 00000000 00:01 0                          /SYSVdeadbeef (deleted)
7fef43942000-7fef43949000 r--s 00000000 fe:00 338846                     /usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache
7fef43950000-7fef43951000 rw-p 00000000 00:00 0 
7fef43960000-7fef43961000 rw-s 00000000 00:0e 1234                       anon_inode:[io_uring]
7fef43970000-7fef43971000 rw-s 00000000 fe:00 99                         /tmp/new\\012line
7ffd1e9f0000-7ffd1e9f2000 r-xp 00000000 00:00 0                          [vdso]
"""


def test_maps_keeps_only_shared_mappings():
    found = maps.parse_shared_maps(MAPS)
    assert [m.path for m in found] == [
        "/dev/zero (deleted)", "/dev/shm/my seg", "/SYSV00001234 (deleted)", "/tmp/x.db", "/memfd:mfd (deleted)",
        "/SYSVdeadbeef (deleted)", "/usr/lib/x86_64-linux-gnu/gconv/gconv-modules.cache", "anon_inode:[io_uring]",
        "/tmp/new\nline"]
    anon, posix, sysv = found[:3]
    assert (anon.start, anon.end, anon.perms, anon.dev, anon.inode) == (
        0x7FEF42AC3000, 0x7FEF42AC5000, "rw-s", os.makedev(0, 1), 648906)
    assert anon.deleted and anon.bare_path == "/dev/zero"
    assert posix.dev == os.makedev(0, 0x28) and not posix.deleted  # a space inside a name is kept
    assert sysv.inode == 1  # the shmid
    assert found[3].offset == 0x1000 and found[3].dev == os.makedev(0xFE, 0)


MEMINFO = """\
MemTotal:       24669000 kB
Shmem:              8856 kB
ShmemHugePages:        0 kB
HugePages_Total:       4
HugePages_Free:        3
Hugepagesize:       2048 kB
Hugetlb:            8192 kB
"""


def test_meminfo_in_bytes_counts_as_counts():
    info = meminfo.parse_meminfo(MEMINFO)
    assert info["Shmem"] == 8856 * 1024 and info["Hugetlb"] == 8 << 20 and info["Hugepagesize"] == 2 << 20
    assert info["HugePages_Total"] == 4 and info["HugePages_Free"] == 3


MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334492k,nr_inodes=3083623,mode=755
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 24 0:27 / /dev/shm rw,nosuid,nodev shared:5 - tmpfs tmpfs rw
41 27 0:40 / /dev/hugepages rw,relatime shared:7 master:1 - hugetlbfs hugetlbfs rw,pagesize=2M
"""


def test_mountinfo_device_to_fstype():
    types = mountinfo.parse_mountinfo(MOUNTINFO)
    assert types[os.makedev(0, 27)] == "tmpfs"
    assert types[os.makedev(254, 0)] == "ext4"
    assert types[os.makedev(0, 40)] == "hugetlbfs"
    assert types[os.makedev(0, 6)] == "devtmpfs"


def test_a_redirected_proc_root(tmp_path):
    """Readers take a root path: a fake /proc with one process, one that vanished, one whose
    maps are not a file."""
    (tmp_path / "sysvipc").mkdir()
    (tmp_path / "sysvipc" / "shm").write_bytes(SYSVIPC)
    (tmp_path / "meminfo").write_text(MEMINFO)
    (tmp_path / "100").mkdir()
    (tmp_path / "100" / "maps").write_bytes(MAPS)
    (tmp_path / "200").mkdir()  # exited between listdir and open
    (tmp_path / "300" / "maps").mkdir(parents=True)
    (tmp_path / "self").mkdir()
    scan = maps.scan_shared_maps(str(tmp_path))
    assert scan.pids == {100, 200, 300} and list(scan.by_pid) == [100] and scan.hidden == 0
    assert len(sysvipc.read_sysvipc_shm(str(tmp_path))["shmid"]) == 3
    assert meminfo.read_meminfo(str(tmp_path))["Shmem"] == 8856 * 1024

    from shmctl_cli.kinds import View, sysv
    view = View(proc=str(tmp_path), shm_dir=str(tmp_path))
    segments = {s.id: s for s in sysv.collect(view, processes=True)}
    assert [a.pid for a in segments[1].attachments] == [100]  # /SYSV00001234, inode 1
    assert [a.pid for a in segments[0].attachments] == [100]  # dest: key 0 here, deadbeef in maps
    assert segments[32769].orphan is None  # nattch 0, but its creator (pid 100) lives
    (tmp_path / "100" / "maps").unlink()
    (tmp_path / "100").rmdir()
    orphan = {s.id: s for s in sysv.collect(View(proc=str(tmp_path)))}[32769]
    assert orphan.orphan == "no process attached and creator pid 100 is gone"
