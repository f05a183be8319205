"""The screen of `shmctl watch`: a header (time, counts, totals), the table of segments fitted
to the terminal as `list` fits it (render/layout.py), each changed row highlighted, and a
footer with the keys. Pure: segments, marks and sizes in, a rich renderable out.

Highlights: created green, grown yellow and shrunk cyan (SIZE shows the old size too),
removed red and struck through (shown for one refresh, then dropped), attached or detached
bold."""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence

from ..address import printable
from ..fields import COLUMNS, Style
from ..model import Segment

ROW_STYLES = {"created": "green", "grown": "yellow", "shrunk": "cyan", "removed": "red strike",
              "attached": "bold"}
LEGEND = (("new", "green"), ("grown", "yellow"), ("shrunk", "cyan"), ("gone", "red strike"), ("attach", "bold"))
# the columns `s` cycles through, those shown first
SORT_CYCLE = ("SIZE", "RSS", "NATTCH", "CTIME", "ADDRESS", "OWNER", "ID")


class Mark:
    """How one row changed lately: some of ROW_STYLES' words, and the size before."""
    __slots__ = ("words", "old_size")

    def __init__(self, words: Sequence[str] = (), old_size: Optional[int] = None):
        self.words, self.old_size = list(words), old_size


def marks_from(events: Sequence[dict]) -> Dict[str, Mark]:
    """The highlights of a batch of events (watch/events.py), by address."""
    marks: Dict[str, Mark] = {}
    for e in events:
        mark = marks.setdefault(e["address"], Mark())
        word = {"created": "created", "removed": "removed", "attached": "attached", "detached": "attached",
                "marked": "attached"}.get(e["event"])
        if e["event"] == "resized":
            word = "grown" if e["size"] > e["old_size"] else "shrunk"
            if mark.old_size is None:
                mark.old_size = e["old_size"]
        if word and word not in mark.words:
            mark.words.append(word)
    return marks


def next_sort(current: str, columns: Sequence[str]) -> str:
    cycle = [c for c in SORT_CYCLE if c in columns] or list(columns)
    return cycle[(cycle.index(current) + 1) % len(cycle)] if current in cycle else cycle[0]


def sort_rows(rows: List[Segment], column: str, style: Style) -> List[Segment]:
    """Numbers largest first (as top), text in order."""
    field = COLUMNS[column]
    return sorted(rows, key=field.sort_key(style), reverse=field.sort)


def header_line(now: str, segments: Sequence[Segment], kinds: Sequence[str], style: Style, about: str) -> str:
    parts = []
    for kind in kinds:
        mine = [s for s in segments if s.kind == kind]
        parts.append(f"{kind} {len(mine)}: {style.size(sum(s.size for s in mine))}")
    return f"{now}  " + "  ".join(parts) + (f"  · {about}" if about else "")


def footer(sort: str):
    """The keys, and the legend with each word in its own highlight."""
    from rich.text import Text
    text = Text(f"q quit  s sort:{sort} ", style="dim", no_wrap=True, overflow="ellipsis")
    for word, style in LEGEND:
        text.append(" ")
        text.append(word, style=style)
    return text


def screen(segments: Sequence[Segment], removed: Sequence[Segment], marks: Dict[str, Mark],
           columns: Sequence[str], style: Style, sort: str, header: str, height: Optional[int] = None):
    """The whole screen as one rich renderable: as many rows as its lines hold (a row whose
    address stands on a line of its own takes two or more), then how many more there are."""
    from rich.console import Group
    from rich.text import Text
    rows = sort_rows(list(segments) + list(removed), sort, style)
    gone = {id(s) for s in removed}
    room = None if height is None else max(1, height - 5)  # header, table head (2), footer, spare
    shown = rows if room is None else rows[:room]
    while True:
        table, used = watch_table(shown, gone, marks, columns, style)
        budget = None if room is None else room - (len(shown) < len(rows))  # a line for "… N more"
        if budget is None or used <= budget or len(shown) <= 1:
            break
        shown = shown[:max(1, len(shown) - max(1, used - budget))]
    more = len(rows) - len(shown)
    parts = [Text(printable(header), no_wrap=True, overflow="ellipsis"), table]
    if more:
        parts.append(Text(f"… {more} more (sorted by {sort})", style="dim"))
    parts.append(footer(sort))
    return Group(*parts)


def row_styles(rows: Sequence[Segment], gone: set, marks: Dict[str, Mark]) -> List[str]:
    styles = []
    for s in rows:
        words = ["removed"] if id(s) in gone else (marks[s.address].words if s.address in marks else [])
        styles.append(" ".join(ROW_STYLES[w] for w in words))
    return styles


def size_cells(rows: Sequence[Segment], texts: List[str], marks: Dict[str, Mark], style: Style) -> List[str]:
    """SIZE of a resized row: the new size and the old one."""
    out = list(texts)
    for i, s in enumerate(rows):
        mark = marks.get(s.address)
        if mark is not None and mark.old_size is not None:
            out[i] = f"{texts[i]} (was {style.size(mark.old_size)})"
    return out


def watch_table(rows: Sequence[Segment], gone: set, marks: Dict[str, Mark], columns: Sequence[str],
                style: Style):
    """The table of `list` (render/layout.py: no cell folds, the address is never cut, a long
    one stands on its own line and folds only at the screen's edge where it is wider than the
    whole screen), each row in its highlight; and how many screen lines its rows take. -W:
    every column whole, the screen crops what is wider than itself (as watch(1))."""
    from . import cells
    from .layout import Column, table_lines
    from .terminal import grid
    texts = cells(rows, columns, style)
    if "SIZE" in columns:
        i = list(columns).index("SIZE")
        texts[i] = size_cells(rows, texts[i], marks, style)
    fields = [COLUMNS[c] for c in columns]
    specs = [Column(name, t, f.priority, f.squeeze, name in style.pinned) for name, f, t in zip(columns, fields, texts)]
    layout, lines = table_lines(specs, [f.right for f in fields], style.width, style.notruncate, records=False)
    table = grid(layout, lines, True, row_styles=row_styles(rows, gone, marks), fold_whole=not style.notruncate)
    return table, screen_lines(lines, None if style.notruncate else style.width)


def screen_lines(lines, width: Optional[int]) -> int:
    """The screen lines the rows take: an address wider than the screen folds onto more."""
    from .layout import plain, text_width
    used = 0
    for line in lines:
        if line.row is not None:
            used += max(1, -(-text_width([plain(line)]) // width)) if line.whole and width else 1
    return used
