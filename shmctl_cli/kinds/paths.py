"""Paths that someone else may control, resolved without following a symlink anywhere.

A path read from /proc/PID/maps, or typed as mmap:/PATH, may run through directories that
other users can change at any moment (/tmp, /dev/shm, a container's tree). So a path is
never handed to open() or unlink() whole: each directory is opened in turn with
O_NOFOLLOW|O_DIRECTORY (or in one openat2 call with RESOLVE_NO_SYMLINKS where the kernel
has it), and the last name is opened, stat'ed or unlinked relative to that directory fd.
A directory renamed or swapped for a symlink after its fd was taken does not move the fd:
the operation stays in the directory that was checked, or fails; it is never redirected.

    open_directory(path)                     -> an O_PATH fd of the directory
    open_at(dir_fd, name, flags)             -> an fd of the regular file `name`
    lstat_at(dir_fd, name)                   -> its lstat, never following a symlink
    unlink_checked(dir_fd, name, dev, ino)   -> unlink `name` only if it still is (dev, ino)
"""
from __future__ import annotations

import errno
import os
import stat
from typing import Dict, Optional, Tuple

from ..errors import Conflict, NotFound, ShmctlError, from_oserror

DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
SYS_OPENAT2 = 437  # the same number on every architecture (asm-generic and x86_64 alike)
RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS = 0x02, 0x04
AT_FDCWD = -100
_openat2_missing = False  # set once the kernel (or a seccomp filter) has said ENOSYS or EPERM


def open_directory(path: str, where: Optional[str] = None, base: Optional[int] = None,
                   trusted_links: bool = False) -> int:
    """An O_PATH|O_DIRECTORY fd of `path` (close it), reached without following a symlink in
    any component. `where` names the operation in error messages (default: the path).
    `base` is a directory fd that a relative (or, leading slash stripped, absolute) path is
    resolved beneath, e.g. a process's /proc/PID/root. Raises NotFound naming the component
    that is a symlink or not a directory, or what the failed system call said.
    trusted_links=True follows the symlinks that root or the caller own (/var/run -> /run),
    and only those: one that another user planted (in /tmp, or in their own directory) is
    refused, as is every symlink its target leads through."""
    where = where or path
    if base is None and path in _pinned:
        return os.dup(_pinned[path])
    normal = _normal(path, base)
    if not normal:  # "/", "." or "": the start itself
        return _start(path, where, base)
    fd = _openat2(normal, base)
    return fd if fd is not None else _walk(normal, where, base, trusted_links)


_pinned: Dict[str, int] = {}


def pin_directory(path: str, base: Optional[int] = None) -> Optional[str]:
    """A directory opened once (see open_directory), kept open for the run and named by its
    fd's link, /proc/self/fd/N: a path that open_directory, scandir, lstat and statvfs all
    take and that leads to that directory whatever happens to `path`. None if it cannot be
    reached (absent, or a symlink on the way)."""
    try:
        fd = open_directory(path, base=base)
    except ShmctlError:
        return None
    name = f"/proc/self/fd/{fd}"
    _pinned[name] = fd
    return name


def is_pinned(path: str) -> bool:
    """Whether `path` is a directory pin_directory opened (its /proc/self/fd/N link)."""
    return path in _pinned


def open_at(dir_fd: Optional[int], name: str, flags: int, where: Optional[str] = None,
            expect: Optional[Tuple[int, int]] = None, follow: bool = False) -> int:
    """An fd of the regular file `name` in dir_fd, opened with `flags` (O_RDONLY, O_RDWR...).

    A symlink, FIFO, socket or device at `name` is refused before anything opens it: the
    name is first pinned with O_PATH|O_NOFOLLOW (which opens nothing), checked, then reopened
    through /proc/self/fd, which reaches that very inode. O_NONBLOCK keeps a lease another
    user holds from stalling us. `expect` = (st_dev, st_ino) that the file must be.
    follow=True only for the kernel's magic links (dir_fd None, name /proc/PID/map_files/..)."""
    where = where or name
    try:
        pinned = os.open(name, os.O_PATH | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW), dir_fd=dir_fd)
    except OSError as exc:
        raise _name_error(exc, where, name) from None
    try:
        st = os.fstat(pinned)
        _check_regular(st, where, name, expect)
        fd = _reopen(pinned, flags, where)
    finally:
        os.close(pinned)
    os.set_blocking(fd, not flags & os.O_NONBLOCK)
    return fd


