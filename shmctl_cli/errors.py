"""One exception hierarchy; each class carries the exit code DESIGN.md fixes for it."""
from __future__ import annotations

import errno
import os
from enum import IntEnum
from typing import Optional


class Exit(IntEnum):
    """Every exit status shmctl returns, each with its one-line meaning: the exit-code tables
    of `shmctl --help`, the man page and README.md are generated from this class alone
    (tools/docgen.py). A signal N ends shmctl with 128 + N, as a shell reports it."""

    meaning: str

    def __new__(cls, code: int, meaning: str) -> "Exit":
        member = int.__new__(cls, code)
        member._value_ = code
        member.meaning = meaning
        return member

    OK = 0, "success"
    FAILED = 1, ("operation failed: a system call failed for a reason none of the codes below names, a local "
                  "file could not be used or its device is full, or a question was declined (nothing removed)")
    USAGE = 2, ("usage error: bad or conflicting options, a bad address, size or number (ASCII digits only), "
                "a local file or directory that does not exist")
    NOT_FOUND = 3, "no such segment (only a segment: a missing local file is 2)"
    PERMISSION = 4, "permission denied, on a segment or on a local file"
    CONFLICT = 5, ("conflict: already exists, still attached, would truncate or overflow, or the object at "
                   "the address is not shared memory (a POSIX semaphore, a file on disk: rm --force)")
    LIMIT = 6, ("a kernel limit stops it (shmmax, shmall, shmmni, hugepage pool, tmpfs full, memlock); "
                "never a full output device, which is 1")
    DOCTOR_WARNING = 8, "doctor: the worst finding is a warning (something will go wrong under load or later)"
    DOCTOR_CRITICAL = 9, "doctor: the worst finding is critical (something is wrong now, or data is at risk)"
    COMMAND_NOT_RUNNABLE = 126, ("attach -- CMD: CMD cannot run (the shell's code; "
                                 "a CMD that ran gives its own status, 128+N if signal N killed it)")
    COMMAND_NOT_FOUND = 127, "attach -- CMD: no such CMD (the shell's code)"
    HANGUP = 129, "stopped by SIGHUP (128+N: signal N), after the same cleanup as on success or error"
    INTERRUPTED = 130, "stopped by SIGINT (Ctrl-C), after the same cleanup"
    BROKEN_PIPE = 141, ("the reader of stdout went away (128 + SIGPIPE: `shmctl list | head`), in any command; "
                        "nothing is said. create instead removes what it made, says so and exits 1")
    TERMINATED = 143, "stopped by SIGTERM, after the same cleanup"

    @classmethod
    def stopped_by(cls, signum: int) -> "Exit":
        """The status of a run that a stop signal (SIGHUP, SIGINT, SIGTERM) ended."""
        return cls(128 + signum)


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
        text = str(self.what)  # never an int: an OSError's filename may be an fd
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


_MISSING = (errno.ENOENT, errno.ENOTDIR)  # ENOTDIR: a component of the path is no directory
_DENIED = (errno.EACCES, errno.EPERM)
_CONFLICTS = (errno.EEXIST, errno.EBUSY, errno.ETXTBSY)


def local_error(exc: OSError, what: str) -> ShmctlError:
    """A failure on a local file or directory the user named (--from FILE, write's FILE, read
    -o FILE, --persist FILE, --plan FILE, --ftok PATH, mmap:/DIR/FILE's DIR): exit 2 if it
    does not exist (a usage error), 4 if it may not be opened, 1 for the rest (a directory
    where a file is read, a full device). Never 3 (no such *segment*) nor 6 (a limit of
    *shared memory*)."""
    err = exc.errno or errno.EIO
    if err in _MISSING:
        error: ShmctlError = UsageError(what, "no such file or directory")
    elif err in _DENIED or err in _CONFLICTS:
        return from_oserror(exc, what)
    else:
        why = os.strerror(err)
        error = ShmctlError(what, why[:1].lower() + why[1:])  # "no space left on device"
    error.errno = err
    return error
