"""Readers of /proc (and /dev/shm, /sys): pure parsers of text, plus thin readers whose
root paths tests can point elsewhere, like psutil's PROCFS_PATH."""
from __future__ import annotations

import os

PROC = "/proc"
SHM_DIR = "/dev/shm"
SEM_PREFIX = "sem."  # POSIX named semaphores live in /dev/shm too; they are not segments
SYS = "/sys"


def read_bytes(path: str) -> bytes:
    """One file, read whole. 64 KiB reads: larger ones cross malloc's mmap threshold and pay
    fresh page faults on every call (a 32000-row /proc/sysvipc/shm reads 1.5x slower in 1 MiB
    reads than in 64 KiB ones)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
    finally:
        os.close(fd)


def read_text(path: str) -> str:
    return read_bytes(path).decode("utf-8", "surrogateescape")
