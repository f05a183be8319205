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
    """FILE, or '-' for stdin, opened for reading: (file object, size, or None for a pipe)."""
    import stat

    from ..errors import from_oserror
    try:
        src = open(path, "rb") if path != "-" else os.fdopen(os.dup(0), "rb")
    except OSError as exc:
        raise from_oserror(exc, what) from None
    st = os.fstat(src.fileno())
    return src, (max(0, st.st_size - src.tell()) if stat.S_ISREG(st.st_mode) else None)
