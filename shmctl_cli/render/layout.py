"""Fitting a table into a terminal's width without ever folding a cell, as ps and lsblk do.

Each column has its natural width (its widest cell, heading included). When they do not
fit, in this order:
1. cut the cells of `squeeze` columns (names, paths, statuses, process lists) with a
   trailing `…`, the least important column first, never below MIN_SQUEEZE characters
   (nor below its heading);
2. drop whole columns, the least important first (the highest `priority` number; the
   rightmost of equals first). Priority 0 (ADDRESS, a limit's NAME) is never dropped or
   cut, and neither is a column the user named (-o): those are only cut if `squeeze`.

The key column (the first, where its priority is 0: the address) is never cut, and one
long address does not take the table over: the other columns are fitted as if addresses
wider than half the terminal were not there (narrower still, where the columns that may
not go need it), the key column gets the room they leave, and a row whose address is
wider than that stands on a line of its own, whole, followed by a line of its other cells
under their columns (as `ss` wraps a long first field). Where the columns that may not go
cannot fit even so, each row becomes a record instead (as psql's expanded display, or
lsipc -i): the address, then one `  COLUMN  value` line per column, a blank line between
rows. `notruncate` (-W) keeps every column at its natural width, one line per row, however
wide. Pure: no rich, no terminal."""
from __future__ import annotations

import re
from typing import FrozenSet, List, NamedTuple, Optional, Sequence, Tuple

MIN_SQUEEZE = 8
GAP = 1  # one space between columns, as ipcs, lsipc and the plain output
ELLIPSIS = "…"
_ESCAPE = re.compile(r"\\x[0-9a-fA-F]{2}")  # how address.printable writes a byte
INDENT = "  "  # a record's fields, and a value moved under its label


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
    alone: FrozenSet[int] = frozenset()  # rows whose address is on a line of its own
    records: bool = False  # what may not go cannot fit: a record per row, not a table


class Piece(NamedTuple):
    """A run of one line: a cell, a heading or a label (`column` says whose), or spaces."""
    text: str
    column: Optional[int] = None
    label: bool = False  # a heading or a record's label


class Line(NamedTuple):
    row: Optional[int]  # the row it shows, None for the heading and blank lines
    pieces: List[Piece]
    whole: bool = False  # an address alone on its line: never cut, even where wider than the terminal


def text_width(texts: Sequence[str]) -> int:
    """The widest text in terminal cells: len() for ASCII (a C-level pass), else wcwidth."""
    if not texts:
        return 0
    widest = max(map(len, texts))
    if "".join(texts).isascii():
        return widest
    from rich.cells import cell_len  # East Asian wide characters take two cells
    return max(map(cell_len, texts))


def cell_widths(texts: Sequence[str]) -> List[int]:
    if "".join(texts).isascii():
        return list(map(len, texts))
    from rich.cells import cell_len
    return list(map(cell_len, texts))


def fit(columns: Sequence[Column], width: int, notruncate: bool = False, headings: bool = True) -> Layout:
    heads = [text_width([c.heading]) if headings else 0 for c in columns]
    natural = [max(text_width(c.cells), h) for c, h in zip(columns, heads)]
    if notruncate or not columns:
        return Layout(list(range(len(columns))), natural, _total(natural))
    if not keyed(columns):
        keep, widths = _fit_others(columns, heads, natural, width)
        total = _total(widths)
        return Layout(keep, widths, total, records=total > width)
    return _fit_keyed(columns, heads, natural, width)


def keyed(columns: Sequence[Column]) -> bool:
    """Whether the first column is a key (the address): never cut, alone on its line where long."""
    return bool(columns) and columns[0].priority == 0


