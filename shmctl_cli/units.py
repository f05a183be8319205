"""Sizes, durations, modes and times: parsing what users type, formatting what they read."""
from __future__ import annotations

import re
import stat as stat_module
import time
from typing import Optional, Tuple

from .errors import UsageError

_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgtpe]?)(i?b?)\s*$", re.IGNORECASE)
MAX_SIZE = (1 << 63) - 1  # off_t and ssize_t are signed 64-bit
KEY_MAX = 0xFFFFFFFF  # key_t is 32 bits
IPC_PRIVATE = 0  # the key that asks shmget for a new segment, and names none


def format_key(key: int) -> str:
    return f"0x{key & KEY_MAX:08x}"


def parse_size_note(text: str) -> Tuple[int, Optional[str]]:
    """Bytes for `4096`, `64K`, `1.5GiB`; and a note when a unit reads as decimal (`kB`)."""
    match = _SIZE.match(str(text))
    if not match:
        raise UsageError(f"invalid size '{text}'", "expected a number with an optional unit",
                         "e.g. 4096, 64K, 1M, 1.5GiB")
    number, prefix, suffix = match.groups()
    unit, note = _BINARY[prefix.lower()], None
    if prefix and suffix == "B":  # kB, MB, GB: SI units, 1000-based
        unit = 1000 ** "bkmgtpe".index(prefix.lower())
        binary = f"{number}{prefix.upper()}"
        note = (f"{text.strip()} = {_whole(number, unit)} bytes ({prefix}{suffix} is decimal); "
                f"write {binary} or {binary}iB for {_whole(number, _BINARY[prefix.lower()])}")
    from fractions import Fraction  # only where a size is parsed
    value = Fraction(number) * unit
    if value.denominator != 1:
        raise UsageError(f"invalid size '{text}'", "not a whole number of bytes")
    if value > MAX_SIZE:
        raise UsageError(f"invalid size '{text}'", "too large", f"at most {MAX_SIZE} bytes")
    return int(value), note


def _whole(number: str, unit: int) -> str:
    from fractions import Fraction
    value = Fraction(number) * unit
    return str(int(value)) if value.denominator == 1 else f"{float(value):.1f}"


def parse_size(text: str) -> int:
    return parse_size_note(text)[0]


def format_size(n: Optional[int], exact: bool = False) -> str:
    """`4K`, `1.5M`, `10B` like lsipc; exact bytes with exact=True; `-` for unknown."""
    if n is None:
        return "-"
    if exact or n < 1024:
        return str(n) if exact else f"{n}B"
    value, unit = float(n), "B"
    for unit in "KMGTPE":
        value /= 1024
        if value < 1024:
            break
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return text + unit


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|)\s*$")
_SECONDS = {"ms": 0.001, "": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    match = _DURATION.match(str(text))
    if not match:
        raise UsageError(f"invalid duration '{text}'", "expected a number with an optional unit",
                         "e.g. 30, 1.5s, 10m, 2h")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_mode(text: str) -> int:
    try:
        mode = int(str(text), 8)
    except ValueError:
        raise UsageError(f"invalid mode '{text}'", "expected octal permissions", "e.g. 0600") from None
    if not 0 <= mode <= 0o777:
        raise UsageError(f"invalid mode '{text}'", "only permission bits 0000-0777 are allowed")
    return mode


def format_mode(mode: int) -> str:
    return f"{mode & 0o777:04o}"


def mode_string(mode: int) -> str:
    """`rw-r-----` (no file-type letter)."""
    return stat_module.filemode(mode & 0o777)[1:]


_time_cache: dict = {}


def format_time(epoch: Optional[float], iso_zone: bool = False) -> Optional[str]:
    """ISO 8601 local time (with the UTC offset for JSON); None for 0 = never."""
    if not epoch:
        return None
    key = (int(epoch), iso_zone)
    text = _time_cache.get(key)
    if text is None:
        tm = time.localtime(key[0])
        text = time.strftime("%Y-%m-%dT%H:%M:%S", tm)
        if iso_zone:
            offset = tm.tm_gmtoff
            sign = "+" if offset >= 0 else "-"
            text += f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"
        _time_cache[key] = text
    return text


def plural(count: int, word: str) -> str:
    """`1 process`, `2 processes`: the count and the word, agreeing."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word}es" if word.endswith(("s", "sh", "ch", "x")) else f"{count} {word}s"
