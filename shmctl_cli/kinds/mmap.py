"""mmap segments: MAP_SHARED mappings that are not SysV or our /dev/shm, found only in
/proc/PID/maps. One segment is one (device, inode), however many processes map it."""
from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..address import inode_address, namespace_prefix
from ..errors import Conflict, NotFound, PermissionDenied, ShmctlError, UsageError, local_error
from ..model import Segment
from ..procfs.maps import DELETED, SharedMapping
from ..system import View
from .base import DESCRIBED, CreateOptions, FileKind, completion_note
from .deleted import freed_when
from .paths import identity, lstat_path, same_file

if TYPE_CHECKING:
    from ..address import Address
    from .base import Typed
    from .access import Handle
    from .files import Created
from .sysv import SYSV_PREFIX

SHMEM_FS = ("tmpfs", "hugetlbfs", "ramfs")
NOT_SEGMENTS_FS = ("devtmpfs", "proc", "sysfs", "devpts", "debugfs", "tracefs", "bpf")
ANON_NAMES = {"/dev/zero" + DELETED: "anonymous", "/anon_hugepage" + DELETED: "anonymous", "": "anonymous"}


def classify(m: SharedMapping, pid: int, view: View, all_mappings: bool) -> Optional[str]:
    """The backing of an mmap segment ("anonymous", "memfd", "tmpfs", "hugetlbfs", "file"),
    or None for a mapping that is not one (SysV, our /dev/shm, devices, read-only files)."""
    path = m.path
    if path.startswith(SYSV_PREFIX) or m.dev == view.shm_dev or m.dev in view.host.shm_devices:
        return None  # SysV, or a /dev/shm that the posix kind lists
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
    """The file behind a mapping: through the mapping itself (map_files: root only, and the
    only way into an anonymous or memfd segment), else by its path beneath the process's
    root with no symlink followed; either way only if it is the mapped (device, inode)."""
    try:
        st = os.stat(f"{view.proc}/{pid}/map_files/{m.start:x}-{m.end:x}")
        if same_file(st, m.dev, m.inode):
            return st
    except OSError:
        pass
    if m.deleted or not m.path.startswith("/"):
        return None
    st = _lstat_in_root(pid, m.path, view)
    return st if st is not None and same_file(st, m.dev, m.inode) else None


def _lstat_in_root(pid: int, path: str, view: View) -> Optional[os.stat_result]:
    """lstat of `path` as the process sees it: beneath its root, no symlink followed."""
    try:
        root = os.open(f"{view.proc}/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        return lstat_path(path, base=root)
    except ShmctlError:
        return None
    finally:
        os.close(root)


def _reaches(path: str, dev: int, ino: int, base: Optional[int]) -> bool:
    """Whether `path`, symlinks unfollowed, is the file (dev, ino) in the mount namespace whose
    root is `base` (None: the View's own)."""
    try:
        return same_file(lstat_path(path, base=base), dev, ino)
    except ShmctlError:
        return False


def _reaches_in(pid: int, m: SharedMapping, view: View) -> bool:
    """Whether the mapper's own path (beneath its root) leads to the mapped file."""
    st = _lstat_in_root(pid, m.path, view)
    return st is not None and same_file(st, m.dev, m.inode)


def _path_address(m: SharedMapping, backing: str, pid: int, view: View) -> Tuple[str, Optional[int]]:
    """(address, mount namespace): by path where the path leads to the file — in the View's
    mount namespace, else in the mapper's (`mmap@mnt:NS:/path`: a container's /tmp/x is not
    ours) — else by inode."""
    if backing not in ("anonymous", "memfd") and m.path.startswith("/"):
        if _reaches(m.path, m.dev, m.inode, view.root_fd):
            return f"{namespace_prefix('mmap', view.qualifier('mmap'))}:{m.path}", view.mnt_ns
        theirs = view.host.namespace_of(pid, "mnt")
        if theirs is not None and theirs != view.mnt_ns and _reaches_in(pid, m, view):
            shown = None if theirs == view.home["mnt"] else theirs
            return f"{namespace_prefix('mmap', shown)}:{m.path}", theirs
    return _inode_address(m, view), None


def _new_segment(m: SharedMapping, backing: str, st: Optional[os.stat_result], view: View,
                 pid: Optional[int] = None) -> Segment:
    address, namespace = _path_address(m, backing, pid if pid is not None else os.getpid(), view)
    name = m.bare_path if backing != "anonymous" else "anonymous"
    if name.startswith("/memfd:"):
        name = name[1:]
    seg = Segment("mmap", address, m.inode, name=name, device=m.dev, backing=backing, attachments=[],
                  namespace=namespace)
    if st is not None:
        seg.mode, seg.uid, seg.gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        seg.size = st.st_size
        seg.atime, seg.ctime, seg.mtime = int(st.st_atime), int(st.st_ctime), int(st.st_mtime)
        if backing != "file":  # tmpfs-like: allocated blocks are memory; disk files: unknown
            seg.rss = st.st_blocks * 512
    seg.deleted = _lost_its_name(m, backing, st)
    return seg


def _inode_address(m: SharedMapping, view: View) -> str:
    """`mmap:@INODE` for the kernel's internal shmem mount (anonymous and memfd memory), whose
    inodes are unique; `mmap:@MAJ:MIN:INODE` on any other device, where inodes repeat."""
    return inode_address("mmap", m.inode, None if m.dev == view.shmem_dev else m.dev)


def _lost_its_name(m: SharedMapping, backing: str, st: Optional[os.stat_result]) -> bool:
    """A file that had a name and lost it. The kernel says " (deleted)" of anonymous and memfd
    memory too, which never had one; and a name may end in " (deleted)" by itself: where the
    file can be stat'ed, only st_nlink 0 counts."""
    if backing in ("anonymous", "memfd") or not m.deleted:
        return False
    return st is None or st.st_nlink == 0


def _is_device(st: Optional[os.stat_result]) -> bool:
    return st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode))


