"""`hexdump -C` layout, streamed chunk by chunk: repeated lines fold into one `*`, so a
gigabyte of zeros is three lines on a terminal."""
from __future__ import annotations

from typing import Iterable, Iterator

_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


def hexdump_lines(chunks: Iterable[bytes], start: int = 0) -> Iterator[str]:
    offset, previous, folded, tail = start, None, False, b""
    for chunk in chunks:
        data = tail + chunk
        whole = len(data) - len(data) % 16
        for i in range(0, whole, 16):
            line = data[i:i + 16]
            if line == previous:
                if not folded:
                    folded = True
                    yield "*"
            else:
                folded = False
                previous = line
                yield _line(offset, line)
            offset += 16
        tail = data[whole:]
    if tail:
        yield _line(offset, tail)
        offset += len(tail)
    yield f"{offset:08x}"


def _line(offset: int, line: bytes) -> str:
    hexes = line.hex(" ")
    if len(line) > 8:
        cut = 8 * 3 - 1
        hexes = hexes[:cut] + " " + hexes[cut:]
    return f"{offset:08x}  {hexes:<49} |{line.translate(_PRINTABLE).decode('ascii')}|"
