"""/proc/PID/maps: the shared (`s`) mappings of every process, read with plain file reads."""
from __future__ import annotations

import os
import re
from itertools import product
from typing import Dict, List, Optional, Set

from . import read_bytes

DELETED = " (deleted)"
SHARED_LINE = rb"^([0-9a-f]+)-([0-9a-f]+) ([r-][w-][x-]s) ([0-9a-f]+) ([0-9a-f]+):([0-9a-f]+) (\d+)[ \t]*(.*)$"


class SharedMapping:
    """One MAP_SHARED line; `path` as the kernel prints it, " (deleted)" included."""
    __slots__ = ("start", "end", "perms", "offset", "dev", "inode", "path")

    def __init__(self, start: int, end: int, perms: str, offset: int, dev: int, inode: int, path: str):
        self.start, self.end, self.perms, self.offset = start, end, perms, offset
        self.dev, self.inode, self.path = dev, inode, path

    @property
    def deleted(self) -> bool:
        return self.path.endswith(DELETED)

    @property
    def bare_path(self) -> str:
        return self.path[: -len(DELETED)] if self.deleted else self.path


def _unescape(raw: bytes, dev: int, inode: int) -> str:
    """The path as bytes decoded like os.fsdecode (undecodable bytes as lone surrogates).
    The kernel writes a newline in a path as \\012 (seq_file_path's "\\n" escape set) and
    nothing else: not a backslash, so a name holding the four characters `\\012` reads the
    same. Where it occurs, the reading whose file is the mapped one (device, inode) wins;
    when none is (or too many readings), each \\012 is a newline."""
    if b"\\012" not in raw:
        return os.fsdecode(raw)
    return os.fsdecode(_mapped_reading(raw, dev, inode) or raw.replace(b"\\012", b"\n"))


def _mapped_reading(raw: bytes, dev: int, inode: int) -> Optional[bytes]:
    parts = raw.split(b"\\012")
    if len(parts) > 7:
        return None
    deleted = DELETED.encode()
    for glue in product((b"\n", b"\\012"), repeat=len(parts) - 1):
        candidate = parts[0] + b"".join(g + p for g, p in zip(glue, parts[1:]))
        bare = candidate[: -len(deleted)] if candidate.endswith(deleted) else candidate
        try:
            st = os.lstat(bare)
        except (OSError, ValueError):
            continue
        if (st.st_dev, st.st_ino) == (dev, inode):
            return candidate
    return None


_LINE = re.compile(SHARED_LINE, re.M)


def parse_shared_maps(text: bytes) -> List[SharedMapping]:
    """Only the MAP_SHARED lines: private mappings are never shared memory. One C-level
    search of the whole file for `s ` (a shared perms field ends so; a private line has it
    only in its path) finds the candidates; a line of a private mapping is never split,
    decoded or matched. A hit counts only where it ends the perms field of a line that
    parses from its start, so a path holding `rw-s ` forges nothing, and each line is taken once."""
    mappings = []
    find, rfind, match = text.find, text.rfind, _LINE.match
    at = find(b"s ")
    while at >= 0:
        m = match(text, rfind(b"\n", 0, at) + 1)
        if m is None or m.end(3) != at + 1:
            at = find(b"s ", at + 2)  # in a path
            continue
        dev, inode = os.makedev(int(m[5], 16), int(m[6], 16)), int(m[7])
        mappings.append(SharedMapping(int(m[1], 16), int(m[2], 16), m[3].decode(), int(m[4], 16), dev, inode,
                                      _unescape(m[8], dev, inode)))
        at = find(b"s ", m.end())
    return mappings


def parse_shared_maps_slow(text: bytes) -> List[SharedMapping]:
    """The reference: every line split and looked at (tests hold the fast parse to it)."""
    mappings = []
    for line in text.split(b"\n"):
        parts = line.split(None, 5)
        if len(parts) < 5 or len(parts[1]) != 4 or parts[1][3:] != b"s":
            continue
        start, end = parts[0].split(b"-")
        major, minor = parts[3].split(b":")
        dev, inode = os.makedev(int(major, 16), int(minor, 16)), int(parts[4])
        raw = parts[5].lstrip(b" \t") if len(parts) > 5 else b""
        mappings.append(SharedMapping(int(start, 16), int(end, 16), parts[1].decode(), int(parts[2], 16), dev,
                                      inode, _unescape(raw, dev, inode)))
    return mappings


class MapsScan:
    def __init__(self):
        self.by_pid: Dict[int, List[SharedMapping]] = {}
        self.hidden_pids: List[int] = []  # processes whose maps could not be read (permission)
        self.pids: Set[int] = set()  # every process seen

    @property
    def hidden(self) -> int:
        """How many processes were hidden (the count the kinds reason with)."""
        return len(self.hidden_pids)


def list_pids(proc: str) -> List[int]:
    return [int(name) for name in os.listdir(proc) if name.isdigit()]


def scan_shared_maps(proc: str) -> MapsScan:
    """Every process's shared mappings. A process that exits mid-scan is skipped; one whose
    maps we may not read (ptrace access) is counted in `hidden`, not guessed at."""
    scan = MapsScan()
    for pid in list_pids(proc):
        scan.pids.add(pid)
        try:
            data = read_bytes(f"{proc}/{pid}/maps")
        except PermissionError:
            scan.hidden_pids.append(pid)
            continue
        except (FileNotFoundError, ProcessLookupError):
            continue
        except OSError:  # ESRCH and friends while the process dies
            continue
        mappings = parse_shared_maps(data)
        if mappings:
            scan.by_pid[pid] = mappings
    return scan
