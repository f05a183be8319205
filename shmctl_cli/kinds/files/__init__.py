"""What POSIX objects and mmap files share: they are files. Creating one never touches an
existing file unless asked (--exist-ok, --resize), never shrinks one unless forced, and
refuses a size the filesystem cannot hold (kinds/room.py): tmpfs accepts any ftruncate, and the
first writer past its free space dies of SIGBUS."""
from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import Callable, List, Optional

from ...errors import Conflict, ShmctlError, from_oserror
from .. import adopt
from ..access import Handle
from ..adopt import Wanted
from ..paths import file_type, identity, lstat_at, lstat_or_none, open_at, open_directory, unlink_checked
from ..room import SPARSE_FS, check_lock_room, check_room, mount_of, promised_space  # noqa: F401 (kinds.files API)

Fill = Optional[Callable[[Handle], None]]


class Created:
    """What `create` made (or found): its address, the lines of a --dry-run plan, and how to
    take it back (`undo`: only for what this run made, never for an adopted object)."""

    def __init__(self, address: str, plan: Optional[List[str]] = None, undo: Optional[Callable[[], None]] = None):
        self.address, self.plan, self.undo = address, plan or [], undo


class FileRequest:
    def __init__(self, size: int, mode: int, exist_ok: bool = False, resize: bool = False, force: bool = False,
                 dry_run: bool = False, fill: Fill = None, owner: Optional[int] = None, larger_ok: bool = False,
                 overcommit: bool = False):
        self.size, self.mode, self.exist_ok, self.resize = size, mode, exist_ok, resize
        self.force, self.dry_run, self.fill, self.overcommit = force, dry_run, fill, overcommit
        self.wanted = Wanted(size, mode, owner, larger_ok)
        self.users: Callable[[os.stat_result], List[int]] = lambda st: []  # who maps or holds a file


class Place:
    """Where a file-backed segment is made: a directory opened once (its identity fixed from
    then on, whatever happens to its path) and a name in it. Every open, stat, link and
    unlink goes through the directory fd and never follows a symlink at the name."""

    def __init__(self, where: str, directory: str, dir_fd: int, name: str):
        self.where, self.directory, self.dir_fd, self.name = where, directory, dir_fd, name
        self.identity = identity(os.fstat(dir_fd))

    def __enter__(self) -> "Place":
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.dir_fd)

    def lstat(self) -> Optional[os.stat_result]:
        try:
            return lstat_or_none(self.dir_fd, self.name)
        except OSError as exc:
            raise from_oserror(exc, self.where) from None

    def open_existing(self, st: os.stat_result) -> int:
        """The file that `st` described, opened read-write; Conflict if it was replaced."""
        return open_at(self.dir_fd, self.name, os.O_RDWR, f"open {self.where}", expect=identity(st))

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
        if now is not None and identity(now) == identity(st):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.name, dir_fd=self.dir_fd)




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
        return Created(where, plan)
    if not req.resize:
        raise refusal
    _resize(place, req, st, plan)
    return Created(where, plan)


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
        return Created(place.where, plan)
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
    return Created(place.where, plan, undo=lambda: _undo(place, made))


def _new_named(place: Place, req: FileRequest, plan: List[str]):
    try:
        return place.new_named(req.mode)
    except Conflict:
        return _lost_race(place, req, plan)


def _shape(where: str, fd: int, req: FileRequest) -> None:
    """Owner, exact mode (whatever the umask), size and contents of a new file."""
    if req.wanted.owner != os.geteuid():
        os.fchown(fd, req.wanted.owner, -1)
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
        if identity(os.fstat(fd)) != place.identity:
            raise Conflict(place.where, f"{place.directory} was replaced meanwhile", "nothing removed")
        place.dir_fd = fd
        place.unlink_if(made)
    finally:
        os.close(fd)


def _limit_or_error(exc: OSError, where: str) -> ShmctlError:
    if exc.errno == errno.EINVAL:
        return ShmctlError(f"create {where}", "the filesystem refused that size",
                           "on hugetlbfs the size must be a multiple of the huge page size")
    return from_oserror(exc, f"create {where}")


def open_file(where: str, path: str, writable: bool, nofollow: bool = True,
              expect: Optional[tuple] = None, base: Optional[int] = None) -> Handle:
    """Open a segment's file: reached with no symlink followed in any component (kinds/paths),
    never opening a FIFO or device planted in its place, only if it is a regular file, and
    (`expect` = (st_dev, st_ino)) only if it is that very file. nofollow=False is for the
    kernel's own links (/proc/PID/map_files), which lead to the mapped file itself. `base`:
    the root fd of another mount namespace, which the path is resolved beneath."""
    flags = os.O_RDWR if writable else os.O_RDONLY
    if not nofollow:
        fd = open_at(None, path, flags, where, expect, follow=True)
    else:
        directory, name = os.path.split(path)
        dir_fd = open_directory(directory or ".", where, base)
        try:
            fd = open_at(dir_fd, name, flags, where, expect)
        finally:
            os.close(dir_fd)
    return Handle(where, os.fstat(fd).st_size, fd=fd)


def unlink_file(where: str, path: str, expect: Optional[tuple] = None, base: Optional[int] = None) -> None:
    """Unlink `path` through a directory fd reached with no symlink followed, and only if the
    name is a regular file that is `expect` = (st_dev, st_ino) (when given) at that moment."""
    directory, name = os.path.split(path)
    dir_fd = open_directory(directory or ".", where, base)
    try:
        if expect is None:
            st = lstat_at(dir_fd, name, where)
            expect = identity(st)
        unlink_checked(dir_fd, name, expect[0], expect[1], where)
    finally:
        os.close(dir_fd)
