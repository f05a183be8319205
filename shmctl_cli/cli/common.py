"""What the lifecycle commands share: bounds checks and a progress bar for large copies."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator, Optional

PROGRESS_FROM = 64 << 20  # bytes; smaller copies finish before a bar would be seen


def check_range(what: str, size: int, offset: int, length: Optional[int]) -> int:
    """The length to use; Conflict (exit 5) for a range past the end, never a short read."""
    from ..errors import Conflict
    if offset > size:
        raise Conflict(what, f"offset {offset} is past the end ({size} bytes)")
    if length is None:
        return size - offset
    if offset + length > size:
        raise Conflict(what, f"{length} bytes at offset {offset} pass the end ({size} bytes)")
    return length


@contextlib.contextmanager
def progress_bar(total: Optional[int], label: str) -> Iterator[Optional[Callable[[int], None]]]:
    """A progress bar on stderr, only when stderr is a terminal, for copies of PROGRESS_FROM
    bytes or more; yields the callback that takes the bytes done so far, or None.
    A known `total`: the bar, percent, bytes in binary units, the rate and the time left. An
    unknown one (None: stdin, a pipe): bytes so far, the rate and the time taken, shown once
    PROGRESS_FROM bytes have gone through (a short pipe never flashes a bar). The frames are
    render/progress.py's, fitted to the terminal's real width whatever TERM says."""
    if (total is not None and total < PROGRESS_FROM) or not sys.stderr.isatty():
        yield None
        return
    bar = _Bar(total, label)
    try:
        yield bar.update
    except BaseException:
        bar.stop(finished=False)
        raise
    bar.stop(finished=True)


class _Bar:
    """A one-line bar redrawn in place with a carriage return (no other cursor motion) at
    most every REDRAW seconds, and wiped at the end: the terminal is left as it was. TERM=dumb
    (or none) promises no cursor motion at all (an editor's shell buffer, a serial console):
    there a frame is a line of its own, one every DUMB_EVERY seconds and the last, so a long
    copy still says how far it is and the screen keeps what it said."""
    REDRAW = 0.1
    DUMB_EVERY = 5.0

    def __init__(self, total: Optional[int], label: str):
        import time
        from ..address import printable
        self.total, self.label = total, printable(label)
        self.started = time.monotonic()
        self.dumb = os.environ.get("TERM", "dumb") in ("dumb", "")
        self.done, self.drawn_at, self.shown, self.width = 0, None, False, 0

    def update(self, done: int) -> None:
        import time
        self.done = done
        if not self.shown and self.total is None and done < PROGRESS_FROM:
            return
        now = time.monotonic()
        every = self.DUMB_EVERY if self.dumb else self.REDRAW
        if self.drawn_at is None and self.dumb:
            self.drawn_at = now  # the first line of a dumb terminal after DUMB_EVERY seconds
        elif self.drawn_at is None or now - self.drawn_at >= every:
            self._draw(now)

    def _draw(self, now: float) -> None:
        from ..render.layout import text_width
        from ..render.progress import progress_line
        from .output import terminal_width
        width = terminal_width(2) - 1  # never the last column: a terminal would wrap there
        frame = progress_line(self.label, self.done, self.total, now - self.started, width)
        if self.dumb:
            _say(frame + "\n")
        else:  # spaces over what a longer frame left, then back to the start of the line
            cells = text_width([frame])
            _say("\r" + frame + " " * max(0, self.width - cells) + "\r")
            self.width = max(self.width, cells)
        self.drawn_at, self.shown = now, True

    def stop(self, finished: bool) -> None:
        """The last frame (all done) where the copy finished, then the line wiped; a dumb
        terminal keeps the last frame as its line, and gets none after a failure."""
        import time
        if self.drawn_at is None:
            return
        if finished and (self.dumb or self.shown):
            self._draw(time.monotonic())
        if not self.dumb and self.shown:
            _say("\r" + " " * self.width + "\r")


def _say(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def open_source(path: str, what: str):
    """FILE, or '-' for stdin, opened for reading: (file object, size, or None for a pipe).
    Pipes, FIFOs and terminals are read so that a signal always gets through (signals.py);
    a FIFO is opened without waiting in open() for a writer."""
    import errno
    import fcntl
    import stat

    from ..errors import from_errno
    from ..outfile import local_error
    from ..signals import PipeSource, open_fifo
    try:
        if path == "-":
            fd = os.dup(0)
            if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_WRONLY:  # main() took a closed 0
                os.close(fd)
                raise from_errno(errno.EBADF, what, "stdin is closed: give FILE, or pipe the data in")
        else:
            st = os.stat(path)
            fd = open_fifo(path) if stat.S_ISFIFO(st.st_mode) else os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:  # a missing FILE is exit 2, one we may not read 4: never "no such segment"
        raise local_error(exc, what) from None
    st = os.fstat(fd)
    if stat.S_ISDIR(st.st_mode):  # open() takes a directory; its read() would fail later, unnamed
        os.close(fd)
        raise local_error(OSError(errno.EISDIR, "is a directory"), what)
    if not stat.S_ISREG(st.st_mode):
        return PipeSource(fd), None
    src = os.fdopen(fd, "rb")
    return src, max(0, st.st_size - src.tell())
