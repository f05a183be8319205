r"""Segment addresses: `sysv:ID`, `sysv:key=K`, `sysv:ftok=PATH,PROJ`, `posix:/name`, `/name`,
`posix:@INODE`, `mmap:/path`, `mmap:@INODE`, `mmap:@MAJ:MIN:INODE`. Parsing and formatting
only; resolving is the kinds' job.

An address names one object on the whole host. SysV ids repeat in every IPC namespace and
/dev/shm names and paths in every mount namespace, so an object of a namespace other than
the one shmctl looks from carries it before the identity: `sysv@ipc:4026532281:32769`,
`posix@mnt:4026532280:/name`, `mmap@mnt:4026532280:/tmp/file` (the namespace's inode, as
lsns and /proc/PID/ns show it). The qualifier comes first so that no name, whatever bytes it
holds, can be read as one. Inode numbers repeat across filesystems: `mmap:@INODE` is short for
an inode on the kernel's internal shmem mount (anonymous and memfd memory); any other
device is written `mmap:@MAJ:MIN:INODE`.

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
from .units import IPC_PRIVATE, KEY_MAX, ascii_int, format_key, is_ascii_digits

NAME_MAX = 255
MAJOR_MAX, MINOR_MAX = (1 << 12) - 1, (1 << 20) - 1  # the kernel's MINORBITS 20 in a 32-bit dev_t
INODE_MAX = (1 << 64) - 1
NS_INODE_MAX = (1 << 32) - 1  # nsfs inodes are unsigned int

# Every form an address takes, with its meaning: the address tables of `shmctl --help`, the
# man page and README.md are generated from these rows (tools/docgen.py), and so is the hint
# of a usage error.
FORMS = (
    ("sysv:SHMID", "SysV segment by shmid"),
    ("sysv:key=KEY", "SysV segment by key (decimal, 0x hex or 0o octal: 0x5eed0001, 1592590337)"),
    ("sysv:ftok=PATH,PROJ", "SysV segment by the key ftok(3) derives from PATH and PROJ (a C int, of which "
                            "only the low 8 bits count, or a character), as glibc does"),
    ("posix:/NAME (or /NAME)", "POSIX object /dev/shm/NAME"),
    ("posix:@INODE", "a POSIX object unlinked while still mapped or open, by its inode in /dev/shm"),
    ("mmap:/PATH", "a file mapped MAP_SHARED"),
    ("mmap:@INODE", "anonymous or memfd shared memory, by its inode"),
    ("mmap:@MAJ:MIN:INODE", "a deleted or unreachable file still mapped, by its device and inode"),
    ("KIND@ipc:NS:ID, KIND@mnt:NS:ID", "any of the above in another IPC (sysv) or mount (posix, mmap) namespace, "
     "NS its inode as lsns shows it, e.g. sysv@ipc:4026532281:32769"),
)
EXPECTED = ", ".join(form for form, _ in FORMS[:-2]) + " or " + FORMS[-2][0] + " (KIND@ipc:NS: or KIND@mnt:NS: before it)"
# `KIND@TYPE:NS:` before the identity: the object lives in that namespace
NAMESPACE_WORDS = {"ipc": "IPC", "mnt": "mount"}


def _with_article(word: str) -> str:
    return ("an " if word[0] in "AEIOU" else "a ") + word


_QUALIFIED = re.compile(r"^([a-z]+)@([a-z]+):([0-9]+):")  # [0-9]: \d would take `١٢`


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
    inode: Optional[int] = None  # mmap:@INODE, posix:@INODE
    device: Optional[int] = None  # mmap:@MAJ:MIN:INODE
    namespace: Optional[int] = None  # the inode of its IPC (sysv) or mount namespace; None: ours

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
        if self.namespace is not None:
            return f"{namespace_prefix(self.kind, self.namespace)}{self.bare()[len(self.kind):]}"
        return self.bare()

    def bare(self) -> str:
        """The address without its namespace."""
        if self.kind == "sysv":
            if self.shmid is not None:
                return f"sysv:{self.shmid}"
            if self.ftok is not None:
                return f"sysv:ftok={self.ftok[0]},{self.ftok[1]}"
            if self.key:
                return f"sysv:key={format_key(self.key)}"
            return "sysv"
        if self.inode is not None:
            return inode_address(self.kind, self.inode, self.device)
        if self.kind == "posix":
            return f"posix:/{self.name}"
        return f"mmap:{self.path}"


def namespace_prefix(kind: str, namespace: Optional[int]) -> str:
    """`KIND` or, for an object of another namespace, `KIND@TYPE:NS`: what goes before the colon."""
    if namespace is None:
        return kind
    from . import REGISTRY
    return f"{kind}@{REGISTRY[kind]['namespace']}:{namespace}"


def inode_address(kind: str, inode: int, device: Optional[int] = None) -> str:
    """`KIND:@INODE`, or `KIND:@MAJ:MIN:INODE` where the device must be said."""
    if device is None:
        return f"{kind}:@{inode}"
    return f"{kind}:@{os.major(device)}:{os.minor(device)}:{inode}"


def posix_address(name: str) -> str:
    return f"posix:/{name}"


def parse_key(text: str) -> int:
    """A 32-bit SysV key: decimal, 0x hex or 0o octal in ASCII digits (units.ascii_int: no
    white space, `+`, `_` or 0b); /proc's signed form (-559038737) is accepted too.
    Never wraps: the kernel would read 2**40 as 0 = IPC_PRIVATE and make a new segment."""
    try:
        key = ascii_int(str(text), 0)
    except ValueError:
        raise UsageError(f"invalid key '{text}'", "expected an integer in ASCII digits: decimal, 0x hex or 0o octal",
                         "e.g. 0x5eed0001 or 1592590337") from None
    if not -(1 << 31) <= key <= KEY_MAX:
        raise UsageError(f"invalid key '{text}'", "a SysV key is 32 bits",
                         "between -2147483648 and 0xffffffff")
    return key & KEY_MAX


_C_OCTAL = re.compile(r"-?0[0-7]+", re.ASCII)
FTOK_PROJ_BITS = 0xFF  # glibc and musl use the low 8 bits of the project id, nothing else


def parse_proj(text: str) -> int:
    """ftok's project id as a C program passes it: a C int in decimal, hex or octal (1234,
    0x4d2, 0o2322, C's 02322, -1; ASCII digits, no white space, `+` or `_`) or one character
    (`A`). Only its low 8 bits count (1234 acts as 0xd2); one whose low byte is 0 is taken
    too: see ftok_note."""
    try:
        proj = int(text, 8) if _C_OCTAL.fullmatch(text) else ascii_int(text, 0)
    except ValueError:
        # ftok's proj_id is a character: `ftok=/etc,A` (a visible one: never a space or a newline)
        if len(text) == 1 and text.isascii() and text.isprintable() and not text.isspace() and not text.isdigit():
            return ord(text)
        raise UsageError(f"invalid ftok project '{text}'", "expected an integer or one ASCII character",
                         "e.g. 1234, 0x41 or A") from None
    if not -(1 << 31) <= proj < 1 << 31:
        raise UsageError(f"invalid ftok project '{text}'", "ftok takes a C int",
                         "between -2147483648 and 2147483647; only the low 8 bits count")
    return proj


def ftok_note(proj: int) -> Optional[str]:
    """What a project id whose low 8 bits are 0 means. POSIX leaves ftok unspecified then;
    glibc computes the key anyway, from the file alone: every such id gives the same key."""
    if proj & FTOK_PROJ_BITS:
        return None
    return (f"note: ftok project {proj} has 0 in its low 8 bits, the only ones ftok uses: the key "
            "depends on the file alone (POSIX leaves this unspecified)")


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
    if is_ascii_digits(rest):
        shmid = int(rest)
        if shmid > 0x7FFFFFFF:
            raise _bad(text, "a shmid is a non-negative 31-bit number")
        return Address("sysv", shmid=shmid)
    raise _bad(text, "a SysV address names a shmid, key= or ftok=")


def _parse_inode(text: str, kind: str, rest: str) -> Address:
    """`@INODE`, or `@MAJ:MIN:INODE` (mmap)."""
    parts = rest[1:].split(":")
    if not all(is_ascii_digits(p) for p in parts) or len(parts) not in ((1, 3) if kind == "mmap" else (1,)):
        raise _bad(text, f"{kind}:@ takes an inode number" + (" or MAJ:MIN:INODE" if kind == "mmap" else ""))
    numbers = [int(p) for p in parts]
    if len(numbers) == 3 and (numbers[0] > MAJOR_MAX or numbers[1] > MINOR_MAX):
        raise _bad(text, f"a device is MAJ:MIN, MAJ at most {MAJOR_MAX} and MIN at most {MINOR_MAX}")
    if numbers[-1] > INODE_MAX:
        raise _bad(text, "an inode number is 64 bits")
    device = os.makedev(numbers[0], numbers[1]) if len(numbers) == 3 else None
    return Address(kind, inode=numbers[-1], device=device)


def _parse_mmap(text: str, rest: str) -> Address:
    if rest.startswith("@"):
        return _parse_inode(text, "mmap", rest)
    if not rest.startswith("/") or "\0" in rest:
        raise _bad(text, "an mmap path must be absolute")
    return Address("mmap", path=rest)


def _split_namespace(text: str):
    """(text without its `KIND@TYPE:NS:` qualifier, the namespace inode or None)."""
    match = _QUALIFIED.match(text)
    if match is None:
        if "@" in text.partition(":")[0] and not text.startswith("/"):
            raise _bad(text, "a namespace is written KIND@ipc:NS: (sysv) or KIND@mnt:NS: (posix, mmap)")
        return text, None
    from . import REGISTRY
    kind, ns_type, number = match[1], match[2], int(match[3])
    if number > NS_INODE_MAX:
        raise _bad(text, "a namespace's inode is 32 bits")
    if kind not in REGISTRY:
        raise _bad(text, f"unknown kind '{kind}'")
    if ns_type != REGISTRY[kind]["namespace"]:
        wanted = REGISTRY[kind]["namespace"]
        raise _bad(text, f"{kind} objects belong to {_with_article(NAMESPACE_WORDS[wanted])} namespace, "
                         f"written {kind}@{wanted}:NS:")
    return f"{kind}:{text[match.end():]}", number


def parse_address(text: str, allow_new: bool = False) -> Address:
    r"""Parse an address; `allow_new` admits a bare `sysv` (IPC_PRIVATE) for create. Every
    `\xHH` is a byte (the form `printable` writes); the namespace qualifier is read first, so
    no escaped byte can make one."""
    text, namespace = _split_namespace(text)
    address = _parse_unqualified(unescape(text), allow_new)
    if namespace is None:
        return address
    if address.is_new:
        raise _bad(text, "create makes segments in shmctl's own namespaces", "use shmctl --ns PID create")
    from dataclasses import replace
    return replace(address, namespace=namespace)


def _parse_unqualified(text: str, allow_new: bool) -> Address:
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
        if rest.startswith("@"):
            return _parse_inode(text, "posix", rest)
        if not rest.startswith("/"):
            raise _bad(text, "a POSIX name starts with '/'")
        return Address("posix", name=check_posix_name(rest))
    return _parse_mmap(text, rest)
