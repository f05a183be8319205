"""Fitting a table into a terminal's width without ever folding a cell, as ps and lsblk do.

Each column has its natural width (its widest cell, heading included). When they do not
fit, in this order:
1. cut the cells of `squeeze` columns (names, paths, statuses, process lists) with a
   trailing `…`, the least important column first, never below MIN_SQUEEZE characters
   (nor below its heading);
2. drop whole columns, the least important first (the highest `priority` number; the
   rightmost of equals first). Priority 0 (ADDRESS, a limit's NAME) is never dropped or
   cut, and neither is a column the user named (-o): those are only cut if `squeeze`;
3. what still does not fit is printed longer than the terminal: a line the terminal wraps
   is still one line with whole cells, where a folded cell would be two half values.
`notruncate` (-W) keeps every column at its natural width. Pure: no rich, no terminal."""
from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence

MIN_SQUEEZE = 8
GAP = 1  # one space between columns, as ipcs, lsipc and the plain output
ELLIPSIS = "…"


class Column(NamedTuple):
    heading: str
    cells: Sequence[str]  # the data cells, escaped already
    priority: int = 9
    squeeze: bool = False
    pinned: bool = False  # named by the user: cut if squeeze, never dropped


class Layout(NamedTuple):
    keep: List[int]  # indexes of the columns shown, in their order
    widths: List[int]  # the width of each shown column
    total: int  # the width of a whole line


def text_width(texts: Sequence[str]) -> int:
    """The widest text in terminal cells: len() for ASCII (a C-level pass), else wcwidth."""
    if not texts:
        return 0
    widest = max(map(len, texts))
    if "".join(texts).isascii():
        return widest
    from rich.cells import cell_len  # East Asian wide characters take two cells
    return max(map(cell_len, texts))


def fit(columns: Sequence[Column], width: int, notruncate: bool = False) -> Layout:
    natural = [max(text_width(c.cells), len(c.heading)) for c in columns]
    keep = list(range(len(columns)))
    if notruncate:
        return Layout(keep, natural, _total(natural))
    while True:
        widths = _squeezed(columns, keep, natural, width)
        total = _total(widths)
        drop = _next_to_drop(columns, keep) if total > width else None
        if drop is None:
            return Layout(keep, widths, total)
        keep.remove(drop)


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + GAP * max(0, len(widths) - 1)


def _floor(column: Column, natural: int) -> int:
    if not column.squeeze or column.priority == 0:
        return natural
    return min(natural, max(MIN_SQUEEZE, len(column.heading)))


def _squeezed(columns: Sequence[Column], keep: List[int], natural: List[int], width: int) -> List[int]:
    widths = {i: natural[i] for i in keep}
    excess = _total(list(widths.values())) - width
    for i in sorted(keep, key=lambda i: (-columns[i].priority, -natural[i])):
        if excess <= 0:
            break
        cut = min(excess, natural[i] - _floor(columns[i], natural[i]))
        widths[i] -= cut
        excess -= cut
    return [widths[i] for i in keep]


def _next_to_drop(columns: Sequence[Column], keep: List[int]) -> Optional[int]:
    droppable = [i for i in keep if columns[i].priority > 0 and not columns[i].pinned]
    if not droppable:
        return None
    return max(droppable, key=lambda i: (columns[i].priority, i))


def cut(text: str, width: int) -> str:
    """`text` in at most `width` cells, its end replaced by `…` where it was longer."""
    if len(text) <= width and text.isascii():
        return text
    from rich.cells import cell_len, set_cell_size
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(0, width - 1)) + ELLIPSIS


def cut_cells(cells: Sequence[str], width: int) -> List[str]:
    """A column's cells cut to `width`; the common case (nothing longer) in one pass."""
    if text_width(cells) <= width:
        return list(cells)
    return [cut(text, width) for text in cells]


def fitted_lines(columns: Sequence[Column], right: Sequence[bool], width: Optional[int],
                 notruncate: bool = False, headings: bool = True) -> List[str]:
    """Plain aligned lines (one space apart, as ipcs), fitted to `width` as `fit` says; no
    fitting where `width` is None (a pipe: every column, every cell whole)."""
    layout = fit(columns, width or 1 << 30, notruncate or width is None)
    shown = []
    for i, w in zip(layout.keep, layout.widths):
        texts = ([columns[i].heading] if headings else []) + cut_cells(columns[i].cells, w)
        shown.append([_pad(t, w, right[i]) for t in texts])
    return [" ".join(row).rstrip() for row in zip(*shown)]


def _pad(text: str, width: int, right: bool) -> str:
    room = width - (len(text) if text.isascii() else text_width([text]))
    return " " * room + text if right else text + " " * room
