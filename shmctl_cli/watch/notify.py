"""What wakes the loop when /dev/shm changes, and who changed it.

fanotify (root): fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_DFID_NAME) and an inode mark on
the /dev/shm directory (FAN_CREATE, FAN_DELETE, FAN_MOVED_FROM/TO, FAN_ONDIR, and FAN_MODIFY,
FAN_ATTRIB, FAN_CLOSE_WRITE of its entries): each event carries the pid of the process that
made it, and the entry's name. Checked on 6.18 on tmpfs: a filesystem mark works as well for
root; an unprivileged group (kernel >= 5.13) may have the inode mark but is told pid 0 for
every other process, and may not mark a filesystem (EPERM) -- so it is root's only.
Events of one name still queued merge into one (FAN_CREATE|FAN_MOVED_FROM): the order inside
is lost, so the snapshot decides what happened and an event only says who touched the name.

inotify (everyone else): IN_CREATE, IN_DELETE, IN_MODIFY, IN_MOVED_FROM/TO, IN_CLOSE_WRITE,
IN_ATTRIB wake the loop; no pid.
"""
from __future__ import annotations

import contextlib
import errno
import os
import struct
from typing import Dict, List, Optional, Tuple

from .. import syscalls
from ..errors import ShmctlError

# fanotify(7)
FAN_CLOEXEC, FAN_NONBLOCK, FAN_CLASS_NOTIF = 0x1, 0x2, 0x0
FAN_REPORT_DFID_NAME = 0x400 | 0x800  # FAN_REPORT_DIR_FID | FAN_REPORT_NAME
FAN_MARK_ADD = 0x1
FAN_MODIFY, FAN_CLOSE_WRITE, FAN_ATTRIB = 0x2, 0x8, 0x4
FAN_MOVED_FROM, FAN_MOVED_TO, FAN_CREATE, FAN_DELETE = 0x40, 0x80, 0x100, 0x200
FAN_Q_OVERFLOW, FAN_ONDIR, FAN_EVENT_ON_CHILD = 0x4000, 0x40000000, 0x08000000
FAN_MASK = (FAN_CREATE | FAN_DELETE | FAN_MOVED_FROM | FAN_MOVED_TO | FAN_MODIFY | FAN_ATTRIB | FAN_CLOSE_WRITE
            | FAN_ONDIR | FAN_EVENT_ON_CHILD)
