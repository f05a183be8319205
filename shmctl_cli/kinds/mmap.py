"""mmap segments: MAP_SHARED mappings that are not SysV or our /dev/shm, found only in
/proc/PID/maps. One segment is one (device, inode), however many processes map it."""
from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..errors import Conflict, NotFound, PermissionDenied, UsageError, from_oserror
from ..model import Segment
from ..procfs.maps import DELETED, SharedMapping
from . import View

if TYPE_CHECKING:
    from ..address import Address
    from .access import Handle
    from .files import Created, FileRequest
from .sysv import SYSV_PREFIX

SHMEM_FS = ("tmpfs", "hugetlbfs", "ramfs")
NOT_SEGMENTS_FS = ("devtmpfs", "proc", "sysfs", "devpts", "debugfs", "tracefs", "bpf")
ANON_NAMES = {"/dev/zero" + DELETED: "anonymous", "/anon_hugepage" + DELETED: "anonymous", "": "anonymous"}


def classify(m: SharedMapping, pid: int, view: View, all_mappings: bool) -> Optional[str]:
    """The backing of an mmap segment ("anonymous", "memfd", "tmpfs", "hugetlbfs", "file"),
    or None for a mapping that is not one (SysV, our /dev/shm, devices, read-only files)."""
    path = m.path
    if path.startswith(SYSV_PREFIX) or m.dev == view.shm_dev:
        return None
    if path in ANON_NAMES:
        return ANON_NAMES[path]
    if path.startswith("/memfd:"):
        return "memfd"
    if not path.startswith("/"):
        return None  # anon_inode:[io_uring], [vvar] and such: not shared memory
    fstype = view.fstype(m.dev, pid)
    if fstype in NOT_SEGMENTS_FS:
        return None
    if fstype in SHMEM_FS:
        return fstype
    if "w" in m.perms or all_mappings:
        return "file"
    return None


def is_hugetlb(m: SharedMapping, backing: str, view: View) -> bool:
    if backing == "hugetlbfs" or m.path.startswith("/anon_hugepage"):
        return True
    return backing == "memfd" and view.shmem_dev is not None and m.dev != view.shmem_dev


def _stat_backing(pid: int, m: SharedMapping, view: View) -> Optional[os.stat_result]:
    """The file behind a mapping: by its path in the process's root, else through
    map_files (root only; the only way into an anonymous or memfd segment)."""
    candidates = [f"{view.proc}/{pid}/map_files/{m.start:x}-{m.end:x}"]
    if not m.deleted and m.path.startswith("/"):
        candidates.insert(0, f"{view.proc}/{pid}/root{m.path}")
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (m.dev, m.inode):
            return st
    return None


