"""/proc/PID/smaps: the figures of one mapping, found by its start address."""
from __future__ import annotations

from typing import Dict

from . import read_bytes


def parse_mapping_figures(text: bytes, start: int) -> Dict[str, int]:
    """The `Name: N kB` lines of the mapping that starts at `start`, in bytes ({} when the
    mapping is not there). A mapping's block ends at the next header line, the first line
    whose name part holds a space (`7f...-7f... rw-s 00000000 00:11 0  /SYSV...`)."""
    head = b"%x-" % start
    at = 0 if text.startswith(head) else text.find(b"\n" + head) + 1
    if at == 0 and not text.startswith(head):
        return {}
    figures = {}
    for line in text[at:].split(b"\n")[1:]:
        name, colon, rest = line.partition(b":")
        if not colon or b" " in name:
            break
        parts = rest.split()
        if len(parts) == 2 and parts[1] == b"kB":
            figures[name.decode()] = int(parts[0]) * 1024
    return figures


def read_mapping_figures(pid: int, start: int, proc: str) -> Dict[str, int]:
    """{} where the process is gone or its smaps may not be read."""
    try:
        return parse_mapping_figures(read_bytes(f"{proc}/{pid}/smaps"), start)
    except (OSError, ValueError):
        return {}
