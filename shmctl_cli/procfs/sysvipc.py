"""/proc/sysvipc/shm: every SysV segment of the reader's IPC namespace, whatever its mode."""
from __future__ import annotations

from typing import Dict

from ..units import KEY_MAX
from . import read_bytes

# Bits of the perms column above the mode (include/uapi/linux/shm.h): marked for destruction
# (IPC_RMID while attached), locked in memory (SHM_LOCK).
SHM_DEST, SHM_LOCKED = 0o1000, 0o2000
# The columns shmctl uses, in this order, in every record the parser returns.
FIELDS = ("key", "shmid", "perms", "size", "cpid", "lpid", "nattch", "uid", "gid", "cuid", "cgid",
          "atime", "dtime", "ctime", "rss", "swap")


def parse_sysvipc_shm_columns(text: bytes) -> Dict[str, list]:
    """Every column of the table as a list of ints, named as in FIELDS. `key` comes back
    unsigned (the kernel prints it with %d), `perms` as the octal number it is. Columns a
    kernel lacks (rss and swap before 3.x) are lists of None. The header names the columns,
    so their order is not assumed. Column-wise conversion keeps the loops in C."""
    header, _, body = text.partition(b"\n")
    names = header.decode().split()
    width = len(names)
    tokens = body.split()
    if len(tokens) % width:
        raise ValueError("/proc/sysvipc/shm: a row does not have as many fields as the header")
    count = len(tokens) // width
    columns = {}
    for name in FIELDS:
        if name not in names:
            columns[name] = [None] * count
            continue
        raw = tokens[names.index(name)::width]
        columns[name] = _integers(raw, 8 if name == "perms" else 10, name == "key", unique=name == "shmid")
    return columns


def _integers(raw: list, base: int, unsigned32: bool, unique: bool = False) -> list:
    """A column of tokens as ints. Most columns repeat a few values (owners, modes, sizes,
    times of a bulk creation): each distinct token is converted once and looked up."""
    if len(raw) > 64 and not unique:
        distinct = set(raw)
        if len(distinct) == 1:  # a bulk of segments made alike: one value, repeated
            return [_int(raw[0], base, unsigned32)] * len(raw)
        if len(distinct) * 4 <= len(raw):
            ints = {t: _int(t, base, unsigned32) for t in distinct}
            return list(map(ints.__getitem__, raw))
    if base == 10 and not unsigned32:
        return list(map(int, raw))
    return [_int(t, base, unsigned32) for t in raw]


def _int(token: bytes, base: int, unsigned32: bool) -> int:
    value = int(token, base)
    return value & KEY_MAX if unsigned32 else value  # the kernel prints key_t with %d


def read_sysvipc_shm(proc: str) -> Dict[str, list]:
    return parse_sysvipc_shm_columns(read_bytes(f"{proc}/sysvipc/shm"))
