"""`list -e/--export` and `--newline` (lsipc -e, lsipc -n): COLUMN="value" pairs that a shell
can `eval`. Values are the printable text of the cell, names never replaced by --numeric-ids'
ids (backslash and control characters as \\xHH), and inside the double quotes `"`, `$` and a
backquote are \\xHH too: nothing in a value can end the quotes or expand, and every address
still reads back as printed."""
from __future__ import annotations

import re
from typing import List, Sequence

from ..address import printable
from ..fields import COLUMNS, Style
from ..model import Segment

_SHELL_SPECIAL = {ord('"'): "\\x22", ord("$"): "\\x24", ord("`"): "\\x60"}
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")


def shell_name(column: str) -> str:
    """A column name usable as a shell variable (-y): `USE%` -> `USE_PCT`, others `_`."""
    return _NOT_IDENTIFIER.sub("_", column.replace("%", "_PCT"))


def quoted(text: str) -> str:
    return '"' + text.translate(_SHELL_SPECIAL) + '"'


def _texts(column: str, segments: Sequence[Segment], style: Style) -> List[str]:
    field = COLUMNS[column]
    if field.cells is not None:
        return field.cells(segments, style)
    texts = [field.text(s, style) for s in segments]
    return texts if field.escaped else [printable(t) for t in texts]


def export_text(segments: Sequence[Segment], columns: Sequence[str], style: Style, shell: bool = False,
                newline: bool = False) -> str:
    """One line per segment of NAME="value" pairs, or (newline) one pair a line and a blank
    line between segments. A pair means what its name says in every form: OWNER is the name
    with --numeric-ids too (UID holds the id), as in JSON."""
    style = style.with_names()
    names = [shell_name(c) if shell else c for c in columns]
    table = [[f"{name}={quoted(text)}" for text in _texts(column, segments, style)]
             for name, column in zip(names, columns)]
    rows = list(zip(*table))
    if newline:
        return "\n".join("\n".join(row) + "\n" for row in rows)
    return "".join(" ".join(row) + "\n" for row in rows)
