"""The rich side of render/layout.py: its lines as rich Text, each printed as it is, never
wrapped and never cropped, so that no cell folds (a line wider than the terminal is one the
terminal wraps: only an address longer than the whole width is ever that)."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from .layout import Line, plain, text_width

RULE = "─"  # under the heading, as rich's SIMPLE_HEAD box draws it


class TextLines:
    """Lines of rich Text printed one under the other; `min_width` (the widest) tells
    print_rich how wide a console they need, so that none is cropped."""

    def __init__(self, lines: list, min_width: int):
        self.lines, self.min_width = lines, min_width

    def __rich_console__(self, console, options):
        yield from self.lines

    def __rich_measure__(self, console, options):
        from rich.measure import Measurement
        return Measurement(self.min_width, self.min_width)


def text_line(pieces: Sequence[tuple], style: str = "", fold: bool = False):
    """One line from (text, style or None, markup colour or None) runs; plain runs are
    joined first (a line is a few appends, not one per cell)."""
    from rich.text import Text
    line = Text(style=style, end="\n", no_wrap=not fold, overflow="fold" if fold else "ignore")
    buffered = []
    for text, run_style, colour in pieces:
        if run_style is None and colour is None:
            buffered.append(text)
            continue
        if buffered:
            line.append("".join(buffered))
            buffered = []
        line.append_text(Text.from_markup(colour(text))) if colour else line.append(text, style=run_style)
    if buffered:
        line.append("".join(buffered))
    return line


def rich_lines(lines: Sequence[Line], colours: Optional[Sequence[Optional[Callable[[str], str]]]] = None,
               row_styles: Optional[Sequence[str]] = None, fold_whole: bool = False) -> list:
    """The layout's lines as Text: headings and labels bold, a column's `colours` markup
    on its cells, each row in its `row_styles`; with `fold_whole`, an address alone on its
    line folds at the edge (a live screen crops what is wider than itself)."""
    out = []
    for line in lines:
        runs = []
        for piece in line.pieces:
            colour = colours[piece.column] if colours and piece.column is not None and not piece.label else None
            runs.append((piece.text, "bold" if piece.label else None, colour))
        style = row_styles[line.row] if row_styles and line.row is not None else ""
        out.append(text_line(runs, style, fold_whole and line.whole))
    return out


def rule(width: int):
    from rich.text import Text
    return Text(RULE * width, end="\n", no_wrap=True, overflow="ignore")


def title_line(title: str, width: int, justify: str):
    """A table's title over its width, in italic as rich's table.title."""
    from rich.text import Text
    room = max(0, width - text_width([title]))
    pad = room // 2 if justify == "center" else room if justify == "right" else 0
    return Text(" " * pad + title, style="italic", end="\n", no_wrap=True, overflow="ignore")


def widest(lines: Sequence[Line]) -> int:
    return max((text_width([plain(line)]) for line in lines), default=0)


def grid(layout, lines: Sequence[Line], headings: bool, title: Optional[str] = None, colours=None,
         title_justify: str = "center", row_styles=None, fold_whole: bool = False) -> TextLines:
    """A fitted table (or its records) as TextLines: the title, the heading and its rule, the rows."""
    texts = rich_lines(lines, colours, row_styles, fold_whole)
    table = bool(lines) and lines[0].row is None  # a heading first: a table, not records
    width = layout.total if table else widest(lines)
    if headings and table:
        texts.insert(1, rule(width))
    if title:
        texts.insert(0, title_line(title, width, title_justify))
    return TextLines(texts, max(widest(lines), width if headings else 0, text_width([title or ""])))


def detail_lines(fields: Sequence[tuple], width: Optional[int], colours: dict) -> TextLines:
    """`stat`'s label and value lines: a value that does not fit beside its label goes,
    whole, on the next line, indented (never folded, no blank line between fields)."""
    from .layout import INDENT
    label_width = max((len(k) for k, _ in fields), default=0)
    texts, widest_line = [], 0
    for label, value in fields:
        colour = colours.get(label)
        size = text_width([value])
        if width is None or label_width + 1 + size <= width:
            texts.append(text_line([(label.ljust(label_width + 1), "bold", None), (value, None, colour)]))
            widest_line = max(widest_line, label_width + 1 + size)
        else:
            indent = INDENT[:width - size] if size <= width else INDENT  # less where the value only just fits
            texts += [text_line([(label, "bold", None)]), text_line([(indent, None, None), (value, None, colour)])]
            widest_line = max(widest_line, len(indent) + size)
    return TextLines(texts, widest_line)
