"""`shmctl limits` on a terminal: one rich table a section, its title above it, fitted to the
terminal's width by render/layout.py (no cell ever folds; NAME is never cut)."""
from __future__ import annotations

from typing import Optional

from ...limits import Limits
from .. import Style
from .table import LIMIT_COLUMNS, POOL_COLUMNS, Choice, Row, choose_columns, limit_rows, pool_rows

_TITLES = {"sysv": "SysV limits", "dev_shm": "/dev/shm", "memory": "memory"}
NO_LIMIT = "no limit"


def _use_colour(text: str) -> str:
    if text == "-":
        return text
    value = float(text.rstrip("%"))
    colour = "red" if value >= 90 else "yellow" if value >= 75 else None
    return f"[{colour}]{text}[/]" if colour else text


def _dim_no_limit(text: str) -> str:
    return "[dim]no limit[/]" if text == NO_LIMIT else text


_COLOURS = {"USE%": _use_colour, "VALUE": _dim_no_limit, "LIMIT": _dim_no_limit}


def _rich_text(name: str, row: Row, style: Style) -> str:
    """A cell on a terminal: `no limit` for a limit that is none (but exact with -b)."""
    shows_value = name == "VALUE" or (name == "LIMIT" and row.limit)
    if shows_value and row.unlimited and not style.exact_sizes:
        return NO_LIMIT
    return LIMIT_COLUMNS[name].text(row, style)


def limits_rich(limits: Limits, style: Style, choice: Optional[Choice] = None):
    """One table a section, its title above it, fitted to the terminal (render/layout.py):
    NAME is never cut (it is what `limits set` takes), DESCRIPTION is cut with '…' first."""
    from rich.console import Group
    from rich.text import Text

    from .. import rich_grid
    from ..layout import Column
    choice = choice or choose_columns(None, terminal=True)
    parts = []
    rows = limit_rows(limits) if choice.limits else []
    for section, title in _TITLES.items():
        mine = [r for r in rows if r.section == section]
        if not mine:
            continue
        if section == "sysv" and limits.ipc_namespace:
            title += f" (IPC namespace ipc:{limits.ipc_namespace})"
        specs = [Column(n, [_rich_text(n, r, style) for r in mine], LIMIT_COLUMNS[n].priority,
                        LIMIT_COLUMNS[n].squeeze, n in choice.named) for n in choice.limits]
        parts += [Text(title, style="table.title"),
                  rich_grid(specs, [LIMIT_COLUMNS[n].right for n in choice.limits], style,
                            colours=[_COLOURS.get(n) for n in choice.limits])]
    if choice.pools and limits.pools:
        cells = pool_rows(limits.pools, limits.numa_nodes > 1)
        specs = [Column(n, [POOL_COLUMNS[n].text(p, style) for p in cells], POOL_COLUMNS[n].priority,
                        pinned=n in choice.named) for n in choice.pools]
        parts += [Text("huge page pools", style="table.title"),
                  rich_grid(specs, [POOL_COLUMNS[n].right for n in choice.pools], style)]
    spaced = [part for i in range(0, len(parts), 2) for part in (Text(""), *parts[i:i + 2])][1:]
    return Group(*spaced)
