"""Kernel parameters: /proc/sys values and sysctl.conf text, read only (writing them, and
editing a sysctl.d file, is limits/setting.py's and limits/persist.py's).

sysctl.d(5): one `key = value` a line, `#` or `;` start a comment, a leading `-` on the key
means "ignore a failure to set it", and `kernel/shmmax` is the same key as `kernel.shmmax`.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

from . import read_text


def sysctl_path(name: str, proc: str) -> str:
    return f"{proc}/sys/{name.replace('.', '/')}"


def read_sysctl(name: str, proc: str) -> str:
    return read_text(sysctl_path(name, proc)).strip()


def read_sysctl_int(name: str, proc: str) -> Optional[int]:
    """The value as an int; None where this kernel (or this /proc) lacks it."""
    try:
        return int(read_sysctl(name, proc).split()[0])
    except (OSError, ValueError, IndexError):
        return None


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
