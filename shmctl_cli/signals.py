"""SIGINT, SIGTERM and SIGHUP end every command the same way: the signal is raised as
errors.Signalled where the process is, every cleanup runs, and the exit status is 128+N.

A Python signal handler runs between bytecodes, so a signal that lands just before a
blocking read() leaves the read blocked until data comes, perhaps forever. So every read
that can block (a pipe, a FIFO, a terminal) first waits in select() on its fd and on the
wakeup pipe that the C-level handler writes to (signal.set_wakeup_fd): a signal that
arrived at any moment before, or during, the wait makes it return at once.
"""
from __future__ import annotations

import contextlib
import os
import select
import signal

from .errors import Signalled

STOPS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_wakeup = -1


def _raise(signum, frame):
    raise Signalled(signum)


def install() -> None:
    """The wakeup pipe first, then the handlers: no signal can be handled without a byte."""
    global _wakeup
    _wakeup, write_end = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    for signum in STOPS:
        signal.signal(signum, _raise)


@contextlib.contextmanager
def deferred():
    """SIGINT, SIGTERM and SIGHUP held back while the block runs, then handled: what the block
    writes to several places (watch's stdout and its --log) reaches all of them or none."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)


def is_pipe(fd: int) -> bool:
    """Whether fd is a pipe or a socket: where a reader can go away (POLLERR), unlike a file
    or a terminal that hung up."""
    import stat
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def wakeup_fd() -> int:
    """The read end of the wakeup pipe (-1 before install): a loop that waits in poll() on
    fds of its own adds it, so that a signal landing just before the wait ends it at once."""
    return _wakeup


def wait_readable(fd: int) -> None:
    """Until fd has data (or its end); a stop signal raises Signalled instead."""
    while True:
        ready = select.select([fd, _wakeup] if _wakeup >= 0 else [fd], [], [])[0]
        if _wakeup in ready:  # the handler is pending: it runs (and raises) as the loop turns
            os.read(_wakeup, 512)
        if fd in ready:
            return


class PipeSource:
    """A pipe, FIFO, socket or terminal to read from, as a file object that a signal can
    always interrupt (see the module's docstring). Never sets O_NONBLOCK on a file
    description it shares with others (stdin): select() says when a read cannot block."""

    def __init__(self, fd: int):
        self.fd = fd

    def fileno(self) -> int:
        return self.fd

    def readinto(self, view) -> int:
        wait_readable(self.fd)
        return os.readv(self.fd, [view])

    def read(self, limit: int = -1) -> bytes:
        """Up to `limit` bytes (all to the end if negative), fewer only at the end."""
        chunks, total = [], 0
        while limit < 0 or total < limit:
            wait_readable(self.fd)
            chunk = os.read(self.fd, 1 << 20 if limit < 0 else min(1 << 20, limit - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "PipeSource":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_fifo(path: str) -> int:
    """A FIFO opened for reading without blocking in open() (a writer may never come), its
    O_NONBLOCK then cleared on this description of our own: reads wait in select()."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    os.set_blocking(fd, True)
    return fd
