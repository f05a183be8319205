"""Plain data, no I/O: what the kinds collect and the renderer shows. Plain classes with
__slots__ (not dataclasses): `list` builds tens of thousands of segments, and a dataclass
costs an exec() at import on every start-up."""
from __future__ import annotations

from typing import Dict, Iterable, List, Optional


class _Record:
    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in self.__slots__)


class Attachment(_Record):
    """One mapping of a segment in one process."""
    __slots__ = ("pid", "comm", "uid", "user", "start", "end", "perms", "offset", "command", "unsure")

    def __init__(self, pid: int, *, comm: str = "", uid: Optional[int] = None, user: Optional[str] = None,
                 start: int = 0, end: int = 0, perms: str = "", offset: int = 0,
                 command: Optional[str] = None):
        self.pid, self.comm, self.uid, self.user = pid, comm, uid, user
        self.start, self.end, self.perms, self.offset = start, end, perms, offset
        self.command = command  # the full command line, where it was asked for
        # SysV: whether the mapping is of this segment or of one with the same shmid in another
        # IPC namespace could not be told (kinds/sysv/namespaces.py)
        self.unsure = False

    @property
    def length(self) -> int:
        return self.end - self.start


class Segment(_Record):
    """One segment of any kind. `id` is the shmid (sysv) or the inode (posix, mmap); `name`
    the POSIX name with its slash, or the mmap path or backing; `attachments` is None when
    processes were not scanned. The identity (kind, address, id, key) may be given by
    position; every other field only by keyword."""
    __slots__ = ("kind", "address", "id", "key", "name", "mode", "uid", "gid", "cuid", "cgid", "size", "rss",
                 "swap", "nattch", "cpid", "lpid", "atime", "dtime", "ctime", "mtime", "dest", "locked",
                 "hugetlb", "semaphore", "orphan", "device", "backing", "attachments", "deleted", "namespace",
                 "container", "orphan_unsure", "nattch_unsure")

    def __init__(self, kind: str, address: str, id: Optional[int] = None, key: Optional[int] = None, *,
                 name: Optional[str] = None, mode: int = 0, uid: Optional[int] = None,
                 gid: Optional[int] = None, cuid: Optional[int] = None, cgid: Optional[int] = None,
                 size: int = 0, rss: Optional[int] = None, swap: Optional[int] = None,
                 nattch: Optional[int] = None, cpid: Optional[int] = None, lpid: Optional[int] = None,
                 atime: int = 0, dtime: int = 0, ctime: int = 0, mtime: int = 0, dest: bool = False,
                 locked: bool = False, hugetlb: bool = False, semaphore: bool = False,
                 orphan: Optional[str] = None, device: Optional[int] = None, backing: Optional[str] = None,
                 attachments: Optional[List[Attachment]] = None, deleted: bool = False,
                 namespace: Optional[int] = None, container: Optional[str] = None):
        self.kind, self.address, self.id, self.key, self.name = kind, address, id, key, name
        self.mode, self.uid, self.gid, self.cuid, self.cgid = mode, uid, gid, cuid, cgid
        self.size, self.rss, self.swap, self.nattch = size, rss, swap, nattch
        self.cpid, self.lpid = cpid, lpid
        self.atime, self.dtime, self.ctime, self.mtime = atime, dtime, ctime, mtime
        self.dest, self.locked, self.hugetlb, self.semaphore = dest, locked, hugetlb, semaphore
        self.orphan = orphan  # why it is an orphan, or None
        self.device, self.backing = device, backing
        self.attachments = attachments
        self.deleted = deleted  # gone from every directory, alive while processes map or hold it
        self.namespace = namespace  # inode of its IPC (sysv) or mount (posix, mmap path) namespace
        self.container = container  # the container that namespace belongs to, where one is known
        self.orphan_unsure = False  # an orphan as far as visible: some processes were hidden
        self.nattch_unsure = False  # nattch counts the visible processes only: it is "at least"

    @classmethod
    def rows(cls, *columns) -> "Iterable[Segment]":
        """The fast path of `list`: segments from columns in __init__'s order (iterables, one
        value a segment), without a keyword per field. 32000 SysV segments take 17 ms this way
        and 48 ms by keyword (Python 3.11); tests/test_model.py keeps _row in step with __init__."""
        return map(cls._row, *columns)

    @staticmethod
    def _row(kind, address, id, key, name, mode, uid, gid, cuid, cgid, size, rss, swap, nattch, cpid, lpid,
             atime, dtime, ctime, mtime, dest, locked, hugetlb, semaphore, orphan, device, backing, attachments,
             deleted, namespace, container):
        s = _new(Segment)
        s.kind, s.address, s.id, s.key, s.name = kind, address, id, key, name
        s.mode, s.uid, s.gid, s.cuid, s.cgid = mode, uid, gid, cuid, cgid
        s.size, s.rss, s.swap, s.nattch, s.cpid, s.lpid = size, rss, swap, nattch, cpid, lpid
        s.atime, s.dtime, s.ctime, s.mtime = atime, dtime, ctime, mtime
        s.dest, s.locked, s.hugetlb, s.semaphore = dest, locked, hugetlb, semaphore
        s.orphan, s.device, s.backing, s.attachments = orphan, device, backing, attachments
        s.deleted, s.namespace, s.container = deleted, namespace, container
        s.orphan_unsure = s.nattch_unsure = False
        return s

    @property
    def status(self) -> List[str]:
        # hugetlb None: unknown (a SysV segment nobody visibly attaches that a pool could hold)
        flags = (self.semaphore, self.deleted, self.dest, self.locked, self.hugetlb is not False, self.orphan)
        unsure = {"orphan": self.orphan_unsure, "hugetlb": self.hugetlb is None}
        return [w + "?" if unsure.get(w) else w for w, on in zip(STATUS_WORDS, flags) if on]

    @property
    def pids(self) -> List[int]:
        return sorted({a.pid for a in self.attachments or ()})


_new = object.__new__
STATUS_WORDS = ("semaphore", "deleted", "dest", "locked", "hugetlb", "orphan")


class Namespace(_Record):
    """One namespace `list --all-namespaces` looked into: its type ("ipc", "mnt") and inode, a
    process in it (the lowest pid) and its command, the container it belongs to, and the
    kinds seen there (a mount namespace whose /dev/shm another one already showed has none)."""
    __slots__ = ("type", "inode", "pid", "command", "container", "kinds", "home")

    def __init__(self, type: str, inode: Optional[int], *, pid: Optional[int] = None, command: str = "",
                 container: Optional[str] = None, kinds: Optional[List[str]] = None, home: bool = False):
        self.type, self.inode, self.pid, self.command = type, inode, pid, command
        self.container, self.kinds, self.home = container, kinds or [], home

    @property
    def label(self) -> str:
        return f"{self.type}:{self.inode}"


class Inventory:
    """Everything one `list` saw, plus what it could not see."""

    def __init__(self):
        self.segments: List[Segment] = []
        self.namespaces: List[Namespace] = []  # with --all-namespaces: every one looked into
        self.hidden_processes = 0  # processes whose maps could not be read
        self.skipped: List[str] = []  # /dev/shm entries that are not segments
        self.meminfo: Dict[str, int] = {}
