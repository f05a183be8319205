"""What the lifecycle commands share: bounds checks and a progress bar for large copies."""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, Optional

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
def progress_bar(total: int, label: str) -> Iterator[Optional[callable]]:
    """A rich progress bar on stderr for large copies when stderr is a terminal; else None."""
    if total < PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
    with Progress("{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done: bar.update(task, completed=done)


def open_source(path: str, what: str):
    """FILE, or '-' for stdin, opened for reading: (file object, size, or None for a pipe).
    Pipes, FIFOs and terminals are read so that a signal always gets through (signals.py);
    a FIFO is opened without waiting in open() for a writer."""
    import errno
    import fcntl
    import stat

    from ..errors import from_errno, from_oserror
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
    except OSError as exc:
        raise from_oserror(exc, what) from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        return PipeSource(fd), None
    src = os.fdopen(fd, "rb")
    return src, max(0, st.st_size - src.tell())
