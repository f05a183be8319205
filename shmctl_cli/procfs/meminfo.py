"""/proc/meminfo: values in bytes (the kernel's `kB` there means KiB); counts stay counts."""
from __future__ import annotations

from typing import Dict

from . import read_text


def parse_meminfo(text: str) -> Dict[str, int]:
    info = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if not parts or not parts[0].isdigit():
            continue
        value = int(parts[0])
        info[name] = value * 1024 if parts[1:] == ["kB"] else value
    return info


def read_meminfo(proc: str) -> Dict[str, int]:
    return parse_meminfo(read_text(f"{proc}/meminfo"))