def lstat_or_none(dir_fd: int, name: str) -> Optional[os.stat_result]:
    """The lstat of `name` in dir_fd, None if there is no such name; other errors raise
    OSError for the caller to word."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def lstat_at(dir_fd: int, name: str, where: Optional[str] = None) -> os.stat_result:
    """The lstat of `name` in dir_fd (a symlink is described, never followed)."""
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        raise _name_error(exc, where or name, name) from None


def lstat_path(path: str, where: Optional[str] = None, base: Optional[int] = None) -> os.stat_result:
    """lstat of `path` with no symlink followed in any component (see open_directory)."""
    directory, name = os.path.split(_normal(path, base) or ".")
    dir_fd = open_directory(directory, where or path, base)
    try:
        return lstat_at(dir_fd, name or ".", where or path)
    finally:
        os.close(dir_fd)


def unlink_checked(dir_fd: int, name: str, dev: int, ino: int, where: Optional[str] = None) -> None:
    """unlinkat(dir_fd, name) only when `name` is a regular file with that (st_dev, st_ino):
    a name swapped for another file, a symlink or a directory is left alone (Conflict)."""
    where = where or name
    st = lstat_at(dir_fd, name, where)
    _check_regular(st, where, name, (dev, ino))
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        raise NotFound(where, "already gone") from None
    except OSError as exc:
        raise from_oserror(exc, f"unlink {where}") from None


def identity(st: os.stat_result) -> Tuple[int, int]:
    """(st_dev, st_ino): what names one file on the whole host, whatever its names."""
    return st.st_dev, st.st_ino


def same_file(st: os.stat_result, dev: int, ino: int) -> bool:
    return identity(st) == (dev, ino)


# --- the parts ---

def _normal(path: str, base: Optional[int]) -> str:
    """The path without '.', '..' and repeated slashes (lexically: with no symlink followed,
    'a/..' is the directory that holds a), relative to `base` when one is given."""
    path = os.path.normpath(path) if path else "."
    if base is not None:
        path = path.lstrip("/")
    return "" if path == "." else path


def _walk(path: str, where: str, base: Optional[int], trusted_links: bool = False) -> int:
    """openat(O_NOFOLLOW|O_DIRECTORY) one component at a time from "/" (or base, or the cwd);
    with trusted_links, a symlink of root's or the caller's is read and its target walked
    the same way (at most MAX_LINKS of them: ELOOP)."""
    fd = _start(path, where, base)
    done = "" if path.startswith("/") else "."
    parts, links = [p for p in path.split("/") if p], 0
    while parts:
        part = parts.pop(0)
        shown = f"{done}/{part}" if done != "." else part
        try:
            next_fd = os.open(part, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            target = _trusted_link(fd, part) if trusted_links and links < MAX_LINKS else None
            if target is None:
                error = _component_error(exc, fd, part, shown, where, trusted_links)
                os.close(fd)
                raise error from None
            links += 1
            parts[:0] = [p for p in target.split("/") if p]
            if target.startswith("/"):
                os.close(fd)
                fd = _start("/", where, base)
            done = shown
            continue
        os.close(fd)
        fd, done = next_fd, shown
    return fd


MAX_LINKS = 40  # the kernel's own bound on symlinks in one lookup


def _trusted_link(dir_fd: int, name: str) -> Optional[str]:
    """The target of the symlink `name` if root or the caller owns it, else None. The link
    is pinned first (O_PATH|O_NOFOLLOW), so the owner checked is that of the target read."""
    try:
        link = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        st = os.fstat(link)
        if not stat.S_ISLNK(st.st_mode) or st.st_uid not in (0, os.geteuid()):
            return None
        return os.readlink("", dir_fd=link)
    except OSError:
        return None
    finally:
        os.close(link)


def _start(path: str, where: str, base: Optional[int]) -> int:
    try:
        if base is not None:
            return os.dup(base)
        return os.open("/" if path.startswith("/") else ".", DIR_FLAGS)
    except OSError as exc:
        raise from_oserror(exc, where) from None


def _component_error(exc: OSError, dir_fd: int, part: str, shown: str, where: str,
                     trusted_links: bool = False) -> ShmctlError:
    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
        try:
            kind = _file_type(os.stat(part, dir_fd=dir_fd, follow_symlinks=False).st_mode)
        except OSError:
            kind = "not a directory"
        if kind == "symlink" and trusted_links:
            return NotFound(where, f"{shown} is a symlink of another user (or one of too many), never followed",
                            "give the path without it")
        if kind == "symlink":
            return NotFound(where, f"{shown} is a symlink, and symlinks in a path are never followed",
                            "give the path without symlinks")
        return NotFound(where, f"{shown} is a {kind}, not a directory")
    return from_oserror(exc, where)


def _name_error(exc: OSError, where: str, name: str) -> ShmctlError:
    if exc.errno == errno.ENOENT:
        return NotFound(where, "no such file")
    if exc.errno == errno.ELOOP:
        return NotFound(where, f"{name} is a symlink, not a segment")
    return from_oserror(exc, f"open {where}")


def _check_regular(st: os.stat_result, where: str, name: str, expect: Optional[Tuple[int, int]]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(where, f"{name} is a {_file_type(st.st_mode)}, not a segment")
    if expect is not None and not same_file(st, *expect):
        raise Conflict(where, f"{name} is no longer the file that was found (it was replaced)",
                       "nothing was done to it; look again with shmctl list")


def _reopen(pinned: int, flags: int, where: str) -> int:
    try:
        fd = os.open(f"/proc/self/fd/{pinned}", flags | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.EWOULDBLOCK:
            raise Conflict(f"open {where}", "another process holds a lease on it", "try again later") from None
        raise from_oserror(exc, f"open {where}") from None
    if identity(os.fstat(fd)) != identity(os.fstat(pinned)):  # /proc not ours (a strange mount): refuse
        os.close(fd)
        raise Conflict(f"open {where}", "reopening it reached another file", "is /proc mounted?")
    return fd


_TYPES = ((stat.S_ISDIR, "directory"), (stat.S_ISLNK, "symlink"), (stat.S_ISSOCK, "socket"),
          (stat.S_ISFIFO, "fifo"), (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"))


def file_type(mode: int) -> str:
    """What a non-segment file is, for the messages that refuse it."""
    return next((name for test, name in _TYPES if test(mode)), "special file")


def _file_type(mode: int) -> str:
    return "regular file" if stat.S_ISREG(mode) else file_type(mode)


def _openat2(path: str, base: Optional[int]) -> Optional[int]:
    """One openat2(RESOLVE_NO_SYMLINKS) call; None whenever it cannot answer, so that the
    walk decides (and names the failing component in its message)."""
    global _openat2_missing
    if _openat2_missing:
        return None
    import ctypes
    how = _open_how_type()(DIR_FLAGS, 0, RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
    libc = _libc()
    fd = libc.syscall(SYS_OPENAT2, ctypes.c_int(AT_FDCWD if base is None else base),
                      ctypes.c_char_p(os.fsencode(path)), ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)))
    if fd >= 0:
        return fd
    if ctypes.get_errno() in (errno.ENOSYS, errno.EPERM):  # old kernel, or a seccomp filter
        _openat2_missing = True
    return None


_cache: dict = {}


def _libc():
    if "libc" not in _cache:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        _cache["libc"] = libc
    return _cache["libc"]


def _open_how_type():
    if "how" not in _cache:
        import ctypes

        class OpenHow(ctypes.Structure):  # struct open_how (linux/openat2.h)
            _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]
        _cache["how"] = OpenHow
    return _cache["how"]
