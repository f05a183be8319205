"""What POSIX objects and mmap files share: they are files. Creating one never touches an
existing file unless asked (--exist-ok, --resize), never shrinks one unless forced, and
refuses a size the filesystem cannot hold: tmpfs accepts any ftruncate, and the first
writer past its free space dies of SIGBUS."""
from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Callable, List, Optional

from ..errors import Conflict, LimitReached, NotFound, ShmctlError, from_oserror
from ..units import format_size
from . import adopt
from .access import Handle
from .paths import open_directory
from .adopt import Wanted

Fill = Optional[Callable[[Handle], None]]


class Created:
    """What `create` made (or found): its address, the lines of a --dry-run plan, and how to
    take it back (`undo`: only for what this run made, never for an adopted object)."""

    def __init__(self, address: str, existed: bool = False, plan: Optional[List[str]] = None,
                 undo: Optional[Callable[[], None]] = None):
        self.address, self.existed, self.plan, self.undo = address, existed, plan or [], undo


class FileRequest:
    def __init__(self, size: int, mode: int, exist_ok: bool = False, resize: bool = False, force: bool = False,
                 dry_run: bool = False, fill: Fill = None, owner: Optional[int] = None, larger_ok: bool = False,
                 overcommit: bool = False):
        self.size, self.mode, self.exist_ok, self.resize = size, mode, exist_ok, resize
        self.force, self.dry_run, self.fill, self.overcommit = force, dry_run, fill, overcommit
        self.wanted = Wanted(size, mode, owner, larger_ok)
        self.owner = owner
        self.users: Callable[[os.stat_result], List[int]] = lambda st: []  # who maps or holds a file


