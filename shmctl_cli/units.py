"""Sizes, durations, modes and times: parsing what users type, formatting what they read."""
from __future__ import annotations

import re
import stat as stat_module
import time
from typing import Optional, Tuple

from .errors import UsageError

_BINARY = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50, "e": 1 << 60}
# [0-9], never \d: re's \d (and int(), float(), str.isdigit()) also take `١٢` and `²`
# fullmatch, never match with `$`: `$` also matches before a final newline (`5\n`)
_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?|\.[0-9]+)([kmgtpe]?)(i?b?)", re.IGNORECASE | re.ASCII)
# ipcmk's `-M 0x1000` (util-linux strtosize reads C's 0x): hex digits, then a binary unit at most
# (the digits take a `b` or `e` greedily, as strtoumax does: 0x1B is 27 bytes)
_HEX_SIZE = re.compile(r"0x([0-9a-f]+)([kmgtp]?)((?:ib)?)", re.IGNORECASE | re.ASCII)
MAX_SIZE = (1 << 63) - 1  # off_t and ssize_t are signed 64-bit
KEY_MAX = 0xFFFFFFFF  # key_t is 32 bits
IPC_PRIVATE = 0  # the key that asks shmget for a new segment, and names none


def is_ascii_digits(text: str) -> bool:
    """Whether `text` is one or more of 0-9 and nothing else. str.isdigit() alone also says
    yes to `²` and `١٢`, which int() then rejects or reads as 12."""
    return text.isascii() and text.isdigit()


# The one grammar of a whole number a user types, by base (fullmatch, ASCII): digits and
# nothing else. int() alone also takes white space around (` 5`, `5\n`), a `+`, `_` between
# digits (`5_000`, `0x_10`), `0b101` and non-ASCII digits (`١٢`, `０`): none of them here.
# Base 0 is "any base" as a C programmer writes a key: decimal, 0x hex, 0o octal (never a
# leading-zero decimal, which C would read as octal and a person as decimal).
_INTEGER = {
    10: re.compile(r"-?[0-9]+", re.ASCII),
    8: re.compile(r"[0-7]+", re.ASCII),
    0: re.compile(r"-?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|0|[1-9][0-9]*)", re.ASCII),
}


def ascii_int(text: str, base: int = 10) -> int:
    """int(text, base) for what a user typed, by the grammar above (base 10: `-?[0-9]+`; 8:
    octal digits; 0: decimal, 0x hex or 0o octal, with an optional `-`); ValueError, as int()
    gives, for anything else. Every number typed on the command line comes through here."""
    if not isinstance(text, str) or not _INTEGER[base].fullmatch(text):
        raise ValueError(f"not a number in ASCII digits: {text!r}")
    return int(text, base)


def parse_count(text: str, what: str, minimum: int = 0, maximum: Optional[int] = None) -> int:
    """A whole number a user typed (a pid, a shmid, a page count): ASCII digits only, within
    [minimum, maximum]; anything else (white space, a sign but `-`, `_`) is a usage error (exit 2)."""
    try:
        value = ascii_int(str(text))
    except ValueError:
        raise UsageError(f"invalid {what} '{text}'", "expected a number in ASCII digits 0-9") from None
    if value < minimum or str(text).startswith("-") or (maximum is not None and value > maximum):  # `-0` too
        bound = f"between {minimum} and {maximum}" if maximum is not None else f"at least {minimum}"
        raise UsageError(f"invalid {what} '{text}'", f"must be {bound}")
    return value


def format_key(key: int) -> str:
    return f"0x{key & KEY_MAX:08x}"


def parse_size_note(text: str) -> Tuple[int, Optional[str]]:
    """Bytes for `4096`, `64K`, `1.5GiB`; and a note when a unit reads as decimal (`kB`)."""
    hexadecimal = _HEX_SIZE.fullmatch(str(text))
    if hexadecimal:
        return _hex_size(text, *hexadecimal.groups()), None
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise UsageError(f"invalid size '{text}'", "expected a number with an optional unit",
                         "e.g. 4096, 64K, 1M, 1.5GiB, 0x1000")
    number, prefix, suffix = match.groups()
    unit, note = _BINARY[prefix.lower()], None
    if prefix and suffix == "B":  # kB, MB, GB: SI units, 1000-based
        unit = 1000 ** "bkmgtpe".index(prefix.lower())
        binary = f"{number}{prefix.upper()}"
        note = (f"{text} = {_whole(number, unit)} bytes ({prefix}{suffix} is decimal); "
                f"write {binary} or {binary}iB for {_whole(number, _BINARY[prefix.lower()])}")
    from fractions import Fraction  # only where a size is parsed
    value = Fraction(number) * unit
    if value.denominator != 1:
        raise UsageError(f"invalid size '{text}'", "not a whole number of bytes")
    if value > MAX_SIZE:
        raise UsageError(f"invalid size '{text}'", "too large", f"at most {MAX_SIZE} bytes")
    return int(value), note


