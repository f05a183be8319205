"""The room on a filesystem: its free space and, on tmpfs and hugetlbfs, what its sparse files
have promised but not yet taken (ftruncate only promises pages; the first writer past the
free space dies of SIGBUS)."""
from __future__ import annotations

import contextlib
import os
import stat
from typing import List, Optional

from ..errors import LimitReached, from_oserror
from ..units import format_size


SPARSE_FS = ("tmpfs", "hugetlbfs")  # pages are allocated at first touch: ftruncate only promises them
WALK_LIMIT, WALK_DEPTH = 100_000, 32  # past these, the promised space counted is a lower bound
OVERCOMMIT_HINT = "--overcommit creates it anyway: the first writer past the space dies of SIGBUS"


class Room:
    """A filesystem's free space (None: no size limit, as tmpfs size=0 or hugetlbfs without
    size=) and the space its sparse files have promised but not taken."""

    def __init__(self, mount: str, free: Optional[int], promised: int = 0, complete: bool = True):
        self.mount, self.free, self.promised, self.complete = mount, free, promised, complete

    def short_of(self, needed: int) -> bool:
        return self.free is not None and needed > 0 and needed + self.promised > self.free

    def plan_line(self, needed: int, overcommit: bool) -> str:
        if self.free is None:
            return f"{self.mount}: no size limit, {format_size(needed)} needed"
        at_least = "" if self.complete else " (at least: not every directory could be walked)"
        line = (f"{self.mount}: {format_size(self.free)} free, {format_size(self.promised)} promised to sparse "
                f"objects{at_least}, {format_size(needed)} needed")
        return line + (": overcommitted" if overcommit and self.short_of(needed) else "")

    def refusal(self, where: str, needed: int, hint: str) -> LimitReached:
        free, promised = format_size(self.free), format_size(self.promised)
        if not self.promised:
            why = f"{self.mount} has only {free} free, {format_size(needed)} needed"
        else:
            share = "of it " if self.promised <= self.free else ""
            why = (f"{self.mount} has {free} free but {promised} {share}is promised to sparse objects; "
                   f"{format_size(needed)} needed")
        return LimitReached(where, why, hint)


def free_space(directory: str) -> Optional[int]:
    """Free bytes for an unprivileged writer; None when the filesystem has no size limit."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize if st.f_blocks else None


def room(directory: str) -> Room:
    """The room on the filesystem holding `directory`. On tmpfs and hugetlbfs, what its sparse
    files promise is counted from a walk of the whole filesystem (from its mount point)."""
    mount = mount_of(os.stat(directory).st_dev, directory)
    free = free_space(directory)
    if mount.fstype not in SPARSE_FS or free is None:
        return Room(mount.point, free)
    promised, complete = promised_space(mount.point, mount.dev)
    return Room(mount.point, free, promised, complete)


def mount_of(dev: int, fallback: str):
    """The mount of device `dev` whose mount point shows the whole filesystem (root "/") and
    is not hidden under a later mount; else `fallback` (a directory on it: only what lies
    below it is seen)."""
    from ..procfs.mountinfo import Mount, read_mounts
    try:
        mounts = sorted((m for m in read_mounts() if m.dev == dev), key=lambda m: m.root != "/")
    except OSError:
        mounts = []
    for mount in mounts:
        with contextlib.suppress(OSError):
            if os.stat(mount.point, follow_symlinks=False).st_dev == dev:
                return mount
    return Mount(dev, "/", fallback, mounts[0].fstype if mounts else None)


def promised_space(top: str, dev: int) -> tuple:
    """(bytes, complete): what the regular files under `top`, on device `dev`, declare
    (st_size) beyond what they occupy (st_blocks * 512), summed. Directories are opened one
    component at a time with O_NOFOLLOW and must stay on `dev`: a planted symlink or a
    directory swapped for one cannot lead the walk elsewhere. A walk sees only files with a
    name: what POSIX objects unlinked while still open or mapped, and memfds, promise is
    invisible to it; so is what lies in directories the caller cannot read."""
    tally = _Tally(dev)
    fd = _open_dir(top, None, dev)
    if fd is None:
        return 0, False
    tally.walk(fd, 0)
    return tally.promised, tally.complete


class _Tally:
    def __init__(self, dev: int):
        self.dev, self.promised, self.seen, self.complete = dev, 0, 0, True
        self.links: set = set()  # inodes with more than one name are counted once

    def walk(self, fd: int, depth: int) -> None:
        try:
            for name in self.scan(fd):
                child = _open_dir(name, fd, self.dev) if depth < WALK_DEPTH else None
                if child is None:
                    self.complete = False
                    continue
                self.walk(child, depth + 1)
        except OSError:  # a directory removed while we read it
            self.complete = False
        finally:
            os.close(fd)

    def scan(self, fd: int) -> List[str]:
        """Count the files of one directory; the names of its subdirectories on our device."""
        subdirs = []
        with os.scandir(fd) as entries:
            for entry in entries:
                self.seen += 1
                if self.seen > WALK_LIMIT:
                    self.complete = False
                    break
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):
                    self.count(st)
                elif stat.S_ISDIR(st.st_mode) and st.st_dev == self.dev:
                    subdirs.append(entry.name)
        return subdirs

    def count(self, st: os.stat_result) -> None:
        if st.st_nlink > 1:
            if st.st_ino in self.links:
                return
            self.links.add(st.st_ino)
        self.promised += max(0, st.st_size - st.st_blocks * 512)


def _open_dir(name: str, dir_fd: Optional[int], dev: int) -> Optional[int]:
    from .paths import is_pinned
    follow = 0 if dir_fd is None and is_pinned(name) else os.O_NOFOLLOW  # our own fd's link: followed
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | follow | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    if os.fstat(fd).st_dev != dev:
        os.close(fd)
        return None
    return fd


def check_room(where: str, directory: str, grow_by: int, force: bool = False, hint: str = OVERCOMMIT_HINT) -> str:
    """The plan line for the filesystem's room; LimitReached when `grow_by` more bytes plus
    what sparse files there already promise pass its free space (unless `force`)."""
    try:
        space = room(directory)
    except OSError as exc:
        raise from_oserror(exc, f"{where}: {directory}") from None
    if space.short_of(grow_by) and not force:
        raise space.refusal(where, grow_by, hint)
    return space.plan_line(grow_by, force)


def check_lock_room(where: str, fd: int) -> None:
    """mlock faults in every page of a shared mapping, and on tmpfs each hole takes a page of
    free space. With too little, mlock fails with ENOMEM (as it does for RLIMIT_MEMLOCK; no
    SIGBUS, 6.18), having filled the filesystem on the way: so look before, and after."""
    st, vfs = os.fstat(fd), os.fstatvfs(fd)
    if not stat.S_ISREG(st.st_mode) or not vfs.f_blocks:
        return
    page = os.sysconf("SC_PAGE_SIZE")
    lacking = max(0, -(-st.st_size // page) * page - st.st_blocks * 512)
    free = vfs.f_bavail * vfs.f_frsize
    if lacking > free:
        mount = mount_of(st.st_dev, "its filesystem").point
        raise LimitReached(where, f"no space to populate its pages: {mount} has {format_size(free)} free, "
                                  f"{format_size(lacking)} needed",
                           "mlock allocates every page of the object; free space there, or attach without --lock")
