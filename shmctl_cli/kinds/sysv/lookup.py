"""Finding ONE SysV segment without building all of them: /proc/sysvipc/shm read only as far
as the segment's line (the kernel writes the table as it is read, so stopping there spares
it the rest), that one line parsed by the table's own parser, one Segment built from it.

The table is the source rather than IPC_STAT: only it has the segment's rss and swap, and
it lists every segment whatever its mode (IPC_STAT needs read permission)."""
from __future__ import annotations

import os
from typing import Optional

CHUNK = 1 << 16  # the table's own reader uses 64 KiB reads too (procfs.read_bytes)


def _find_field(text: bytes, index: int, token: bytes) -> int:
    """Where the line of `text` (whole lines, each ending in a newline) whose field number
    `index` is exactly `token` starts; -1 if none. A fast substring search for the token
    between blanks, each hit checked against its line's fields (a pid or a size elsewhere in
    a line may read the same)."""
    at = text.find(token)
    while at >= 0:
        after = at + len(token)
        if at > 0 and text[at - 1] in b" \n" and after < len(text) and text[after] in b" \n":
            start = text.rfind(b"\n", 0, at) + 1
            end = text.find(b"\n", after)
            fields = text[start:end if end >= 0 else len(text)].split()
            if len(fields) > index and fields[index] == token:
                return start
        at = text.find(token, after)
    return -1


def table_line(proc: str, column: str, value: int) -> Optional[bytes]:
    """The header and the first line of /proc/sysvipc/shm whose `column` (shmid, or key as the
    kernel prints it: signed) is `value`, as a two-line table; None when no line has it. Reads
    stop at that line."""
    token = b"%d" % value
    fd = os.open(f"{proc}/sysvipc/shm", os.O_RDONLY | os.O_CLOEXEC)
    try:
        header, pending, index = None, b"", -1
        while True:
            chunk = os.read(fd, CHUNK)
            text = pending + chunk
            last = len(text) if not chunk else text.rfind(b"\n") + 1  # whole lines only
            lines, pending = text[:last], text[last:]
            if header is None:
                header, newline, lines = lines.partition(b"\n")
                if not newline:  # not even the header is whole yet
                    if not chunk:
                        return None
                    pending, header = header + pending, None
                    continue
                index = header.split().index(column.encode())
            start = _find_field(b"\n" + lines, index, token)  # every line, the first too, after a newline
            if start >= 0:
                line = lines[start - 1:].partition(b"\n")[0]
                return header + b"\n" + line + b"\n"
            if not chunk:
                return None
    finally:
        os.close(fd)


def signed_key(key: int) -> int:
    """The key as /proc/sysvipc/shm prints it: key_t with %d."""
    return key - (1 << 32) if key & 0x80000000 else key
