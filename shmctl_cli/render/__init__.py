"""Tables, plain text and JSON from the model. Never touches the kernel: what it needs
(user names, process facts) is already in the segments or handed in.

Every text that came from the system (names, paths, comms, command lines, user names) is
untrusted: each output form writes it through `printable` (address.py), so it can neither
drive a terminal nor make a line that reads as another segment; plain cells escape spaces
too, rich cells are never read as markup, and JSON holds the same printable form."""
from __future__ import annotations

from itertools import islice, repeat
from typing import Iterator, List, Optional, Sequence

from ..address import needs_escape, printable
from ..fields import COLUMNS, Style, _opt, _time, stat_lines  # noqa: F401 (Style: render.Style for callers)
from ..model import Inventory, Segment


def _escape(cell: str, space: bool = True) -> str:
    # like lsipc --raw: a cell never holds white space or a control character, so awk's
    # fields stay fields and a line stays a segment
    return printable(cell, space=space)


def cell_text(column: str, segment: Segment, style: Style) -> str:
    return COLUMNS[column].text(segment, style)


def _escaped(texts: List[str], space: bool = True) -> List[str]:
    if needs_escape("".join(texts), space=space):  # C-level scans of the whole column
        return [_escape(t, space) for t in texts]
    return texts


def _pad(texts: List[str], align: Optional[str]) -> List[str]:
    if not align:
        return texts
    width = max(map(len, texts), default=0)
    return list(map(str.rjust if align == ">" else str.ljust, texts, repeat(width, len(texts))))


def column_cells(column: str, segments: Sequence[Segment], style: Style, heading: bool = False,
                 align: Optional[str] = None, space: bool = True) -> List[str]:
    """One column's cells, escaped (a space too, unless not `space`), the heading first if
    asked, padded to one width when `align` is '<' or '>'. The work stays in C-level passes:
    values come by attrgetter, and a column of few distinct values formats (and pads) each
    of them once."""
    col = COLUMNS[column]
    head = [column] if heading else []
    if col.cells is not None:
        return _pad(head + _escaped(col.cells(segments, style), space), align)
    values = list(map(col.get, segments))
    distinct = set(values) if col.distinct else None
    if col.fmt is not None and distinct is not None and len(distinct) * 4 <= len(values):
        text = {v: _escape(col.fmt(v, style), space) for v in distinct}
        if align:
            padded = _pad([*head, *text.values()], align)
            head, text = padded[:len(head)], dict(zip(text, padded[len(head):]))
        return head + list(map(text.__getitem__, values))
    if col.fmt is _opt and None not in (values if distinct is None else distinct):
        return _pad(head + list(map(str, values)), align)  # digits: nothing to escape
    texts = values if col.fmt is None else [col.fmt(v, style) for v in values]
    return _pad(head + (texts if col.escaped else _escaped(texts, space)), align)


def composed(column: str) -> bool:
    """Whether the column holds only text shmctl composes (a time, an orphan's reason), never
    text from the system: a terminal shows its spaces as they are."""
    return COLUMNS[column].fmt is _time or column == "ORPHAN"


def cells(segments: Sequence[Segment], columns: Sequence[str], style: Style) -> List[List[str]]:
    """The cells of a terminal table (rich, watch). Whole cells stand in columns there, so
    composed texts keep their spaces (`Tue Nov 24 06:38:47 2026 CET`); a name, user or
    command keeps its \\x20, so that an address pasted from the screen is one word and no
    cell can pose as two. A pipe's plain table escapes every space (awk splits on them)."""
    return [column_cells(name, segments, style, space=not composed(name)) for name in columns]


def plain_table(segments: Sequence[Segment], columns: Sequence[str], style: Style,
                headings: bool = True, raw: bool = False) -> str:
    return "".join(plain_table_chunks(segments, columns, style, headings, raw))


PLAIN_CHUNK = 4096  # lines joined and written at a time


