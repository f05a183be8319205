"""/proc/PID/mountinfo: which filesystem type a device number belongs to."""
from __future__ import annotations

import os
from typing import Dict

from . import PROC, read_text


def parse_mountinfo(text: str) -> Dict[int, str]:
    """{st_dev: fstype}. Field 3 is MAJOR:MINOR; the type follows the ` - ` separator."""
    types = {}
    for line in text.splitlines():
        fields, sep, tail = line.partition(" - ")
        parts = fields.split()
        if not sep or len(parts) < 3:
            continue
        major, _, minor = parts[2].partition(":")
        types[os.makedev(int(major), int(minor))] = tail.split()[0]
    return types


def read_mountinfo(pid: str = "self", proc: str = PROC) -> Dict[int, str]:
    return parse_mountinfo(read_text(f"{proc}/{pid}/mountinfo"))