def _ours(path: str, dev: int, ino: int) -> bool:
    """Whether `path` in our mount namespace is the file another process maps by that path
    (a container's /tmp/x is not ours)."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (st.st_dev, st.st_ino) == (dev, ino)


def _new_segment(m: SharedMapping, backing: str, st: Optional[os.stat_result], view: View) -> Segment:
    named = backing not in ("anonymous", "memfd") and not m.deleted and _ours(m.path, m.dev, m.inode)
    address = f"mmap:{m.path}" if named else f"mmap:@{m.inode}"
    name = m.bare_path if backing != "anonymous" else "anonymous"
    if name.startswith("/memfd:"):
        name = name[1:]
    seg = Segment("mmap", address, m.inode, None, name, device=m.dev, backing=backing, attachments=[])
    if st is not None:
        seg.mode, seg.uid, seg.gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        seg.size = st.st_size
        seg.atime, seg.ctime, seg.mtime = int(st.st_atime), int(st.st_ctime), int(st.st_mtime)
        if backing != "file":  # tmpfs-like: allocated blocks are memory; disk files: unknown
            seg.rss = st.st_blocks * 512
    return seg


def _is_device(st: Optional[os.stat_result]) -> bool:
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode))


def collect(view: View, all_mappings: bool = False, inode: Optional[int] = None) -> List[Segment]:
    segments: Dict[Tuple[int, int], Segment] = {}
    rejected, unsized = set(), set()
    for pid, m in view.mappings():
        key = (m.dev, m.inode)
        if (inode is not None and m.inode != inode) or key in rejected:
            continue
        seg = segments.get(key)
        if seg is None:
            backing = classify(m, pid, view, all_mappings)
            st = _stat_backing(pid, m, view) if backing else None
            if backing is None or _is_device(st):
                rejected.add(key)
                continue
            seg = segments[key] = _new_segment(m, backing, st, view)
            if st is None:  # not ours to stat: owner and size as the mappers show them
                seg.uid = view.uid_of(pid)
                unsized.add(key)
        seg.attachments.append(view.attachment(pid, m))
        seg.hugetlb = seg.hugetlb or is_hugetlb(m, seg.backing, view)
        if key in unsized:
            seg.size = max(seg.size, m.offset + m.end - m.start)
    for seg in segments.values():
        seg.nattch = len(seg.pids)
    return list(segments.values())


def _find_path(address: "Address", view: View) -> Segment:
    try:
        st = os.lstat(address.path)
    except FileNotFoundError:
        raise NotFound(str(address), "no such file") from None
    except PermissionError:
        raise PermissionDenied(str(address), "cannot stat the file", "run as its owner or root") from None
    if stat.S_ISLNK(st.st_mode):
        raise NotFound(str(address), "a symlink, not a segment", "give the path it points to")
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(str(address), "not a regular file, so not a shared-memory segment")
    mapped = collect(view, all_mappings=True, inode=st.st_ino)
    mapped = [s for s in mapped if (s.device, s.id) == (st.st_dev, st.st_ino)]
    if mapped:
        return mapped[0]
    fstype = view.fstype(st.st_dev, os.getpid())
    backing = fstype if fstype in SHMEM_FS else "file"
    fake = SharedMapping(0, 0, "----", 0, st.st_dev, st.st_ino, address.path)
    seg = _new_segment(fake, backing, st, view)
    seg.nattch = 0
    return seg


def find(address: "Address", view: View) -> Segment:
    if address.path is not None:
        return _find_path(address, view)
    matches = [s for s in collect(view, all_mappings=True, inode=address.inode)
               if s.id == address.inode]
    if not matches:
        hint = "run as root to see every process" if view.maps.hidden else "see shmctl list --kind mmap"
        raise NotFound(str(address), "no process maps a shared segment with that inode", hint)
    if len(matches) > 1:
        raise UsageError(str(address), "that inode is on several devices: "
                         + ", ".join(f"{s.name} (dev {os.major(s.device)}:{os.minor(s.device)})" for s in matches),
                         "address it by path")
    return matches[0]


# --- lifecycle: create, open, remove ---

def create(path: str, req: "FileRequest", view: View) -> "Created":
    from .files import create_file, unlink_file

    def open_new() -> int:
        try:
            return os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC, req.mode)
        except OSError as exc:
            raise from_oserror(exc, f"create mmap:{path}") from None
    from . import file_users
    req.users = lambda st: file_users(view, st.st_dev, st.st_ino)
    return create_file(f"mmap:{path}", path, req, open_new, lambda: unlink_file(f"mmap:{path}", path))


def open_segment(address: "Address", view: View, writable: bool) -> "Handle":
    """A file by its path; an anonymous or memfd segment through the map_files link of a
    process that maps it (root only: CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)."""
    from .files import open_file
    if address.path is not None:
        return open_file(str(address), address.path, writable)
    segment = find(address, view)
    a = segment.attachments[0]
    link = f"{view.proc}/{a.pid}/map_files/{a.start:x}-{a.end:x}"
    try:
        handle = open_file(str(address), link, writable, nofollow=False)  # map_files links are the way in
    except PermissionDenied:
        raise PermissionDenied(str(address), "anonymous and memfd memory is reachable only through "
                               "/proc/PID/map_files", "run as root") from None
    return handle


def remove(segment: Segment) -> None:
    from .files import unlink_file
    if segment.backing in ("anonymous", "memfd") or segment.address.startswith("mmap:@"):
        holders = ", ".join(f"{a.pid} ({a.comm})" for a in segment.attachments or ()) or "no visible process"
        raise Conflict(segment.address, f"{segment.backing or 'deleted'} shared memory has no name to remove: "
                       f"it lives while processes map it: {holders}", "end those processes to free it")
    unlink_file(segment.address, segment.address[len("mmap:"):])