def plain_table_chunks(segments: Sequence[Segment], columns: Sequence[str], style: Style,
                       headings: bool = True, raw: bool = False) -> Iterator[str]:
    """The plain table as pieces to write as they are joined. The cells come a column at a
    time (C-level passes; padding needs each column's widest cell), the lines a chunk at a time."""
    if not columns or not (segments or headings):
        return
    last = len(columns) - 1
    table = []
    for i, name in enumerate(columns):
        right = COLUMNS[name].right
        align = None if raw or (i == last and not right) else (">" if right else "<")
        table.append(column_cells(name, segments, style, headings, align))
    lines = map(" ".join, zip(*table))
    while True:
        piece = list(islice(lines, PLAIN_CHUNK))
        if not piece:
            return
        yield "\n".join(piece) + "\n"


def rich_table(segments: Sequence[Segment], columns: Sequence[str], style: Style, headings: bool = True,
               title: Optional[str] = None):
    """The table fitted to the terminal (render/layout.py): no cell ever folds, the address
    is never cut, and what cannot fit at all becomes a record per segment."""
    from .layout import Column
    fields = [COLUMNS[name] for name in columns]
    specs = [Column(name, texts, f.priority, f.squeeze, name in style.pinned)
             for name, f, texts in zip(columns, fields, cells(segments, columns, style))]
    return rich_grid(specs, [f.right for f in fields], style, headings, title, [f.colour for f in fields])


def rich_grid(specs, right: Sequence[bool], style: Style, headings: bool = True, title: Optional[str] = None,
              colours: Optional[Sequence] = None, title_justify: str = "center"):
    """Whole cells, at the widths layout.fit gives, each line printed as it is (never
    wrapped): a rich renderable whose `min_width` tells print_rich how wide its widest line
    is (wider than the terminal only for -W, or an address longer than the whole width)."""
    from .layout import table_lines
    from .terminal import grid
    layout, lines = table_lines(specs, right, style.width, style.notruncate, headings)
    return grid(layout, lines, headings, title, colours, title_justify)


# --- JSON (json_text.py), re-exported: callers say render.inventory_json ---

from .json_text import (inventory_json, inventory_json_chunks, json_fields, namespace_dict, segment_dict,  # noqa: E402,F401
                        segment_dicts, to_json)


# --- summary (-u) ---

SHMEM_BACKINGS = (None, "anonymous", "memfd", "tmpfs")  # whose pages /proc/meminfo counts as Shmem


def shmem_explained(segments: Sequence[Segment]) -> int:
    """How much of Shmem in /proc/meminfo the segments explain: the rss of those whose pages
    the kernel counts there (not hugetlb, not files on disk). `list -u` and `metrics` say it."""
    return sum(s.rss or 0 for s in segments if not s.hugetlb and s.backing in SHMEM_BACKINGS)


def summarize(inv: Inventory, kinds: Sequence[str]) -> dict:
    per_kind = {}
    for kind in kinds:
        segs = [s for s in inv.segments if s.kind == kind]
        per_kind[kind] = {"count": len(segs), "size": sum(s.size for s in segs),
                          "rss": sum(s.rss or 0 for s in segs), "swap": sum(s.swap or 0 for s in segs)}
    explained = shmem_explained(inv.segments)
    shmem = inv.meminfo.get("Shmem")
    summary = {"kinds": per_kind, "shmem": shmem, "explained": explained, "deleted": _deleted_totals(inv),
               "hugetlb": inv.meminfo.get("Hugetlb"), "shmem_huge_pages": inv.meminfo.get("ShmemHugePages")}
    if inv.namespaces:
        summary["namespaces"] = _namespace_totals(inv)
    return summary


def _namespace_totals(inv: Inventory) -> List[dict]:
    """Per namespace looked into (--all-namespaces): what lives there, and who is in it."""
    totals = []
    for n in inv.namespaces:
        segs = [s for s in inv.segments if s.namespace == n.inode and s.kind in n.kinds]
        totals.append({**namespace_dict(n), "count": len(segs), "size": sum(s.size for s in segs),
                       "rss": sum(s.rss or 0 for s in segs)})
    return totals


NAMESPACE_HEADERS = ("NAMESPACE", "KINDS", "COUNT", "SIZE", "RSS", "PID", "CONTAINER", "COMMAND")


