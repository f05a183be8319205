"""/proc/PID/mountinfo: which filesystem type a device number belongs to."""
from __future__ import annotations

import os
from typing import Dict, List, NamedTuple, Optional

from . import PROC, read_text


def parse_mountinfo(text: str) -> Dict[int, str]:
    """{st_dev: fstype}."""
    return {m.dev: m.fstype for m in parse_mounts(text)}


def read_mountinfo(pid: str, proc: str) -> Dict[int, str]:
    return parse_mountinfo(read_text(f"{proc}/{pid}/mountinfo"))


class Mount(NamedTuple):
    dev: int
    root: str  # the directory of the filesystem mounted here ("/" for the whole of it)
    point: str
    fstype: Optional[str]


def parse_mounts(text: str) -> List[Mount]:
    """Every mount of mountinfo. Field 3 is MAJOR:MINOR, fields 4 and 5 (root, mount point)
    escape space, tab, newline and backslash as \\ooo; the type follows the ` - ` separator."""
    mounts = []
    for line in text.splitlines():
        fields, sep, tail = line.partition(" - ")
        parts = fields.split()
        if not sep or len(parts) < 5:
            continue
        major, _, minor = parts[2].partition(":")
        mounts.append(Mount(os.makedev(int(major), int(minor)), _unescape(parts[3]), _unescape(parts[4]),
                            tail.split()[0]))
    return mounts


def _unescape(field: str) -> str:
    if "\\" not in field:
        return field
    import re
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def read_mounts(pid: str = "self", proc: str = PROC) -> List[Mount]:
    return parse_mounts(read_text(f"{proc}/{pid}/mountinfo"))
