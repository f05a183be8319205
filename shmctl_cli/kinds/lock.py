"""The write lock: two shmctl writes to one segment never interleave, and no other user can
hold, poison or remove it.

A write holds flock(LOCK_EX) on a lock file named after the segment's identity, never after
the path the user typed: `sysv-NS-SHMID` (the IPC namespace's inode in hex, the shmid) or
`file-DEV-INO` (hex; POSIX objects, mmap files, memfd and anonymous memory). The file lives
in a directory that only the writer's uid can enter:

- $SHMCTL_LOCK_DIR, if set (for any user);
- /run/shmctl for root;
- $XDG_RUNTIME_DIR/shmctl for others, when XDG_RUNTIME_DIR is a directory of theirs, mode 0700;
- else $TMPDIR/shmctl-UID (/tmp/shmctl-UID).

It is made mode 0700 if missing, and used only if it is not a symlink, belongs to the writer's
uid and is open to no one else (checked on the opened directory's fd); otherwise the write is
refused (exit 5), never sent elsewhere. So a user who plants /tmp/shmctl-UID can deny that
uid's writes until it is removed (the message says so), but can never take its lock; only
root can create /run/shmctl.

The lock is tried with LOCK_NB until SHMCTL_LOCK_TIMEOUT seconds (default 30) have passed;
then the write fails with exit 5, naming the holder's pid as /proc/locks tells it. The kernel
drops the lock when its holder dies, even of SIGKILL.

The holder unlinks the lock file before letting go, so nothing is left behind. That unlink
races with a waiter that opened the file before it: the waiter then locks an inode that no
name leads to any more. So a taker checks, after flock, that the name still leads to the inode
it locked, and otherwise starts again on a fresh file. A writer killed by SIGKILL leaves its
empty file behind, in a directory only its uid enters; the next writer takes and removes it.

What it protects: shmctl writers of one uid against each other (root's against root's). What
it cannot: programs that do not take it (shared memory has no mandatory locking), and shmctl
writers of different uids, which use different directories and so do not exclude each other.
A directory common to all users is one that any user could poison, and root taking locks in
other users' directories would let them stall root.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import math
import os
import stat
import time
from typing import Iterator, List, Mapping, Optional

from ..errors import Conflict, PermissionDenied, ShmctlError, UsageError
from ..signals import deferred
from .paths import identity

LOCK_TIMEOUT = 30.0
ROOT_LOCK_DIR = "/run/shmctl"
_POLL_FIRST, _POLL_MAX = 0.005, 0.05


def sysv_lock_name(shmid: int, namespace: int) -> str:
    """shmids repeat across IPC namespaces; the namespace's inode (System.ipc_namespace_inode,
    0 when unknown: every namespace then shares the name, more exclusion, never less) tells
    them apart."""
    return f"sysv-{namespace:x}-{shmid}"


def file_lock_name(st: os.stat_result) -> str:
    return f"file-{st.st_dev:x}-{st.st_ino:x}"


def lock_timeout(environ: Mapping[str, str] = os.environ) -> float:
    text = environ.get("SHMCTL_LOCK_TIMEOUT")
    if not text:
        return LOCK_TIMEOUT
    import re
    # seconds in ASCII digits (float() would also take ` 5`, `1_0`, `١` and `1e3`)
    value = float(text) if re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", text, re.ASCII) else -1.0
    if not (math.isfinite(value) and value >= 0):
        raise UsageError(f"SHMCTL_LOCK_TIMEOUT='{text}'", "expected seconds, 0 or more",
                         "e.g. SHMCTL_LOCK_TIMEOUT=5")
    return value


def lock_dir_path(euid: int, environ: Mapping[str, str] = os.environ) -> str:
    """Where the uid's locks live (see the module docstring); nothing is created here."""
    override = environ.get("SHMCTL_LOCK_DIR")
    if override:
        return override
    if euid == 0:
        return ROOT_LOCK_DIR
    runtime = environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(runtime) and _private_dir(runtime, euid):
        return os.path.join(runtime, "shmctl")
    tmp = environ.get("TMPDIR", "")
    return os.path.join(tmp if os.path.isabs(tmp) else "/tmp", f"shmctl-{euid}")