def _namespace_lines(rows: List[dict], style: Style) -> List[str]:
    """One line per namespace; on a terminal fitted to it (COMMAND and CONTAINER cut first)."""
    from .layout import Column, fitted_lines
    table = [(f'{r["type"]}:{r["namespace"]}', ",".join(r["kinds"]), str(r["count"]), style.size(r["size"]),
              style.size(r["rss"]), str(r["pid"] or "-"), printable(r["container"] or "-", space=True),
              printable(r["command"], space=True)) for r in rows]
    columns = list(zip(*table)) if table else [()] * len(NAMESPACE_HEADERS)
    priorities = (0, 4, 1, 2, 3, 6, 5, 7)
    specs = [Column(h, columns[i], priorities[i], squeeze=h in ("CONTAINER", "COMMAND"))
             for i, h in enumerate(NAMESPACE_HEADERS)]
    right = [h in ("COUNT", "SIZE", "RSS", "PID") for h in NAMESPACE_HEADERS]
    return fitted_lines(specs, right, style.width, style.notruncate)


def _wrapped(lines: List[str], width: Optional[int]) -> List[str]:
    """Sentences wrapped at the terminal's width (continuation lines indented); as they are on a pipe."""
    if not width:
        return lines
    import textwrap
    out = []
    for line in lines:
        indent = " " * (len(line) - len(line.lstrip(" ")))
        out += textwrap.wrap(line, width, subsequent_indent=indent + "  ", break_long_words=False,
                             break_on_hyphens=False) or [line]
    return out


def _deleted_totals(inv: Inventory) -> dict:
    """Objects no directory lists any more (ls /dev/shm is empty) that processes still hold:
    counted in their kind's totals and in what explains Shmem, and said apart here."""
    gone = [s for s in inv.segments if s.deleted]
    return {"count": len(gone), "size": sum(s.size for s in gone), "rss": sum(s.rss or 0 for s in gone),
            "pids": sorted({a.pid for s in gone for a in s.attachments or ()})}


def summary_text(summary: dict, style: Style) -> str:
    lines = [f"{'KIND':<6} {'COUNT':>6} {'SIZE':>10} {'RSS':>10} {'SWAP':>10}"]
    for kind, t in summary["kinds"].items():
        lines.append(f"{kind:<6} {t['count']:>6} {style.size(t['size']):>10} {style.size(t['rss']):>10} "
                     f"{style.size(t['swap']):>10}")
    shmem, explained = summary["shmem"], summary["explained"]
    if shmem is not None:
        share = f" ({100 * explained / shmem:.0f}%)" if shmem else ""
        lines.append(f"Shmem (free's \"shared\"): {style.size(shmem)}; the listed segments explain "
                     f"{style.size(explained)}{share}")
        if shmem > explained:
            lines.append("  the rest: other tmpfs files (/run, /tmp, ...), segments of kinds not listed, "
                         "and processes not visible")
    gone = summary.get("deleted") or {}
    if gone.get("count"):
        pids = gone["pids"]
        lines.append(f"deleted but still held (in the totals above; no directory lists them): {gone['count']}, "
                     f"RSS {style.size(gone['rss'])}, freed when {'pid' if len(pids) == 1 else 'pids'} "
                     f"{', '.join(map(str, pids[:8]))}{' ...' if len(pids) > 8 else ''} let go")
    if summary.get("hugetlb"):
        lines.append(f"Hugetlb (not in Shmem): {style.size(summary['hugetlb'])}")
    lines = lines[:1 + len(summary["kinds"])] + _wrapped(lines[1 + len(summary["kinds"]):], style.width)
    if summary.get("namespaces"):
        lines += [""] + _namespace_lines(summary["namespaces"], style)
    return "\n".join(lines) + "\n"


# --- one segment in detail (stat) ---

