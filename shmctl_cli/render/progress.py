"""One frame of a copy's progress bar as one line of text, fitted to a width. Pure: numbers in,
text out (the terminal side is cli/common.py).

A known size: `LABEL [=====>    ]  45% 36MiB/80MiB 210MiB/s ETA 0:00:03`; an unknown one (a
pipe): `LABEL 36MiB 210MiB/s 0:00:03` (bytes so far, the rate, the time taken). Binary units.
The numbers are what the user watches, so they are never cut: on a narrow terminal the bar
shrinks first (to MIN_BAR), then the label is cut with `…` (to MIN_LABEL), then the bar goes,
then the label is cut to what is left; the label is a description (the verb and the address,
escaped), not output to copy."""
from __future__ import annotations

from typing import Optional

from ..units import format_size
from .layout import cut, text_width

MIN_BAR, MAX_BAR = 10, 40  # characters between the brackets
MIN_LABEL = 16  # the verb and the start of the address
MIN_CUT = 6  # a label cut shorter than this says nothing: left out


def progress_line(label: str, done: int, total: Optional[int], elapsed: float, width: int) -> str:
    """The frame in at most `width` cells, unless the numbers alone are wider."""
    stats = _stats(done, total, elapsed)
    room = width - text_width([stats]) - 1  # for `LABEL [BAR]` and the space before the numbers
    label_width = text_width([label])
    if total is not None:
        bar = min(room - label_width - 3, MAX_BAR)  # ` [` and `]`
        if bar >= MIN_BAR:
            return f"{label} {_bar(done, total, bar)} {stats}"
        cut_to = room - MIN_BAR - 3
        if cut_to >= min(label_width, MIN_LABEL):
            return f"{cut(label, cut_to)} {_bar(done, total, MIN_BAR)} {stats}"
    if room < MIN_CUT:
        return stats
    return f"{cut(label, room)} {stats}"


def _stats(done: int, total: Optional[int], elapsed: float) -> str:
    rate = done / elapsed if elapsed > 0 and done > 0 else None
    speed = f"{format_size(int(rate))}/s" if rate else "?/s"
    if total is None:
        return f"{format_size(done)} {speed} {clock(elapsed)}"
    whole = format_size(total)
    percent = 100 * done // total if total else 100
    eta = clock((total - done) / rate) if rate else "-:--:--"
    return f"{percent:>3}% {format_size(done):>{len(whole)}}/{whole} {speed} ETA {eta}"


def clock(seconds: float) -> str:
    """`0:01:05`: hours, minutes and seconds, as rich and dd write a duration."""
    seconds = max(0, int(seconds + 0.5))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _bar(done: int, total: int, width: int) -> str:
    filled = width if not total or done >= total else width * done // total
    head = ">" if 0 < filled < width else ""
    return "[" + "=" * max(0, filled - len(head)) + head + " " * (width - filled) + "]"