def scan(view: View, all_mappings: bool = False, inode: Optional[int] = None) -> List[Segment]:
    """The mmap segments in every process's maps (only those of `inode`, when given)."""
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
            seg = segments[key] = _new_segment(m, backing, st, view, pid)
            if st is None:  # not ours to stat: owner and size as the mappers show them
                seg.uid = view.uid_of(pid)
                unsized.add(key)
        seg.attachments.append(view.attachment(pid, m))
        seg.hugetlb = seg.hugetlb or is_hugetlb(m, seg.backing, view)
        if key in unsized:
            seg.size = max(seg.size, m.offset + m.end - m.start)
    for seg in segments.values():
        seg.nattch = len(seg.pids)
        seg.nattch_unsure = view.maps.hidden  # the number of processes not seen: nattch is "at least"
    return list(segments.values())


def _lstat(address: "Address", view: View) -> os.stat_result:
    """The file at an mmap:/PATH address, with no symlink followed in any component."""
    try:
        return lstat_path(address.path, str(address), base=view.root_fd)
    except ShmctlError as exc:
        if exc.errno == errno.ENOENT:
            raise NotFound(str(address), "no such file") from None
        if isinstance(exc, PermissionDenied):
            raise PermissionDenied(str(address), "cannot stat the file", "run as its owner or root") from None
        raise


def _find_path(address: "Address", view: View) -> Segment:
    st = _lstat(address, view)
    if stat.S_ISLNK(st.st_mode):
        raise NotFound(str(address), "a symlink, not a segment", "give the path it points to")
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(str(address), "not a regular file, so not a shared-memory segment")
    mapped = scan(view, all_mappings=True, inode=st.st_ino)
    mapped = [s for s in mapped if (s.device, s.id) == identity(st)]
    if mapped:  # the name it was asked by (the maps may show another link to the same file)
        mapped[0].address = str(address)
        return mapped[0]
    fstype = view.fstype(st.st_dev, view.ns_pid if view.ns_pid is not None else os.getpid())
    backing = fstype if fstype in SHMEM_FS else "file"
    fake = SharedMapping(0, 0, "----", 0, st.st_dev, st.st_ino, address.path)
    seg = _new_segment(fake, backing, st, view)
    seg.nattch = 0
    seg.nattch_unsure = view.maps.hidden
    return seg


def _nameless(segment: Segment) -> Conflict:
    if segment.deleted:
        return Conflict(segment.address, f"the file {segment.name} was deleted and has no name left to remove: "
                        f"{freed_when(segment)}", "end those processes, or have them unmap it")
    holders = ", ".join(f"{a.pid} ({a.comm})" for a in segment.attachments or ()) or "no visible process"
    return Conflict(segment.address, f"{segment.backing or 'deleted'} shared memory has no name to remove: "
                    f"it lives while processes map it: {holders}", "end those processes to free it")


def _new_file_directory(directory: str, where: str, view: View) -> int:
    """The directory a new mmap file goes in: a local directory the user named, not a
    segment, so exit 2 where it does not exist (4 not ours to reach, 5 a symlink or no
    directory on the way, as for read -o), never 3."""
    from .files import open_directory
    try:
        return open_directory(directory or "/", where, view.root_fd)
    except NotFound as exc:
        if exc.errno is not None:
            raise local_error(OSError(exc.errno, exc.why), f"create {where}") from None
        raise Conflict(f"create {where}", exc.why, exc.hint) from None