def detail_fields(s: Segment, style: Style, columns: Optional[Sequence[str]] = None) -> List[tuple]:
    """(label, text) of `stat`: every field of the segment's kind in stat order, or (-o, a
    preset) the columns named, in their order; a column stat has no line for goes under its
    name in lower case. PROCESSES is the table of attached processes (a `processes: -` line
    where none is attached). -P (style.numeric_perms): the perms line in octal only."""
    if columns is None:
        lines = stat_lines(s, style)
    else:
        attached = bool(attachment_rows(s))
        lines = [_detail_line(COLUMNS[name], s, style) for name in columns if name != "PROCESSES" or not attached]
    if getattr(style, "numeric_perms", False):
        perms = (COLUMNS["PERMS"].labels.get(s.kind, COLUMNS["PERMS"].label), COLUMNS["PERMS"].text(s, style))
        lines = [perms if label == perms[0] else (label, text) for label, text in lines]
    return lines


def _shown(f, s: Segment) -> bool:
    """Whether `stat` shows this field of this segment by default (as fields.stat_lines does)."""
    return s.kind in f.kinds and not (f.omit_empty and f.value(s) in (None, ""))


def _detail_line(f, s: Segment, style: Style) -> tuple:
    label = f.labels.get(s.kind, f.label) if f.label else f.name.lower()
    return label, f.detail(s, style) if f.detail is not None and _shown(f, s) else f.text(s, style)


def detail_columns(s: Segment) -> List[str]:
    """The columns of what `stat` shows of this segment by default (PROCESSES last, where
    processes are attached): what `-o +COLS` adds to in the detail view."""
    from .. import fields
    return [f.name for f in fields.STAT_FIELDS if _shown(f, s)] + (["PROCESSES"] if attachment_rows(s) else [])


ATTACH_HEADERS = ("PID", "USER", "RANGE", "PERMS", "OFFSET", "COMMAND")


def attachment_rows(s: Segment) -> List[tuple]:
    return [(f"{a.pid}?" if a.unsure else str(a.pid), a.user or _opt(a.uid), f"{a.start:x}-{a.end:x}" if a.end else "-", a.perms,
             f"0x{a.offset:x}" if a.end else "-", a.command or a.comm) for a in s.attachments or ()]


def _printable_fields(s: Segment, style: Style, columns: Optional[Sequence[str]] = None) -> List[tuple]:
    return [(k, printable(v)) for k, v in detail_fields(s, style, columns)]


def _printable_rows(s: Segment, columns: Optional[Sequence[str]] = None) -> List[tuple]:
    """The attached processes' rows: none where the columns chosen leave PROCESSES out."""
    if columns is not None and "PROCESSES" not in columns:
        return []
    return [tuple(map(printable, row)) for row in attachment_rows(s)]


def detail_text(s: Segment, style: Style, columns: Optional[Sequence[str]] = None) -> str:
    """`stat` on a pipe: `label: value` lines (of the columns chosen, or all), then the processes."""
    fields = _printable_fields(s, style, columns)
    width = max((len(k) for k, _ in fields), default=0)
    lines = [f"{k + ':':<{width + 1}} {v}" for k, v in fields]
    rows = _printable_rows(s, columns)
    if rows:
        lines.append("processes:")
        table = [ATTACH_HEADERS] + rows
        widths = [max(len(r[i]) for r in table) for i in range(len(ATTACH_HEADERS) - 1)]
        lines += ["  " + " ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + " " + r[-1] for r in table]
    return "\n".join(lines) + "\n"


def rich_detail(s: Segment, style: Style, columns: Optional[Sequence[str]] = None):
    """`stat` on a terminal: label and value, one field a line; a value that does not fit
    beside its label goes whole on the next line, indented (never folded, never cut)."""
    from .terminal import detail_lines
    style = style.with_times("full")  # a terminal has room for the whole time here
    fields = _printable_fields(s, style, columns)
    detail = detail_lines(fields, style.width, {"status": COLUMNS["STATUS"].colour})
    rows = _printable_rows(s, columns)
    if not rows:
        return detail
    from rich.console import Group

    from .layout import Column
    columns = list(zip(*rows))
    priorities = {"PID": 0, "USER": 3, "RANGE": 4, "PERMS": 5, "OFFSET": 6, "COMMAND": 2}
    specs = [Column(h, columns[i], priorities[h], squeeze=h == "COMMAND") for i, h in enumerate(ATTACH_HEADERS)]
    procs = rich_grid(specs, [h == "PID" for h in ATTACH_HEADERS], style, title="attached processes",
                      title_justify="left")
    return Group(detail, procs)