def _private_dir(path: str, euid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == euid and not st.st_mode & 0o077


def open_lock_dir(path: str, euid: int, what: str) -> int:
    """An O_PATH fd of the lock directory, made if missing; refused unless it is a real
    directory of euid's that no one else may enter. (mkdir's 0700 less the umask is never
    open to others; O_PATH needs no read permission, so a squatter's 0700 directory is
    reported as theirs rather than as "Permission denied".)"""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise _os_error(exc, what, f"cannot make the lock directory {path}") from None
    try:
        fd = os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):  # a symlink gives ENOTDIR, not ELOOP
            raise _unsafe_dir(what, f"the lock directory {path} is {_not_a_directory(path)}") from None
        raise _os_error(exc, what, f"cannot open the lock directory {path}") from None
    st = os.fstat(fd)
    problem = None
    if st.st_uid != euid:
        problem = f"the lock directory {path} belongs to uid {st.st_uid}, not {euid}"
    elif st.st_mode & 0o077:
        problem = f"the lock directory {path} is mode {stat.S_IMODE(st.st_mode):04o}, open to others"
    if problem:
        os.close(fd)
        raise _unsafe_dir(what, problem)
    return fd


def _not_a_directory(path: str) -> str:
    with contextlib.suppress(OSError):
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return "a symlink"
    return "not a directory"


def _unsafe_dir(what: str, why: str) -> Conflict:
    return Conflict(what, why, "remove it, or point SHMCTL_LOCK_DIR at a mode 0700 directory of your own")


def _os_error(exc: OSError, what: str, doing: str) -> ShmctlError:
    """Exit 4 where access was denied, else 1: a missing lock directory is no missing segment."""
    cls = PermissionDenied if exc.errno in (errno.EACCES, errno.EPERM) else ShmctlError
    return cls(what, f"{doing}: {exc.strerror}", "point SHMCTL_LOCK_DIR at a mode 0700 directory of your own")


@contextlib.contextmanager
def write_lock(address: str, name: str, timeout: Optional[float] = None) -> Iterator[None]:
    """Hold the write lock `name` (sysv_lock_name, file_lock_name) of the segment `address`."""
    what = f"write {address}"
    timeout = lock_timeout() if timeout is None else timeout
    euid = os.geteuid()
    dir_fd = open_lock_dir(lock_dir_path(euid), euid, what)
    held: List[int] = []  # the lock file's fd, put here in the same breath as it is locked
    try:
        _acquire(dir_fd, name, what, timeout, held)
        yield
    finally:
        try:
            if held:
                _release(dir_fd, name, held[0])
        finally:
            os.close(dir_fd)


def _acquire(dir_fd: int, name: str, what: str, timeout: float, held: List[int]) -> None:
    """Wait for the lock, up to `timeout`, with the lock file open (others see who waits). A stop
    signal can land anywhere: each attempt (open, flock, check) runs with them held back, so a
    lock this process took is always in `held` by then (released, and its file unlinked, by the
    caller's finally); the waits between attempts are where a signal ends it at once."""
    deadline = time.monotonic() + timeout
    pause = _POLL_FIRST
    fd = -1
    try:
        while True:
            with deferred():
                if fd < 0:
                    fd = _open_lock_file(dir_fd, name, what)
                state = _try_lock(dir_fd, name, fd)
                if state == _LOCKED:
                    held.append(fd)
                    fd = -1  # the caller's now
                    return
                if state == _RETRY:  # its holder unlinked it as it let go: at once, on a fresh file
                    os.close(fd)
                    fd = -1
                    continue
            if time.monotonic() >= deadline:
                raise _busy(what, timeout, _holders(dir_fd, name))
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)
    finally:
        if fd >= 0:
            os.close(fd)


_LOCKED, _BUSY, _RETRY = 0, 1, 2


def _try_lock(dir_fd: int, name: str, fd: int) -> int:
    """_LOCKED; _BUSY while another process holds it; _RETRY when its holder unlinked the file
    as it let go (then the lock taken on it is worth nothing)."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _BUSY
    return _LOCKED if _still_linked(dir_fd, name, fd) else _RETRY


def _open_lock_file(dir_fd: int, name: str, what: str) -> int:
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Conflict(what, f"the lock file {name} is a symlink", "remove it") from None
        raise _os_error(exc, what, f"cannot open the lock file {name}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
        os.close(fd)
        raise Conflict(what, f"the lock file {name} is not a regular file of yours", "remove it")
    return fd


def _still_linked(dir_fd: int, name: str, fd: int) -> bool:
    try:
        linked = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return identity(linked) == identity(os.fstat(fd))


def _release(dir_fd: int, name: str, fd: int) -> None:
    try:
        with contextlib.suppress(OSError):
            os.unlink(name, dir_fd=dir_fd)  # still holding it: see the module docstring
    finally:
        os.close(fd)  # drops the flock


def _holders(dir_fd: int, name: str) -> List[int]:
    from ..procfs.locks import flock_holders
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return []
    return flock_holders(*identity(st))


def _busy(what: str, timeout: float, holders: List[int]) -> Conflict:
    who = f"another writer (pid {', '.join(map(str, holders))})" if holders else "another writer"
    return Conflict(what, f"{who} held its lock throughout {timeout:g}s",
                    "try again when it is done; SHMCTL_LOCK_TIMEOUT=SECONDS waits longer")
