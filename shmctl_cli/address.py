r"""Segment addresses: `sysv:ID`, `sysv:key=K`, `sysv:ftok=PATH,PROJ`, `posix:/name`, `/name`,
`mmap:/path`, `mmap:@INODE`. Parsing and formatting only; resolving is the kinds' job.

Names, paths and process names come from the system as any bytes, so every output writes
them in one printable form (`printable`): a backslash, each byte of a character that is not
printable (control characters C0 and C1, DEL, line and paragraph separators, format
characters) and each byte that is not UTF-8 become `\xHH`; table cells write a space as
`\x20` too. `parse_address` turns every `\xHH` back into its byte, so a printed address is
accepted back as it is and names the same object; a backslash not followed by `xHH` is
taken literally."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional, Tuple

from . import KINDS
from .errors import UsageError
from .units import IPC_PRIVATE, KEY_MAX, format_key

NAME_MAX = 255

# Every form an address takes, with its meaning: the address tables of `shmctl --help`, the
# man page and README.md are generated from these rows (tools/docgen.py), and so is the hint
# of a usage error.
FORMS = (
    ("sysv:SHMID", "SysV segment by shmid"),
    ("sysv:key=KEY", "SysV segment by key (any base: 0x5eed0001, 1592590337)"),
    ("sysv:ftok=PATH,PROJ", "SysV segment by the key ftok(3) derives from PATH and PROJ, as glibc does"),
    ("posix:/NAME (or /NAME)", "POSIX object /dev/shm/NAME"),
    ("mmap:/PATH", "a file mapped MAP_SHARED"),
    ("mmap:@INODE", "an anonymous, memfd or deleted shared mapping, by its inode (qualified where needed)"),
)
EXPECTED = ", ".join(form for form, _ in FORMS[:-1]) + " or " + FORMS[-1][0]


_HEX_ESCAPE = re.compile(rb"\\x([0-9a-fA-F]{2})")


def _hex(char: str) -> str:
    # an undecodable byte arrives from os.fsdecode as a lone surrogate U+DC80-U+DCFF
    try:
        data = char.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = char.encode("utf-8", "surrogatepass")
    return "".join(f"\\x{b:02x}" for b in data)


def _escape_char(char: str, space: bool) -> str:
    if char.isprintable() and char != "\\" and not (space and char == " "):
        return char
    return _hex(char)


def printable(text: str, space: bool = False) -> str:
    r"""`text` with a backslash, every non-printable character and every undecodable byte
    written as `\xHH` (and a space too, with `space`): it can neither drive a terminal nor
    break a line, and `unescape` gives the text back."""
    if text.isprintable() and "\\" not in text and not (space and " " in text):
        return text
    return "".join([_escape_char(c, space) for c in text])


def needs_escape(joined: str, space: bool = False) -> bool:
    """Whether any of the texts joined here needs `printable` (C-level scans only)."""
    return not joined.isprintable() or "\\" in joined or (space and " " in joined)


def unescape(text: str) -> str:
    r"""Every `\xHH` back to its byte, decoded as os.fsdecode decodes a file name (bytes that
    are not UTF-8 become lone surrogates, as os.scandir and /proc give them)."""
    if "\\x" not in text:
        return text
    try:
        data = os.fsencode(text)
    except UnicodeEncodeError:
        raise UsageError(f"invalid address '{text}'", "it holds characters no file name can hold") from None
    return os.fsdecode(_HEX_ESCAPE.sub(lambda m: bytes.fromhex(m[1].decode()), data))


@dataclass(frozen=True)
class Address:
    kind: str
    shmid: Optional[int] = None
    key: Optional[int] = None
    ftok: Optional[Tuple[str, int]] = None
    name: Optional[str] = None  # POSIX name without its leading slash
    path: Optional[str] = None  # mmap file path
    inode: Optional[int] = None

    @classmethod
    def sysv_shmid(cls, shmid: int) -> "Address":
        """`sysv:SHMID` (ipcrm's `-m SHMID`)."""
        return cls("sysv", shmid=shmid)

    @classmethod
    def sysv_key(cls, key: int) -> "Address":
        """`sysv:key=KEY` (ipcrm's `-M KEY`), the key already parsed (parse_key)."""
        return cls("sysv", key=key)

    @classmethod
    def posix(cls, name: str) -> "Address":
        """`posix:/NAME`, the name without its leading slash, already checked (check_posix_name)."""
        return cls("posix", name=name)

    @property
    def is_new(self) -> bool:
        """An address with no identity yet: the kernel picks one (`sysv` = IPC_PRIVATE)."""
        return (self.kind == "sysv" and self.shmid is None and self.ftok is None
                and self.key in (None, IPC_PRIVATE))

    def __str__(self) -> str:
        if self.kind == "sysv":
            if self.shmid is not None:
                return f"sysv:{self.shmid}"
            if self.ftok is not None:
                return f"sysv:ftok={self.ftok[0]},{self.ftok[1]}"
            if self.key:
                return f"sysv:key={format_key(self.key)}"
            return "sysv"
        if self.kind == "posix":
            return f"posix:/{self.name}"
        if self.inode is not None:
            return f"mmap:@{self.inode}"
        return f"mmap:{self.path}"


def posix_address(name: str) -> str:
    return f"posix:/{name}"


def parse_key(text: str) -> int:
    """A 32-bit SysV key in any base; /proc's signed form (-559038737) is accepted too.
    Never wraps: the kernel would read 2**40 as 0 = IPC_PRIVATE and make a new segment."""
    try:
        key = int(str(text).strip(), 0)
    except ValueError:
        raise UsageError(f"invalid key '{text}'", "expected an integer", "e.g. 0x5eed0001 or 1592590337") from None
    if not -(1 << 31) <= key <= KEY_MAX:
        raise UsageError(f"invalid key '{text}'", "a SysV key is 32 bits",
                         "between -2147483648 and 0xffffffff")
    return key & KEY_MAX


def parse_proj(text: str) -> int:
    try:
        proj = int(text, 0)
    except ValueError:
        if len(text) == 1:  # ftok's proj_id is a character: `ftok=/etc,A`
            return ord(text)
        raise UsageError(f"invalid ftok project '{text}'", "expected a number 1-255 or one character") from None
    if not 1 <= proj <= 255:
        raise UsageError(f"invalid ftok project '{text}'", "ftok uses the low 8 bits, which must not be 0",
                         "use 1-255")
    return proj


def check_posix_name(name: str) -> str:
    """A POSIX name as shm_open wants it, without the slash; refuses what could escape /dev/shm."""
    bare = name[1:] if name.startswith("/") else name
    if not bare:
        raise UsageError(f"invalid POSIX name '{name}'", "empty name", "e.g. posix:/mysegment")
    if "/" in bare:
        raise UsageError(f"invalid POSIX name '{name}'", "a name may not contain '/' after the first")
    if bare in (".", ".."):
        raise UsageError(f"invalid POSIX name '{name}'", "'.' and '..' are not segment names")
    if "\0" in bare:
        raise UsageError("invalid POSIX name", "it contains a NUL byte")
    if len(bare.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise UsageError("invalid POSIX name", f"longer than NAME_MAX ({NAME_MAX} bytes)")
    return bare


def _bad(text: str, why: str) -> UsageError:
    return UsageError(f"invalid address '{text}'", why, f"expected {EXPECTED}")


def _parse_sysv(text: str, rest: str) -> Address:
    if rest.startswith("key="):
        return Address("sysv", key=parse_key(rest[4:]))
    if rest.startswith("ftok="):
        path, sep, proj = rest[5:].rpartition(",")
        if not sep or not path:
            raise _bad(text, "ftok needs PATH,PROJ")
        return Address("sysv", ftok=(path, parse_proj(proj)))
    if rest.isdigit():
        shmid = int(rest)
        if shmid > 0x7FFFFFFF:
            raise _bad(text, "a shmid is a non-negative 31-bit number")
        return Address("sysv", shmid=shmid)
    raise _bad(text, "a SysV address names a shmid, key= or ftok=")


def _parse_mmap(text: str, rest: str) -> Address:
    if rest.startswith("@"):
        if not rest[1:].isdigit():
            raise _bad(text, "mmap:@ takes an inode number")
        return Address("mmap", inode=int(rest[1:]))
    if not rest.startswith("/") or "\0" in rest:
        raise _bad(text, "an mmap path must be absolute")
    return Address("mmap", path=rest)


def parse_address(text: str, allow_new: bool = False) -> Address:
    r"""Parse an address; `allow_new` admits a bare `sysv` (IPC_PRIVATE) for create. Every
    `\xHH` is a byte (the form `printable` writes)."""
    text = unescape(text)
    if text.startswith("/"):
        return Address("posix", name=check_posix_name(text))
    kind, sep, rest = text.partition(":")
    if kind not in KINDS:
        raise _bad(text, f"unknown kind '{kind}'")
    if not sep or not rest:
        if allow_new and kind == "sysv":
            return Address("sysv")
        raise _bad(text, f"{kind} needs an identity after '{kind}:'")
    if kind == "sysv":
        addr = _parse_sysv(text, rest)
        if addr.key == IPC_PRIVATE and not allow_new:
            raise _bad(text, "key 0 is IPC_PRIVATE, which names no segment; address it by shmid")
        return addr
    if kind == "posix":
        if not rest.startswith("/"):
            raise _bad(text, "a POSIX name starts with '/'")
        return Address("posix", name=check_posix_name(rest))
    return _parse_mmap(text, rest)