class MmapKind(FileKind):
    name = "mmap"
    removed_in_bulk = False
    found_in_processes = True

    def collect(self, view: View, all_mappings: bool, processes: bool):
        return scan(view, all_mappings), []

    def complete(self, typed: "Typed", view: View) -> List[Tuple[str, str, int]]:
        """Only for a word that starts with `mmap:`: finding them takes the maps scan."""
        if not typed.starts("mmap:"):
            return []
        taken = typed.taken_strings()
        segments = [seg for seg in scan(view) if seg.address not in taken]
        chosen = typed.choose([seg.address for seg in segments])
        describe = typed.describe and len(chosen) <= DESCRIBED
        return [(candidate, completion_note("mmap", segments[i].size, segments[i].uid) if describe else "", form)
                for candidate, form, i in chosen]

    def find(self, address: "Address", view: View) -> Segment:
        if address.path is not None:
            return _find_path(address, view)
        matches = [s for s in scan(view, all_mappings=True, inode=address.inode)
                   if s.id == address.inode and address.device in (None, s.device)]
        if not matches:
            hint = "run as root to see every process" if view.maps.hidden else "see shmctl list --kind mmap"
            raise NotFound(str(address), "no process maps a shared segment with that inode", hint)
        if len(matches) > 1:
            raise UsageError(str(address), "that inode is on several devices: "
                             + ", ".join(f"{inode_address('mmap', s.id, s.device)} ({s.name})" for s in matches),
                             "give the address with its device")
        return matches[0]

    def resolve(self, address: "Address", view: View) -> "Address":
        """`mmap:/dev/shm/NAME` is the POSIX object NAME: give it every POSIX safeguard (sem.*,
        symlinks, processes holding it open) however it was spelled."""
        if address.path is None:
            return address
        directory, name = os.path.split(address.path)
        if view.shm_dir is None:
            return address
        try:  # no symlink followed: /tmp/evil -> /dev/shm must not turn mmap:/tmp/evil/x into posix:/x
            here, shm = lstat_path(directory, base=view.root_fd), os.stat(view.shm_dir)
        except (OSError, ShmctlError):
            return address
        in_shm = identity(here) == identity(shm)
        if not in_shm or not name:
            return address
        from ..address import Address, check_posix_name
        return Address("posix", name=check_posix_name(name), namespace=address.namespace)

    # --- lifecycle: create, open, remove ---

    def create(self, address: "Address", options: CreateOptions, view: View) -> "Created":
        from .files import Place, create_file
        path = address.path
        where = f"mmap:{path}"
        directory, name = os.path.split(path)
        if name in ("", ".", ".."):
            raise UsageError(f"create {where}", "the path names a directory, not a file", "e.g. mmap:/tmp/segment")
        req = self.request(options)
        req.users = lambda st: view.file_users(st.st_dev, st.st_ino)
        with Place(where, directory, _new_file_directory(directory, where, view), name) as place:
            return create_file(place, req)

    def open_segment(self, address: "Address", view: View, writable: bool) -> "Handle":
        """A file by its path; an anonymous or memfd segment through the map_files link of a
        process that maps it (root only: CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE)."""
        from .files import open_file
        if address.path is not None:
            # no symlink followed, anywhere in it; beneath the root of the address's mount namespace
            return open_file(str(address), address.path, writable, base=view.root_fd)
        segment = self.find(address, view)
        a = segment.attachments[0]
        link = f"{view.proc}/{a.pid}/map_files/{a.start:x}-{a.end:x}"
        try:  # map_files links are the way in; the pid may have been reused since: check the file
            handle = open_file(str(address), link, writable, nofollow=False, expect=(segment.device, segment.id))
        except PermissionDenied:
            raise PermissionDenied(str(address), "anonymous and memfd memory is reachable only through "
                                   "/proc/PID/map_files", "run as root") from None
        return handle

    def growth_directory(self, where: str, address: "Address", view: View, size: int, end: int) -> str:
        if address.path is None:
            raise Conflict(where, f"{end - size} bytes would pass the end ({size} bytes)",
                           "an anonymous or memfd segment is as large as its processes map it")
        return os.path.dirname(address.path)

    def not_shared_memory(self, segment: Segment, view: View) -> Optional[str]:
        """What a segment is when it is no shared memory at all: a file on a disk filesystem
        that processes map MAP_SHARED (a database), which bulk removal must never unlink."""
        if segment.backing in SHMEM_FS or segment.backing in ("anonymous", "memfd"):
            return None
        pids = [a.pid for a in segment.attachments or ()] or [os.getpid()]
        fstype = view.fstype(segment.device, pids[0]) if segment.device is not None else None
        return f"a file on {fstype or 'a filesystem of unknown type'}, not shared memory"

    def glob_subject(self, segment: Segment, glob: str) -> Optional[str]:
        """The path (or `memfd:NAME`); anonymous memory has no name."""
        return None if segment.backing == "anonymous" else segment.name

    def check_removable(self, segment: Segment) -> None:
        if segment.address.startswith("mmap:@"):
            raise _nameless(segment)

    def remove(self, segment: Segment, view: View) -> None:
        """Unlink the file's name, through its directory reached with no symlink followed, and
        only while the name still is the (device, inode) that was found."""
        from .files import unlink_file
        if segment.backing in ("anonymous", "memfd") or segment.address.startswith("mmap:@"):
            raise _nameless(segment)
        # the raw path (parse_address would decode a literal \xHH in it), after any namespace
        path = segment.address[segment.address.index(":/") + 1:]
        unlink_file(segment.address, path, expect=(segment.device, segment.id), base=view.root_fd)


KIND = MmapKind()
