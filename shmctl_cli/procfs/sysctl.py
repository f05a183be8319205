"""Kernel parameters: /proc/sys values (read, write), and sysctl.conf text (parse, update).

sysctl.d(5): one `key = value` a line, `#` or `;` start a comment, a leading `-` on the key
means "ignore a failure to set it", and `kernel/shmmax` is the same key as `kernel.shmmax`.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from . import PROC, read_text


def sysctl_path(name: str, proc: str = PROC) -> str:
    return f"{proc}/sys/{name.replace('.', '/')}"


def read_sysctl(name: str, proc: str = PROC) -> str:
    return read_text(sysctl_path(name, proc)).strip()


def read_sysctl_int(name: str, proc: str = PROC) -> Optional[int]:
    """The value as an int; None where this kernel (or this /proc) lacks it."""
    try:
        return int(read_sysctl(name, proc).split()[0])
    except (OSError, ValueError, IndexError):
        return None


def write_sysctl(name: str, value: int, proc: str = PROC) -> None:
    """One write(2) of the whole value, as sysctl(8) does: the kernel parses it on write."""
    fd = os.open(sysctl_path(name, proc), os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, f"{value}\n".encode())
    finally:
        os.close(fd)


def may_write(name: str, proc: str = PROC) -> bool:
    """access(2) asks procfs itself: per-namespace sysctls check the capability there."""
    return os.access(sysctl_path(name, proc), os.W_OK)


def normalize_key(key: str) -> str:
    return key.strip().replace("/", ".")


def parse_line(line: str) -> Optional[Tuple[str, str, str]]:
    """(prefix, key, value) of a `key = value` line, prefix being "-" or ""; None otherwise."""
    text = line.strip()
    if not text or text[0] in "#;" or "=" not in text:
        return None
    key, _, value = text.partition("=")
    prefix = "-" if key.startswith("-") else ""
    return prefix, normalize_key(key[len(prefix):]), value.strip()


def parse_sysctl_conf(text: str) -> Dict[str, str]:
    """Every key's value; a key set twice keeps the later one, as systemd-sysctl does."""
    values = {}
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed:
            values[parsed[1]] = parsed[2]
    return values


def update_sysctl_conf(text: str, values: Dict[str, object], header: str = "") -> str:
    """The text with each key of `values` set: its first line rewritten in place, later
    duplicates dropped (they would win), missing keys appended; every other line is kept
    as it was. `header` starts a file that was empty."""
    wanted = {normalize_key(k): v for k, v in values.items()}
    out: List[str] = []
    placed = set()
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed is None or parsed[1] not in wanted:
            out.append(line)
        elif parsed[1] not in placed:
            placed.add(parsed[1])
            out.append(f"{parsed[0]}{parsed[1]} = {wanted[parsed[1]]}")
    if not text.strip() and header:
        out = [header]
    out += [f"{key} = {value}" for key, value in wanted.items() if key not in placed]
    return "\n".join(out) + "\n"