def _fit_keyed(columns: Sequence[Column], heads: List[int], natural: List[int], width: int) -> Layout:
    """The others fitted beside the key column at its usual width (the widest key within half
    the terminal); narrower still where even so what may not go does not fit; then the key
    column takes the room the others leave."""
    sizes = cell_widths(columns[0].cells)
    usual = max([heads[0]] + [s for s in sizes if s <= max(heads[0], width // 2)])
    for base in sorted({heads[0], usual} | {s for s in sizes if heads[0] < s < usual}, reverse=True):
        keep, widths = _fit_others(columns, heads, [base] + natural[1:], width)
        total = _total(widths)
        if total <= width:
            break
    else:
        return Layout(list(range(len(columns))), natural, _total(natural), records=True)
    if keep == [0]:  # nothing beside the addresses: each one whole on its line
        key = max([heads[0]] + [s for s in sizes if s <= width])
        return Layout(keep, [key], key)
    room = base + width - total
    key = max([base] + [s for s in sizes if s <= room])
    alone = frozenset(i for i, s in enumerate(sizes) if s > key)
    return Layout(keep, [key] + widths[1:], total + key - base, alone)


def _fit_others(columns: Sequence[Column], heads: List[int], natural: List[int],
                width: int) -> Tuple[List[int], List[int]]:
    """Squeeze, then drop the least important column, until the line fits or nothing may go."""
    keep = list(range(len(columns)))
    while True:
        widths = _squeezed(columns, heads, keep, natural, width)
        drop = _next_to_drop(columns, keep) if _total(widths) > width else None
        if drop is None:
            return keep, widths
        keep.remove(drop)


def _total(widths: Sequence[int]) -> int:
    return sum(widths) + GAP * max(0, len(widths) - 1)


def _floor(column: Column, head: int, natural: int) -> int:
    if not column.squeeze or column.priority == 0:
        return natural
    return min(natural, max(MIN_SQUEEZE, head))


def _squeezed(columns: Sequence[Column], heads: List[int], keep: List[int], natural: List[int],
              width: int) -> List[int]:
    widths = {i: natural[i] for i in keep}
    excess = _total(list(widths.values())) - width
    for i in sorted(keep, key=lambda i: (-columns[i].priority, -natural[i])):
        if excess <= 0:
            break
        cut = min(excess, natural[i] - _floor(columns[i], heads[i], natural[i]))
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
    kept = set_cell_size(text, max(0, width - 1))
    escape = kept.rfind("\\", max(0, len(kept) - 3))
    if escape >= 0 and len(kept) < escape + 4 and _ESCAPE.match(text, escape):
        kept = kept[:escape]  # never half an escape: `\x0…` would read as another byte
    return kept + ELLIPSIS


def cut_cells(cells: Sequence[str], width: int) -> List[str]:
    """A column's cells cut to `width`; the common case (nothing longer) in one pass."""
    if text_width(cells) <= width:
        return list(cells)
    return [cut(text, width) for text in cells]


# --- the lines ---

def table_lines(columns: Sequence[Column], right: Sequence[bool], width: Optional[int], notruncate: bool = False,
                headings: bool = True, records: bool = True) -> Tuple[Layout, List[Line]]:
    """The lines of the table fitted to `width` as `fit` says (records where it says so and
    `records` allows it); every column, every cell whole, one line a row where `width` is
    None (a pipe)."""
    layout = fit(columns, width or 1 << 30, notruncate or width is None, headings)
    if layout.records and records:
        return layout, _record_lines(columns, width or 1 << 30)
    return layout, _grid_lines(columns, right, layout, headings)


def fitted_lines(columns: Sequence[Column], right: Sequence[bool], width: Optional[int],
                 notruncate: bool = False, headings: bool = True) -> List[str]:
    """Plain aligned lines (one space apart, as ipcs), fitted to `width` as `table_lines` does."""
    return [plain(line) for line in table_lines(columns, right, width, notruncate, headings)[1]]


def plain(line: Line) -> str:
    return "".join(piece.text for piece in line.pieces)


def _grid_lines(columns: Sequence[Column], right: Sequence[bool], layout: Layout, headings: bool) -> List[Line]:
    shown = []
    for i, w in zip(layout.keep, layout.widths):
        cut_here = columns[i].squeeze and columns[i].priority != 0  # a key is never cut
        shown.append((i, w, cut_cells(columns[i].cells, w) if cut_here else columns[i].cells))
    lines = []
    if headings:
        lines.append(Line(None, _pieces([(i, w, columns[i].heading) for i, w, _ in shown], right, True)))
    rows = len(columns[0].cells) if columns else 0
    for r in range(rows):
        texts = [(i, w, cells[r]) for i, w, cells in shown]
        if r in layout.alone:
            lines.append(Line(r, [Piece(texts[0][2], texts[0][0])], whole=True))
            texts[0] = (texts[0][0], texts[0][1], "")
            lines.append(Line(r, _pieces(texts, right, False)))
        else:
            lines.append(Line(r, _pieces(texts, right, False), whole=keyed(columns) and len(shown) == 1))
    return lines


def _pieces(texts: Sequence[Tuple[int, int, str]], right: Sequence[bool], label: bool) -> List[Piece]:
    """One line of cells, each padded to its column, one space apart; no spaces at its end."""
    pieces: List[Piece] = []
    for i, width, text in texts:
        if pieces:
            pieces.append(Piece(" " * GAP))
        room = width - (len(text) if text.isascii() else text_width([text]))
        if room > 0 and right[i]:
            pieces.append(Piece(" " * room))
        if text:
            pieces.append(Piece(text, i, label))
        if room > 0 and not right[i]:
            pieces.append(Piece(" " * room))
    while pieces and pieces[-1].column is None:
        pieces.pop()
    return pieces


def _record_lines(columns: Sequence[Column], width: int) -> List[Line]:
    """A record per row: its address alone, then `  COLUMN  value` for each other column
    (the values lined up), a blank line between rows. Only squeeze cells are cut."""
    first = 1 if keyed(columns) else 0
    fields = range(first, len(columns))
    label_width = max((text_width([columns[i].heading]) for i in fields), default=0)
    room = max(MIN_SQUEEZE, width - len(INDENT) - label_width - 2)
    lines: List[Line] = []
    for r in range(len(columns[0].cells)):
        if r:
            lines.append(Line(None, []))
        if first:
            lines.append(Line(r, [Piece(columns[0].cells[r], 0)], whole=True))
        for i in fields:
            heading, text = columns[i].heading, columns[i].cells[r]
            pad = label_width - text_width([heading]) + 2
            value = [Piece(cut(text, room) if columns[i].squeeze else text, i)] if text else []
            lines.append(Line(r, [Piece(INDENT), Piece(heading, i, True)] + ([Piece(" " * pad)] + value if value
                                                                              else [])))
    return lines
