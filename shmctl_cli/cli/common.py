"""What the lifecycle commands share: bounds checks and a progress bar for large copies."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Callable, Iterator, Optional

from ..units import format_size

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
    A known `total`: the bar, bytes in binary units, percent and the time left. An unknown
    one (None: stdin, a pipe): bytes so far and the rate, shown once PROGRESS_FROM bytes
    have gone through (a short pipe never flashes a bar)."""
    if (total is not None and total < PROGRESS_FROM) or not sys.stderr.isatty():
        yield None
        return
    bar = _Bar(total, label)
    try:
        yield bar.update
    finally:
        bar.stop()


class _Bar:
    """rich's Progress, started on the first update that reaches PROGRESS_FROM bytes."""

    def __init__(self, total: Optional[int], label: str):
        self.total, self.label, self.progress, self.task = total, label, None, None

    def update(self, done: int) -> None:
        if self.progress is None:
            if done < PROGRESS_FROM and self.total is None:
                return
            self._start()
        self.progress.update(self.task, completed=done)

    def _start(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TaskProgressColumn, TimeElapsedColumn, TimeRemainingColumn
        if self.total is None:
            columns = ["{task.description}", *_size_columns(), TimeElapsedColumn()]
        else:
            columns = ["{task.description}", BarColumn(), TaskProgressColumn(), *_size_columns(),
                       "ETA", TimeRemainingColumn()]
        self.progress = Progress(*columns, console=Console(stderr=True), transient=True)
        self.progress.start()
        self.task = self.progress.add_task(self.label, total=self.total)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


def _size_columns() -> list:
    """Bytes done (`1.5GiB/4GiB`, or `1.5GiB` when the total is unknown) and the rate
    (`210MiB/s`), in units.format_size's binary units (rich's own speed is decimal)."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Bytes(ProgressColumn):
        def render(self, task):
            done = format_size(int(task.completed))
            return Text(done if task.total is None else f"{done}/{format_size(int(task.total))}",
                        style="progress.download")

    class Rate(ProgressColumn):
        def render(self, task):
            speed = task.finished_speed or task.speed or (task.completed / task.elapsed if task.elapsed else None)
            return Text("?/s" if speed is None else f"{format_size(int(speed))}/s", style="progress.data.speed")

    return [Bytes(), Rate()]


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
