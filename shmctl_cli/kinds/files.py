"""What POSIX objects and mmap files share: they are files. Creating one never touches an
existing file unless asked (--exist-ok, --resize), never shrinks one unless forced, and
refuses a size the filesystem cannot hold: tmpfs accepts any ftruncate, and the first
writer past its free space dies of SIGBUS."""
from __future__ import annotations

import errno
import os
import stat
from typing import Callable, List, Optional

from ..errors import Conflict, LimitReached, NotFound, ShmctlError, from_oserror
from ..units import format_size
from .access import Handle

Fill = Optional[Callable[[Handle], None]]


class Created:
    """What `create` made (or found): its address, and the lines of a --dry-run plan."""

    def __init__(self, address: str, existed: bool = False, plan: Optional[List[str]] = None):
        self.address, self.existed, self.plan = address, existed, plan or []


class FileRequest:
    def __init__(self, size: int, mode: int, exist_ok: bool = False, resize: bool = False, force: bool = False,
                 dry_run: bool = False, fill: Fill = None):
        self.size, self.mode, self.exist_ok, self.resize = size, mode, exist_ok, resize
        self.force, self.dry_run, self.fill = force, dry_run, fill
        self.users: Callable[[os.stat_result], List[int]] = lambda st: []  # who maps or holds a file


def free_space(directory: str) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


FORCE_HINT = "--force creates it anyway, but the first writer past the free space dies of SIGBUS"


def check_room(where: str, directory: str, grow_by: int, force: bool = False, hint: str = FORCE_HINT) -> str:
    """The plan line for the filesystem's room; LimitReached when it cannot hold `grow_by`."""
    try:
        free = free_space(directory)
    except OSError as exc:
        raise from_oserror(exc, f"{where}: {directory}") from None
    line = f"{directory}: {format_size(free)} free, {format_size(grow_by)} needed"
    if grow_by > free and not force:
        raise LimitReached(where, f"{directory} has only {free} bytes free, {grow_by} needed", hint)
    return line


def file_type(mode: int) -> str:
    from .posix import file_type as describe
    return describe(mode)


def _existing(where: str, path: str, req: FileRequest, plan: List[str]) -> Optional[Created]:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise from_oserror(exc, where) from None
    if not stat.S_ISREG(st.st_mode):
        raise Conflict(where, f"{path} exists and is a {file_type(st.st_mode)}, not a segment")
    if not (req.exist_ok or req.resize):
        raise Conflict(where, f"already exists ({st.st_size} bytes)",
                       "--exist-ok uses it as it is, --resize changes its size")
    if req.size == st.st_size or (req.exist_ok and not req.resize and st.st_size > req.size):
        plan.append(f"{where} exists with {st.st_size} bytes: used as it is")
        return Created(where, True, plan)
    if not req.resize:
        raise Conflict(where, f"exists with {st.st_size} bytes, fewer than the {req.size} asked",
                       "--resize grows it")
    if req.size < st.st_size and not req.force:
        raise Conflict(where, f"--resize would truncate it from {st.st_size} to {req.size} bytes",
                       "add --force to shrink it and lose the tail")
    users = req.users(st) if req.size < st.st_size else []
    if users:  # a process touching the cut-off tail would die of SIGBUS: never, not even forced
        raise Conflict(where, f"cannot shrink it while in use by pids {', '.join(map(str, users))}",
                       "a process touching the cut-off part would die of SIGBUS")
    plan.append(check_room(where, os.path.dirname(path), max(0, req.size - st.st_size), req.force))
    plan.append(f"would resize {where} from {st.st_size} to {req.size} bytes")
    if not req.dry_run:
        fd = _open_existing(where, path, st)
        try:
            os.ftruncate(fd, req.size)
        except OSError as exc:
            raise from_oserror(exc, f"resize {where}") from None
        finally:
            os.close(fd)
    return Created(where, True, plan)


def _open_existing(where: str, path: str, st: os.stat_result) -> int:
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        raise from_oserror(exc, f"open {where}") from None
    if (os.fstat(fd).st_dev, os.fstat(fd).st_ino) != (st.st_dev, st.st_ino):
        os.close(fd)
        raise Conflict(where, "it was replaced while we looked")
    return fd


def create_file(where: str, path: str, req: FileRequest, open_new: Callable[[], int],
                unlink: Callable[[], None]) -> Created:
    """Create a file-backed segment with O_CREAT|O_EXCL: exactly one of many racing creators
    succeeds. If anything fails after the file exists, it is removed again (it is ours)."""
    plan: List[str] = []
    found = _existing(where, path, req, plan)
    if found is not None:
        return found
    plan.append(check_room(where, os.path.dirname(path) or "/", req.size, req.force))
    plan.append(f"would create {where}: {req.size} bytes, mode {req.mode:04o}")
    if req.dry_run:
        return Created(where, False, plan)
    try:
        fd = open_new()
    except ShmctlError as exc:
        if exc.errno == errno.EEXIST:
            raise Conflict(where, "already exists (made by someone else just now)",
                           "--exist-ok uses it as it is") from None
        raise
    try:
        os.fchmod(fd, req.mode)  # exactly the mode asked, whatever the umask
        os.ftruncate(fd, req.size)
        if req.fill is not None:
            with Handle(where, req.size, fd=os.dup(fd)) as handle:
                req.fill(handle)
    except BaseException as exc:
        unlink()
        if isinstance(exc, OSError):
            raise _limit_or_error(exc, where) from None
        raise
    finally:
        os.close(fd)
    return Created(where, False, plan)


def _limit_or_error(exc: OSError, where: str) -> ShmctlError:
    if exc.errno == errno.EINVAL:
        return ShmctlError(f"create {where}", "the filesystem refused that size",
                           "on hugetlbfs the size must be a multiple of the huge page size")
    return from_oserror(exc, f"create {where}")


def open_file(where: str, path: str, writable: bool, nofollow: bool = True) -> Handle:
    """Open a segment's file: never through a final symlink (unless asked), never blocking on
    a FIFO planted in its place, and only if it is a regular file."""
    flags = (os.O_RDWR if writable else os.O_RDONLY) | os.O_CLOEXEC | os.O_NONBLOCK
    flags |= os.O_NOFOLLOW if nofollow else 0
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotFound(where, "no such file") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise NotFound(where, f"{path} is a symlink, not a segment") from None
        raise from_oserror(exc, f"open {where}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise NotFound(where, f"{path} is a {file_type(st.st_mode)}, not a segment")
    os.set_blocking(fd, True)
    return Handle(where, st.st_size, fd=fd)


def unlink_file(where: str, path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        raise NotFound(where, "already gone") from None
    except OSError as exc:
        raise from_oserror(exc, f"unlink {where}") from None
