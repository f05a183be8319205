"""What `limits set`, `limits hugepages` and `limits recommend` print: JSON, plain text, and
on a terminal the recommendation as a table fitted to it (render/layout.py)."""
from __future__ import annotations

from typing import List, Optional

from ...units import format_size
from .. import Style
from .document import pool_dict
from .table import aligned

# --- limits set ---


def changes_dict(changes, persist_path: Optional[str], dry_run: bool) -> dict:
    return {"changes": [{"name": c.name, "key": c.key, "old": c.old, "new": c.value, "kept": c.kept,
                         "changed": c.changes} for c in changes],
            "persisted": persist_path, "dry_run": dry_run}


def sysctl_lines(changes) -> str:
    """What sysctl -w prints, and what a sysctl.d file holds."""
    return "".join(f"{c.key} = {c.kept if c.kept is not None else c.value}\n" for c in changes)


# --- limits hugepages ---

def pool_result_dict(result, persisted: Optional[str]) -> dict:
    data = pool_dict(result.pool)
    del data["nodes"]
    data.update(asked=result.count, got=result.got if result.count is not None else None,
                overcommit_asked=result.overcommit_asked, persisted=persisted)
    return data


# --- limits recommend ---

RECOMMEND_HEADERS = ("NAME", "CURRENT", "NEEDED", "UNIT", "STATUS")
# on a terminal: NAME is never cut or dropped (`limits set` takes it), WHAT (prose) is cut
# with '…' first and dropped first, then UNIT; the figures and STATUS stay
RECOMMEND_PRIORITIES = {"NAME": 0, "CURRENT": 1, "NEEDED": 1, "STATUS": 2, "UNIT": 3, "WHAT": 4}
STATUS_COLOURS = {"enough": "green", "raise": "red", "check": "yellow"}


def _status(enough: Optional[bool]) -> str:
    return "check" if enough is None else "enough" if enough else "raise"


def advice_rows(rec, style: Style) -> List[tuple]:
    def value(v, unit):
        if v is None:
            return "unlimited" if unit == "bytes" else "-"
        return style.size(v) if unit == "bytes" else str(v)
    return [(a.name, "no limit" if a.unlimited and not style.exact_sizes else value(a.current, a.unit),
             value(a.needed, a.unit) if a.needed is not None else "-", a.unit, _status(a.enough)) for a in rec.items]


def recommendation_dict(rec, applied: bool) -> dict:
    return {"for": rec.size, "segments": rec.segments, "hugepages": rec.pool is not None,
            "huge_size": rec.pool.size if rec.pool else None, "group": rec.group,
            "items": [{"name": a.name, "current": a.current, "needed": a.needed, "unit": a.unit,
                       "enough": a.enough, "how": a.how} for a in rec.items],
            "commands": rec.commands, "applied": applied}


def recommendation_text(rec, style: Style) -> str:
    text = aligned(RECOMMEND_HEADERS, advice_rows(rec, style), right=(1, 2))
    if rec.commands:
        text += "\n" + "".join(f"{c}\n" for c in rec.commands)
    return text


def recommendation_title(rec) -> str:
    return f"for {format_size(rec.size)} of shared memory in {rec.segments} segment(s)"


def recommendation_rich(rec, style: Style):
    """The title, then the table fitted to the terminal: no cell ever folds (render/layout.py).
    The commands are the caller's to print as plain lines: a terminal may wrap them, but
    they are never cut or folded, so that they can be copied whole."""
    from rich.console import Group
    from rich.text import Text

    from .. import rich_grid
    from ..layout import Column
    headers = RECOMMEND_HEADERS + ("WHAT",)
    rows = [row + (advice.how,) for row, advice in zip(advice_rows(rec, style), rec.items)]
    columns = list(zip(*rows)) if rows else [()] * len(headers)
    specs = [Column(h, columns[i], RECOMMEND_PRIORITIES[h], squeeze=h == "WHAT") for i, h in enumerate(headers)]
    colours = [(lambda t: f"[{STATUS_COLOURS[t]}]{t}[/]") if h == "STATUS" else None for h in headers]
    table = rich_grid(specs, [h in ("CURRENT", "NEEDED") for h in headers], style, colours=colours)
    return Group(Text(recommendation_title(rec), style="table.title"), table)


def commands_text(rec) -> str:
    """`to get there:` and the commands, one a line (on a terminal, after the table)."""
    if not rec.commands:
        return ""
    return "\nto get there:\n" + "".join(f"  {c}\n" for c in rec.commands)