FAN_EVENT_INFO_TYPE_DFID_NAME = 2
METADATA = struct.Struct("=IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid

# inotify(7)
IN_NONBLOCK, IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC
IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE = 0x2, 0x4, 0x8
IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
IN_Q_OVERFLOW = 0x4000
IN_MASK = IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ATTRIB
INOTIFY_EVENT = struct.Struct("=iIII")  # wd, mask, cookie, len

# what a notification says of a name: created (or moved in), removed (or moved away), resized
CHANGE_BITS = (("created", FAN_CREATE | FAN_MOVED_TO), ("removed", FAN_DELETE | FAN_MOVED_FROM),
               ("resized", FAN_MODIFY))

Touch = Tuple[str, str, int]  # (change, name, pid)


def parse_fanotify(buf: bytes) -> List[Touch]:
    """(change, entry name, pid) for each fanotify event in `buf`; overflow and events without
    a name (the directory itself) say nothing of anyone."""
    touches, offset = [], 0
    while offset + METADATA.size <= len(buf):
        length, _vers, _res, meta_len, mask, _fd, pid = METADATA.unpack_from(buf, offset)
        if length < METADATA.size:
            break
        name = _dfid_name(buf[offset + meta_len:offset + length])
        if name is not None and not mask & FAN_Q_OVERFLOW:
            touches += [(change, name, pid) for change, bits in CHANGE_BITS if mask & bits]
        offset += length
    return touches


def _dfid_name(info: bytes) -> Optional[str]:
    """The name in a FAN_EVENT_INFO_TYPE_DFID_NAME record: header (type, pad, len), fsid (8
    bytes), struct file_handle (handle_bytes, handle_type, f_handle), then the NUL-ended name."""
    offset = 0
    while offset + 4 <= len(info):
        info_type, _pad, length = struct.unpack_from("=BBH", info, offset)
        if length < 4:
            return None
        if info_type == FAN_EVENT_INFO_TYPE_DFID_NAME:
            record = info[offset:offset + length]
            handle_bytes = struct.unpack_from("=I", record, 12)[0]
            name = record[20 + handle_bytes:].split(b"\0", 1)[0]
            return os.fsdecode(name) if name and name != b"." else None
        offset += length
    return None


def parse_inotify(buf: bytes) -> List[Touch]:
    """inotify names no process: (change, name, 0)."""
    touches, offset = [], 0
    while offset + INOTIFY_EVENT.size <= len(buf):
        _wd, mask, _cookie, length = INOTIFY_EVENT.unpack_from(buf, offset)
        start = offset + INOTIFY_EVENT.size
        name = buf[start:start + length].split(b"\0", 1)[0]
        offset = start + length
        if name and not mask & IN_Q_OVERFLOW:
            touches += [(change, os.fsdecode(name), 0) for change, bits in CHANGE_BITS if mask & bits]
    return touches


class Notifier:
    """A notification fd on /dev/shm: `fileno()` for select, `drain()` for what it said.
    `method`: "fanotify" (pids known), "inotify" (wake-ups only) or "none"."""

    def __init__(self, fd: int = -1, method: str = "none", parse=None):
        self.fd, self.method, self._parse = fd, method, parse

    def fileno(self) -> int:
        return self.fd

    def drain(self) -> List[Touch]:
        """Everything queued, without blocking."""
        touches: List[Touch] = []
        while self.fd >= 0:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                raise
            if not buf:
                break
            touches += self._parse(buf)
        return touches

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def open_notifier(shm_dir: Optional[str], prefer_fanotify: bool = True) -> Notifier:
    """fanotify where this process may see other processes' pids (root), else inotify; a
    Notifier of method "none" where neither works (the loop then only polls)."""
    if not shm_dir:
        return Notifier()
    if prefer_fanotify and os.geteuid() == 0:
        with contextlib.suppress(ShmctlError, OSError):
            return _fanotify(shm_dir)
    try:
        fd = syscalls.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
    except ShmctlError:
        return Notifier()
    try:
        syscalls.inotify_add_watch(fd, shm_dir, IN_MASK)
    except ShmctlError:
        os.close(fd)
        return Notifier()
    return Notifier(fd, "inotify", parse_inotify)


def _fanotify(shm_dir: str) -> Notifier:
    fd = syscalls.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME,
                                os.O_RDONLY | os.O_CLOEXEC)
    try:
        directory = os.open(shm_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            syscalls.fanotify_mark(fd, FAN_MARK_ADD, FAN_MASK, directory, shm_dir)
        finally:
            os.close(directory)
    except BaseException:
        os.close(fd)
        raise
    return Notifier(fd, "fanotify", parse_fanotify)


class Actors:
    """Who touched which /dev/shm name lately, as fanotify told: {(change, name): (pid,
    comm)}, the newest touch winning. Entries live two snapshots (a touch read just after a
    snapshot belongs to the next one) and there are at most LIMIT of them: bounded memory
    whatever the rate of changes."""

    LIMIT = 4096

    def __init__(self, comm):
        self.comm = comm  # pid -> comm, read at once (the process may be gone by the snapshot)
        self.fresh: Dict[Tuple[str, str], Tuple[int, Optional[str]]] = {}
        self.older: Dict[Tuple[str, str], Tuple[int, Optional[str]]] = {}

    def record(self, touches: List[Touch]) -> None:
        for change, name, pid in touches:
            if not pid:
                continue
            key = (change, name)
            if key in self.fresh:
                del self.fresh[key]  # re-inserted: the newest touch last
            elif len(self.fresh) >= self.LIMIT:
                del self.fresh[next(iter(self.fresh))]
            self.fresh[key] = (pid, self.comm(pid))

    def find(self, change: str, name: str) -> Optional[Tuple[int, Optional[str]]]:
        key = (change, name)
        return self.fresh.get(key) or self.older.get(key)

    def age(self) -> None:
        """A snapshot was taken: what is older than the one before is forgotten."""
        self.older, self.fresh = self.fresh, {}