class Place:
    """Where a file-backed segment is made: a directory opened once (its identity fixed from
    then on, whatever happens to its path) and a name in it. Every open, stat, link and
    unlink goes through the directory fd and never follows a symlink at the name."""

    def __init__(self, where: str, directory: str, dir_fd: int, name: str):
        self.where, self.directory, self.dir_fd, self.name = where, directory, dir_fd, name
        self.identity = _identity(os.fstat(dir_fd))

    def __enter__(self) -> "Place":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.dir_fd)

    def lstat(self) -> Optional[os.stat_result]:
        try:
            return os.stat(self.name, dir_fd=self.dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise from_oserror(exc, self.where) from None

    def open_existing(self, st: os.stat_result) -> int:
        """The file that `st` described, opened read-write; Conflict if it was replaced."""
        from .paths import open_at
        return open_at(self.dir_fd, self.name, os.O_RDWR, f"open {self.where}", expect=(st.st_dev, st.st_ino))

    def new_unnamed(self, mode: int) -> Optional[int]:
        """An O_TMPFILE file in the directory, or None where the filesystem has none."""
        try:
            return os.open(".", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode & 0o600, dir_fd=self.dir_fd)
        except OSError as exc:
            if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                return None
            raise from_oserror(exc, f"create {self.where}") from None

    def new_named(self, mode: int) -> int:
        try:
            return os.open(self.name, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC,
                           mode & 0o600, dir_fd=self.dir_fd)
        except OSError as exc:
            raise from_oserror(exc, f"create {self.where}") from None

    def publish(self, fd: int) -> None:
        """Give the finished unnamed file its name, atomically; EEXIST if the name is taken.
        linkat(fd, "", AT_EMPTY_PATH) needs CAP_DAC_READ_SEARCH; /proc/self/fd with
        AT_SYMLINK_FOLLOW is the documented way that works for every user."""
        os.link(f"/proc/self/fd/{fd}", self.name, dst_dir_fd=self.dir_fd, follow_symlinks=True)

    def unlink_if(self, st: os.stat_result) -> None:
        """Remove the name only if it still is the file `st` (we never unlink a stranger's)."""
        now = self.lstat()
        if now is not None and (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.dir_fd)


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
    try:
        fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
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


def file_type(mode: int) -> str:
    from .posix import file_type as describe
    return describe(mode)


def _existing(place: Place, req: FileRequest, plan: List[str]) -> Optional[Created]:
    """The object already at the name, adopted (--exist-ok) or resized (--resize) only when
    it is what was asked for; None when the name is free."""
    where, st = place.where, place.lstat()
    if st is None:
        return None
    if not stat.S_ISREG(st.st_mode):
        raise Conflict(where, f"{place.directory}/{place.name} exists and is a {file_type(st.st_mode)}, not a segment")
    if not (req.exist_ok or req.resize):
        raise Conflict(where, f"already exists ({st.st_size} bytes)",
                       "--exist-ok uses it as it is, --resize changes its size")
    adopt.check(where, req.wanted, st.st_uid, st.st_mode, nlinks=st.st_nlink)
    if req.fill is not None:
        raise Conflict(where, f"already exists ({st.st_size} bytes): --from is not written into an existing object",
                       f"shmctl write {where} FILE writes into it")
    refusal = adopt.size_refusal(where, req.wanted, st.st_size, "--resize grows it")
    if refusal is None:
        plan.append(f"{where} exists with {st.st_size} bytes: used as it is")
        return Created(where, True, plan)
    if not req.resize:
        raise refusal
    _resize(place, req, st, plan)
    return Created(where, True, plan)


def _resize(place: Place, req: FileRequest, st: os.stat_result, plan: List[str]) -> None:
    where = place.where
    if req.size < st.st_size and not req.force:
        raise Conflict(where, f"--resize would truncate it from {st.st_size} to {req.size} bytes",
                       "add --force to shrink it and lose the tail")
    users = req.users(st) if req.size < st.st_size else []
    if users:  # a process touching the cut-off tail would die of SIGBUS: never, not even forced
        raise Conflict(where, f"cannot shrink it while in use by pids {', '.join(map(str, users))}",
                       "a process touching the cut-off part would die of SIGBUS")
    plan.append(check_room(where, place.directory, max(0, req.size - st.st_size), req.force or req.overcommit))
    plan.append(f"would resize {where} from {st.st_size} to {req.size} bytes")
    if req.dry_run:
        return
    fd = place.open_existing(st)
    try:
        os.ftruncate(fd, req.size)
    except OSError as exc:
        raise from_oserror(exc, f"resize {where}") from None
    finally:
        os.close(fd)


def create_file(place: Place, req: FileRequest) -> Created:
    """A new file-backed segment, made whole before anyone can see it: an unnamed O_TMPFILE
    file is sized, filled and given its mode, then linked under its name (EEXIST if someone
    was first). Where the filesystem has no O_TMPFILE, O_CREAT|O_EXCL at the name, removed
    again if anything fails. Either way exactly one of many racing creators makes it; under
    --exist-ok the others adopt the winner's object (if it passes the same checks)."""
    plan: List[str] = []
    found = _existing(place, req, plan)
    if found is not None:
        return found
    plan.append(check_room(place.where, place.directory, req.size, req.force or req.overcommit))
    plan.append(f"would create {place.where}: {req.size} bytes, mode {req.mode:04o}")
    if req.dry_run:
        return Created(place.where, False, plan)
    fd = place.new_unnamed(req.mode)
    named = fd is None
    if named:
        fd = _new_named(place, req, plan)
        if isinstance(fd, Created):
            return fd
    made = os.fstat(fd)
    try:
        _shape(place.where, fd, req)
        if not named:
            place.publish(fd)
    except FileExistsError:
        return _lost_race(place, req, plan)
    except BaseException as exc:
        if named:
            place.unlink_if(made)
        if isinstance(exc, OSError):
            raise _limit_or_error(exc, place.where) from None
        raise
    finally:
        os.close(fd)
    return Created(place.where, False, plan, undo=lambda: _undo(place, made))


def _new_named(place: Place, req: FileRequest, plan: List[str]):
    try:
        return place.new_named(req.mode)
    except Conflict:
        return _lost_race(place, req, plan)


def _shape(where: str, fd: int, req: FileRequest) -> None:
    """Owner, exact mode (whatever the umask), size and contents of a new file."""
    if req.owner is not None and req.owner != os.geteuid():
        os.fchown(fd, req.owner, -1)
    os.fchmod(fd, req.mode)
    os.ftruncate(fd, req.size)
    if req.fill is not None:
        with Handle(where, req.size, fd=os.dup(fd)) as handle:
            req.fill(handle)


def _lost_race(place: Place, req: FileRequest, plan: List[str]) -> Created:
    if not req.exist_ok:
        raise Conflict(place.where, "already exists (made by someone else just now)", "--exist-ok uses it as it is")
    found = _existing(place, req, plan)
    if found is None:  # made and removed again in between: say so rather than loop
        raise Conflict(place.where, "was made and removed by someone else while we created it", "try again")
    return found


def _undo(place: Place, made: os.stat_result) -> None:
    """Remove what create made, after its directory fd is closed: the directory is opened
    again and must be the same one."""
    fd = open_directory(place.directory or "/", place.where)
    try:
        if _identity(os.fstat(fd)) != place.identity:
            raise Conflict(place.where, f"{place.directory} was replaced meanwhile", "nothing removed")
        place.dir_fd = fd
        place.unlink_if(made)
    finally:
        os.close(fd)


def _identity(st: os.stat_result) -> tuple:
    return st.st_dev, st.st_ino


def _limit_or_error(exc: OSError, where: str) -> ShmctlError:
    if exc.errno == errno.EINVAL:
        return ShmctlError(f"create {where}", "the filesystem refused that size",
                           "on hugetlbfs the size must be a multiple of the huge page size")
    return from_oserror(exc, f"create {where}")


def open_file(where: str, path: str, writable: bool, nofollow: bool = True,
              expect: Optional[tuple] = None) -> Handle:
    """Open a segment's file: reached with no symlink followed in any component (kinds/paths),
    never opening a FIFO or device planted in its place, only if it is a regular file, and
    (`expect` = (st_dev, st_ino)) only if it is that very file. nofollow=False is for the
    kernel's own links (/proc/PID/map_files), which lead to the mapped file itself."""
    from .paths import open_at, open_directory
    flags = os.O_RDWR if writable else os.O_RDONLY
    if not nofollow:
        fd = open_at(None, path, flags, where, expect, follow=True)
    else:
        directory, name = os.path.split(path)
        dir_fd = open_directory(directory or ".", where)
        try:
            fd = open_at(dir_fd, name, flags, where, expect)
        finally:
            os.close(dir_fd)
    return Handle(where, os.fstat(fd).st_size, fd=fd)


def unlink_file(where: str, path: str, expect: Optional[tuple] = None) -> None:
    """Unlink `path` through a directory fd reached with no symlink followed, and only if the
    name is a regular file that is `expect` = (st_dev, st_ino) (when given) at that moment."""
    from .paths import lstat_at, open_directory, unlink_checked
    directory, name = os.path.split(path)
    dir_fd = open_directory(directory or ".", where)
    try:
        if expect is None:
            st = lstat_at(dir_fd, name, where)
            expect = (st.st_dev, st.st_ino)
        unlink_checked(dir_fd, name, expect[0], expect[1], where)
    finally:
        os.close(dir_fd)
