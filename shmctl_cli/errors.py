"""One exception hierarchy; each class carries the exit code DESIGN.md fixes for it."""
from __future__ import annotations

import errno
import os
from enum import IntEnum
from typing import Optional


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    PERMISSION = 4
    CONFLICT = 5
    LIMIT = 6
    COMMAND_NOT_RUNNABLE = 126  # attach -- CMD: the shell's codes for a command that cannot run
    COMMAND_NOT_FOUND = 127
    HANGUP = 129  # 128 + SIGHUP: a signal N ends shmctl with 128 + N, as a shell reports it
    INTERRUPTED = 130  # 128 + SIGINT
    BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader went away (`shmctl list | head`), said silently
    TERMINATED = 143  # 128 + SIGTERM


class Signalled(BaseException):
    """SIGINT, SIGTERM or SIGHUP, raised where the process is: every `except BaseException`
    and `finally` cleans up (half-made objects removed, temp files unlinked), and main()
    exits 128+N. Not a KeyboardInterrupt, which click would turn into Abort, losing N."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


class ShmctlError(Exception):
    """`shmctl: <what failed>: <why> (<hint>)` on stderr, and an exit code."""

    exit_code = Exit.FAILED
    errno: Optional[int] = None  # set when a system call failed

    def __init__(self, what: str, why: str = "", hint: Optional[str] = None):
        super().__init__(what)
        self.what, self.why, self.hint = what, why, hint

    def __str__(self) -> str:
        # raw: names and paths in it are escaped once, where the line is written (cli's
        # _fail and note), so that the printed form is the one addresses are read back in
        text = self.what
        if self.why:
            text += f": {self.why}"
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(ShmctlError):
    exit_code = Exit.USAGE


class NotFound(ShmctlError):
    exit_code = Exit.NOT_FOUND


class PermissionDenied(ShmctlError):
    exit_code = Exit.PERMISSION


class Conflict(ShmctlError):
    exit_code = Exit.CONFLICT


class LimitReached(ShmctlError):
    exit_code = Exit.LIMIT


_BY_ERRNO = {
    errno.ENOENT: NotFound,
    errno.EIDRM: NotFound,
    errno.EACCES: PermissionDenied,
    errno.EPERM: PermissionDenied,
    errno.EEXIST: Conflict,
    errno.EBUSY: Conflict,
    errno.ENOSPC: LimitReached,
    errno.ENOMEM: LimitReached,
    errno.EFBIG: LimitReached,
    errno.EMFILE: LimitReached,
    errno.ENFILE: LimitReached,
}

_HINTS = {
    PermissionDenied: "run as the owner or as root",
}


def from_errno(err: int, what: str, hint: Optional[str] = None) -> ShmctlError:
    """The exception for a failed system call; the caller may name a better hint."""
    cls = _BY_ERRNO.get(err, ShmctlError)
    exc = cls(what, os.strerror(err), hint or _HINTS.get(cls))
    exc.errno = err
    return exc


def from_oserror(exc: OSError, what: str, hint: Optional[str] = None) -> ShmctlError:
    return from_errno(exc.errno or errno.EIO, what, hint)
