"""/proc/locks: who holds a file lock.

One lock a line: `1: FLOCK  ADVISORY  WRITE 4242 fe:00:2146686 0 EOF`, the device as hex
major:minor and the inode in decimal. A process waiting in a blocking flock is listed under
the lock it waits for as `1: -> FLOCK ...`: a waiter, not a holder. The pid is as this pid
namespace sees it; a holder outside it is not listed at all (or shows pid 0 or -1: OFD locks).
"""
from __future__ import annotations

import os
from typing import List

from . import PROC, read_text


def parse_flock_holders(text: str, dev: int, ino: int) -> List[int]:
    """Pids that hold (not wait for) a flock on the file (dev, ino)."""
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    pids = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or fields[1] != "FLOCK" or fields[5] != wanted:
            continue
        try:
            pid = int(fields[4])
        except ValueError:
            continue
        if pid > 0:
            pids.append(pid)
    return pids


def flock_holders(dev: int, ino: int, proc: str = PROC) -> List[int]:
    try:
        return parse_flock_holders(read_text(f"{proc}/locks"), dev, ino)
    except OSError:
        return []