def _hex_size(text: str, digits: str, prefix: str, suffix: str) -> int:
    value = int(digits, 16) * _BINARY[prefix.lower()]
    if value > MAX_SIZE:
        raise UsageError(f"invalid size '{text}'", "too large", f"at most {MAX_SIZE} bytes")
    return value


def _whole(number: str, unit: int) -> str:
    from fractions import Fraction
    value = Fraction(number) * unit
    return str(int(value)) if value.denominator == 1 else f"{float(value):.1f}"


def parse_size(text: str) -> int:
    return parse_size_note(text)[0]


def format_size(n: Optional[int], exact: bool = False) -> str:
    """Binary units without a space, as every size parser here reads them back: `512B`,
    `4KiB`, `1.5MiB`, `2GiB`; exact bytes with exact=True; `-` for unknown."""
    if n is None:
        return "-"
    if exact:
        return str(n)
    if n < 1024:
        return f"{n}B"
    value, unit = float(n), "B"
    for unit in "KMGTPE":
        value /= 1024
        if value < 1023.95:  # what rounds to 1024.0 reads as the next unit
            break
    text = f"{value:.1f}".rstrip("0").rstrip(".")
    return f"{text}{unit}iB"


def kernel_size(n: int) -> str:
    """`2M`, `1G`: a size as the kernel command line writes it (memparse reads K, M and G,
    not KiB), for `hugepagesz=`; plain bytes where no unit divides it."""
    for shift, unit in ((30, "G"), (20, "M"), (10, "K")):
        if n and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    return str(n)


_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d|w|)", re.ASCII)  # fullmatch: no space, no sign
_SECONDS = {"ms": 0.001, "": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    match = _DURATION.fullmatch(str(text))
    if not match:
        raise UsageError(f"invalid duration '{text}'", "expected a number with an optional unit",
                         "e.g. 30, 1.5s, 10m, 2h")
    return float(match.group(1)) * _SECONDS[match.group(2)]


def parse_mode(text: str) -> int:
    try:
        mode = ascii_int(str(text), 8)
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


TIME_FORMATS = ("short", "full", "iso")
_time_cache: dict = {}
_today: list = []  # (year, day of the year) of this run: what `short` compares with


def forget_times() -> None:
    """For a command that runs for days (watch): forget the formatted times and what day today
    is, so that neither grows nor goes stale."""
    _time_cache.clear()
    _today.clear()


def format_time(epoch: Optional[float], iso_zone: bool = False, form: Optional[str] = None) -> Optional[str]:
    """A time as lsipc --time-format writes it, in local time; None for 0 = never.
    `iso` (the default, and JSON's): `2026-11-24T00:43:45+00:00`, with the UTC offset;
    `full`: `Tue Nov 24 00:43:45 2026 UTC`, with the zone's abbreviation; `short`: `00:43`
    today, `Nov24` this year, `2025-Nov24` before. `iso_zone` is kept for old callers:
    every iso text carries its offset now. Each (second, form) is formatted once a run."""
    if not epoch:
        return None
    form = form or "iso"
    key = (int(epoch), form)
    text = _time_cache.get(key)
    if text is None:
        text = _time_cache[key] = _TIME_FORMATTERS[form](time.localtime(key[0]))
    return text


def _iso(tm: time.struct_time) -> str:
    offset = tm.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    return time.strftime("%Y-%m-%dT%H:%M:%S", tm) + f"{sign}{abs(offset) // 3600:02d}:{abs(offset) % 3600 // 60:02d}"


def _full(tm: time.struct_time) -> str:
    return time.strftime("%a %b %e %H:%M:%S %Y ", tm) + (tm.tm_zone or time.strftime("%z", tm))


def _short(tm: time.struct_time) -> str:
    """util-linux's strtime_short, as lsipc prints it."""
    if not _today:
        now = time.localtime()
        _today.append((now.tm_year, now.tm_yday))
    year, yday = _today[0]
    if tm.tm_year == year and tm.tm_yday == yday:
        return time.strftime("%H:%M", tm)
    return time.strftime("%b%d" if tm.tm_year == year else "%Y-%b%d", tm)


_TIME_FORMATTERS = {"iso": _iso, "full": _full, "short": _short}


def plural(count: int, word: str) -> str:
    """`1 process`, `2 processes`: the count and the word, agreeing."""
    if count == 1:
        return f"1 {word}"
    return f"{count} {word}es" if word.endswith(("s", "sh", "ch", "x")) else f"{count} {word}s"
