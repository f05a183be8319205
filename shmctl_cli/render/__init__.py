"""Tables, plain text and JSON from the model. Never touches the kernel: what it needs
(user names, process facts) is already in the segments or handed in.

Every text that came from the system (names, paths, comms, command lines, user names) is
untrusted: each output form writes it through `printable` (address.py), so it can neither
drive a terminal nor make a line that reads as another segment; plain cells escape spaces
too, rich cells are never read as markup, and JSON holds the same printable form."""
from __future__ import annotations

import os
from itertools import repeat
from operator import attrgetter
from typing import Callable, Dict, List, Optional, Sequence

from ..address import needs_escape, printable
from ..model import STATUS_WORDS, Attachment, Inventory, Segment
from ..units import format_key, format_mode, format_size, format_time, mode_string


class Style:
    """How values read: exact sizes (--bytes, and the default on a pipe), numeric ids."""

    def __init__(self, exact_sizes: bool = False, numeric_ids: bool = False,
                 user_name: Callable[[Optional[int]], Optional[str]] = str):
        self.exact_sizes, self.numeric_ids, self.user_name = exact_sizes, numeric_ids, user_name

    def size(self, n: Optional[int]) -> str:
        return format_size(n, self.exact_sizes)

    def user(self, uid: Optional[int]) -> str:
        if uid is None:
            return "-"
        return str(uid) if self.numeric_ids else (self.user_name(uid) or str(uid))


def _opt(value) -> str:
    return "-" if value is None else str(value)


def _time(epoch) -> str:
    return format_time(epoch) or "-"


def _name(value) -> str:
    kind, key, name = value
    if kind == "sysv":
        return format_key(key) if key is not None else "-"
    return name or "-"


def _processes(attachments) -> str:
    """`pid:comm,...`, escaped here: a comm holding a comma would forge another process."""
    if attachments is None:
        return "-"
    seen, parts = set(), []
    for a in attachments:
        if a.pid not in seen:
            seen.add(a.pid)
            parts.append(f"{a.pid}:{printable(a.comm, space=True).replace(',', _COMMA)}")
    return ",".join(parts) or "-"


_COMMA = "\\x2c"


def _status(flags) -> str:
    """`flags` in STATUS_WORDS order; the orphan flag is True, "?" (unsure) or False."""
    words = [word + (on if isinstance(on, str) else "") for word, on in zip(STATUS_WORDS, flags) if on]
    return ",".join(words) or "-"


def _status_cells(segments, style) -> List[str]:
    """Most segments share a status: look at each flag column once (C-level passes), and
    combine only the flags that some segment has."""
    flags = [list(map(attrgetter(word), segments)) for word in STATUS_WORDS]
    flags[-1] = list(map(bool, flags[-1]))  # orphan holds its reason
    unsure = list(map(attrgetter("orphan_unsure"), segments))
    if any(unsure):
        flags[-1] = ["?" if u and o else o for o, u in zip(flags[-1], unsure)]
    active = [i for i, column in enumerate(flags) if any(column)]
    if not active:
        return ["-"] * len(segments)
    if len(active) == 1 and not any(unsure):
        word = STATUS_WORDS[active[0]]
        return [word if on else "-" for on in flags[active[0]]]
    rows = list(zip(*flags))
    text = {row: _status(row) for row in set(rows)}
    return list(map(text.__getitem__, rows))


class Column:
    """A field of the segment (`get`) and how one value reads (`fmt(value, style)`, None
    when the value is text already). `distinct`: format each distinct value once; `escaped`:
    `fmt` escapes the text itself."""
    __slots__ = ("get", "fmt", "right", "help", "distinct", "cells", "escaped")

    def __init__(self, get: Callable, fmt: Optional[Callable], right: bool = False, help: str = "",
                 distinct: bool = True, cells: Optional[Callable] = None, escaped: bool = False):
        self.get, self.fmt, self.right, self.help, self.distinct = get, fmt, right, help, distinct
        self.cells = cells  # (segments, style) -> texts, where a column knows a faster way
        self.escaped = escaped


def _field(name: str):
    return attrgetter(name)


def _plain(value, style) -> str:
    return _opt(value)


COLUMNS: Dict[str, Column] = {
    "ADDRESS": Column(_field("address"), None, help="the segment's address", distinct=False),
    "KIND": Column(_field("kind"), None, help="sysv, posix or mmap"),
    "KEY": Column(_field("key"), lambda v, st: format_key(v) if v is not None else "-", help="SysV key"),
    "NAME": Column(attrgetter("kind", "key", "name"), lambda v, st: _name(v),
                   help="SysV key, POSIX name, mmap path or backing"),
    "ID": Column(_field("id"), _plain, True, "shmid (sysv) or inode", distinct=False),
    "OWNER": Column(_field("uid"), lambda v, st: st.user(v), help="owner"),
    "GROUP": Column(_field("gid"), _plain, True, "owner's group id"),
    "UID": Column(_field("uid"), _plain, True, "owner's user id"),
    "GID": Column(_field("gid"), _plain, True, "owner's group id"),
    "CUID": Column(_field("cuid"), _plain, True, "creator's user id"),
    "CGID": Column(_field("cgid"), _plain, True, "creator's group id"),
    "CUSER": Column(_field("cuid"), lambda v, st: st.user(v), help="creator"),
    "PERMS": Column(_field("mode"), lambda v, st: format_mode(v), help="permissions, octal"),
    "MODE": Column(_field("mode"), lambda v, st: mode_string(v), help="permissions, rwx"),
    "SIZE": Column(_field("size"), lambda v, st: st.size(v), True, "size"),
    "RSS": Column(_field("rss"), lambda v, st: st.size(v), True, "resident memory"),
    "SWAP": Column(_field("swap"), lambda v, st: st.size(v), True, "swapped out"),
    "NATTCH": Column(_field("nattch"), _plain, True, "attached processes"),
    "CPID": Column(_field("cpid"), _plain, True, "creator pid"),
    "LPID": Column(_field("lpid"), _plain, True, "pid of the last attach/detach"),
    "ATIME": Column(_field("atime"), lambda v, st: _time(v), help="last attach (sysv) or access"),
    "DTIME": Column(_field("dtime"), lambda v, st: _time(v), help="last detach (sysv)"),
    "CTIME": Column(_field("ctime"), lambda v, st: _time(v), help="last change"),
    "MTIME": Column(_field("mtime"), lambda v, st: _time(v), help="last modification (posix, mmap)"),
    "STATUS": Column(attrgetter(*STATUS_WORDS),
                     lambda v, st: _status(v),
                     help="dest, locked, hugetlb, orphan (orphan? where some processes were hidden), semaphore",
                     cells=_status_cells),
    "ORPHAN": Column(_field("orphan"), lambda v, st: v or "-", help="why the segment is an orphan"),
    "BACKING": Column(attrgetter("backing", "kind"), lambda v, st: v[0] or v[1],
                      help="mmap: anonymous, memfd, tmpfs, hugetlbfs, file"),
    "PROCESSES": Column(_field("attachments"), lambda v, st: _processes(v),
                        help="attached processes, pid:comm", distinct=False, escaped=True),
}

DEFAULT_COLUMNS = {
    "sysv": ["ADDRESS", "KEY", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CPID", "LPID", "CTIME", "STATUS"],
    "posix": ["ADDRESS", "NAME", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CTIME", "STATUS"],
    "mmap": ["ADDRESS", "NAME", "ID", "OWNER", "PERMS", "BACKING", "SIZE", "RSS", "NATTCH", "CTIME", "STATUS"],
    "all": ["ADDRESS", "KIND", "NAME", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CPID", "LPID", "CTIME",
            "STATUS"],
}


def default_columns(kinds: Sequence[str]) -> List[str]:
    return list(DEFAULT_COLUMNS[kinds[0] if len(kinds) == 1 else "all"])


def _escape(cell: str) -> str:
    # like lsipc --raw: a cell never holds white space or a control character, so awk's
    # fields stay fields and a line stays a segment
    return printable(cell, space=True)


def cell_text(column: str, segment: Segment, style: Style) -> str:
    col = COLUMNS[column]
    value = col.get(segment)
    return value if col.fmt is None else col.fmt(value, style)


def _escaped(texts: List[str]) -> List[str]:
    if needs_escape("".join(texts), space=True):  # C-level scans of the whole column
        return [_escape(t) for t in texts]
    return texts


def _pad(texts: List[str], align: Optional[str]) -> List[str]:
    if not align:
        return texts
    width = max(map(len, texts), default=0)
    return list(map(str.rjust if align == ">" else str.ljust, texts, repeat(width, len(texts))))


def column_cells(column: str, segments: Sequence[Segment], style: Style, heading: bool = False,
                 align: Optional[str] = None) -> List[str]:
    """One column's cells, escaped, the heading first if asked, padded to one width when
    `align` is '<' or '>'. The work stays in C-level passes: values come by attrgetter,
    and a column of few distinct values formats (and pads) each of them once."""
    col = COLUMNS[column]
    head = [column] if heading else []
    if col.cells is not None:
        return _pad(head + _escaped(col.cells(segments, style)), align)
    values = list(map(col.get, segments))
    distinct = set(values) if col.distinct else None
    if col.fmt is not None and distinct is not None and len(distinct) * 4 <= len(values):
        text = {v: _escape(col.fmt(v, style)) for v in distinct}
        if align:
            padded = _pad([*head, *text.values()], align)
            head, text = padded[:len(head)], dict(zip(text, padded[len(head):]))
        return head + list(map(text.__getitem__, values))
    if col.fmt is _plain and None not in (values if distinct is None else distinct):
        return _pad(head + list(map(str, values)), align)  # digits: nothing to escape
    texts = values if col.fmt is None else [col.fmt(v, style) for v in values]
    return _pad(head + (texts if col.escaped else _escaped(texts)), align)


def cells(segments: Sequence[Segment], columns: Sequence[str], style: Style) -> List[List[str]]:
    return [column_cells(name, segments, style) for name in columns]


def plain_table(segments: Sequence[Segment], columns: Sequence[str], style: Style,
                headings: bool = True, raw: bool = False) -> str:
    if not columns or not (segments or headings):
        return ""
    last = len(columns) - 1
    table = []
    for i, name in enumerate(columns):
        right = COLUMNS[name].right
        align = None if raw or (i == last and not right) else (">" if right else "<")
        table.append(column_cells(name, segments, style, headings, align))
    return "\n".join(map(" ".join, zip(*table))) + "\n"


def rich_table(segments: Sequence[Segment], columns: Sequence[str], style: Style, headings: bool = True,
               title: Optional[str] = None):
    from rich import box
    from rich.table import Table
    from rich.text import Text
    table = Table(box=box.SIMPLE_HEAD, show_header=headings, header_style="bold", title=title, pad_edge=False)
    for name in columns:
        table.add_column(name, justify="right" if COLUMNS[name].right else "left", overflow="fold")
    for row in zip(*cells(segments, columns, style)) if segments else ():
        # Text, not a str: rich would read "[bold]" in a name as markup
        table.add_row(*(Text.from_markup(_colour(name, text)) if name == "STATUS" else Text(text)
                        for name, text in zip(columns, row)))
    return table


_STATUS_COLOURS = {"orphan": "yellow", "orphan?": "yellow", "dest": "red", "locked": "cyan", "hugetlb": "magenta"}


def _colour(column: str, text: str) -> str:
    if column != "STATUS" or text == "-":
        return text
    return ",".join(f"[{_STATUS_COLOURS.get(w, 'default')}]{w}[/]" for w in text.split(","))


# --- JSON: stable field names, numbers as numbers, ISO 8601 times, sizes in bytes ---

def _text(value: Optional[str]) -> Optional[str]:
    return value if value is None else printable(value)


def attachment_dict(a: Attachment) -> dict:
    data = {"pid": a.pid, "comm": printable(a.comm), "uid": a.uid, "user": _text(a.user),
            "start": f"0x{a.start:x}", "end": f"0x{a.end:x}", "length": a.length, "perms": a.perms,
            "offset": a.offset}
    if a.command is not None:
        data["command"] = printable(a.command)
    return data


def segment_dict(s: Segment, style: Style, processes: bool = True) -> dict:
    data = {
        "address": printable(s.address), "kind": s.kind, "id": s.id,
        "key": s.key, "name": _text(s.name) if s.kind != "sysv" else None,
        "owner": printable(style.user(s.uid)) if s.uid is not None else None,
        "uid": s.uid, "gid": s.gid, "cuid": s.cuid, "cgid": s.cgid,
        "mode": s.mode, "perms": mode_string(s.mode),
        "size": s.size, "rss": s.rss, "swap": s.swap, "nattch": s.nattch,
        "cpid": s.cpid, "lpid": s.lpid,
        "atime": format_time(s.atime, True), "dtime": format_time(s.dtime, True),
        "ctime": format_time(s.ctime, True), "mtime": format_time(s.mtime, True),
        "status": s.status, "orphan": s.orphan, "orphan_certain": bool(s.orphan) and not s.orphan_unsure,
        "backing": s.backing,
        "device": f"{os.major(s.device)}:{os.minor(s.device)}" if s.device is not None else None,
    }
    if processes and s.attachments is not None:
        data["processes"] = [attachment_dict(a) for a in s.attachments]
    return data


def to_json(data) -> str:
    import json
    return json.dumps(data, indent=2) + "\n"


def inventory_json(inv: Inventory, style: Style, processes: bool, summary: Optional[dict] = None) -> str:
    data = {"segments": [segment_dict(s, style, processes) for s in inv.segments],
            "hidden_processes": inv.hidden_processes, "not_segments": [printable(n) for n in inv.skipped]}
    if summary is not None:
        data["summary"] = summary
    return to_json(data)


# --- summary (-u) ---

SHMEM_BACKINGS = (None, "anonymous", "memfd", "tmpfs")  # whose pages /proc/meminfo counts as Shmem


def summarize(inv: Inventory, kinds: Sequence[str]) -> dict:
    per_kind = {}
    for kind in kinds:
        segs = [s for s in inv.segments if s.kind == kind]
        per_kind[kind] = {"count": len(segs), "size": sum(s.size for s in segs),
                          "rss": sum(s.rss or 0 for s in segs), "swap": sum(s.swap or 0 for s in segs)}
    explained = sum(s.rss or 0 for s in inv.segments if not s.hugetlb and s.backing in SHMEM_BACKINGS)
    shmem = inv.meminfo.get("Shmem")
    return {"kinds": per_kind, "shmem": shmem, "explained": explained,
            "hugetlb": inv.meminfo.get("Hugetlb"), "shmem_huge_pages": inv.meminfo.get("ShmemHugePages")}


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
    if summary.get("hugetlb"):
        lines.append(f"Hugetlb (not in Shmem): {style.size(summary['hugetlb'])}")
    return "\n".join(lines) + "\n"


# --- one segment in detail (stat) ---

def detail_fields(s: Segment, style: Style) -> List[tuple]:
    fields = [("address", s.address), ("kind", s.kind)]
    if s.kind == "sysv":
        fields += [("key", format_key(s.key) if s.key is not None else "-"), ("shmid", str(s.id))]
    else:
        fields += [("name", s.name or "-"), ("inode", _opt(s.id))]
    if s.backing:
        fields.append(("backing", s.backing))
    fields += [("owner", f"{style.user(s.uid)} (uid {_opt(s.uid)}, gid {_opt(s.gid)})")]
    if s.cuid is not None:
        fields.append(("creator", f"{style.user(s.cuid)} (uid {s.cuid}, gid {_opt(s.cgid)})"))
    fields += [("perms", f"{format_mode(s.mode)} ({mode_string(s.mode)})"), ("size", style.size(s.size))]
    rss_label = "allocated" if s.kind == "posix" else "rss"
    fields.append((rss_label, style.size(s.rss)))
    if s.swap is not None:
        fields.append(("swap", style.size(s.swap)))
    fields.append(("nattch", _opt(s.nattch)))
    if s.kind == "sysv":
        fields += [("cpid", _opt(s.cpid)), ("lpid", _opt(s.lpid)), ("atime", _time(s.atime)),
                   ("dtime", _time(s.dtime))]
    else:
        fields += [("atime", _time(s.atime)), ("mtime", _time(s.mtime))]
    fields += [("ctime", _time(s.ctime)), ("status", ",".join(s.status) or "-")]
    if s.orphan:
        fields.append(("orphan", s.orphan))
    return fields


ATTACH_HEADERS = ("PID", "USER", "RANGE", "PERMS", "OFFSET", "COMMAND")


def attachment_rows(s: Segment) -> List[tuple]:
    return [(str(a.pid), a.user or _opt(a.uid), f"{a.start:x}-{a.end:x}", a.perms, f"0x{a.offset:x}",
             a.command or a.comm) for a in s.attachments or ()]


def _printable_fields(s: Segment, style: Style) -> List[tuple]:
    return [(k, printable(v)) for k, v in detail_fields(s, style)]


def _printable_rows(s: Segment) -> List[tuple]:
    return [tuple(map(printable, row)) for row in attachment_rows(s)]


def detail_text(s: Segment, style: Style) -> str:
    fields = _printable_fields(s, style)
    width = max(len(k) for k, _ in fields)
    lines = [f"{k + ':':<{width + 1}} {v}" for k, v in fields]
    rows = _printable_rows(s)
    if rows:
        lines.append("processes:")
        table = [ATTACH_HEADERS] + rows
        widths = [max(len(r[i]) for r in table) for i in range(len(ATTACH_HEADERS) - 1)]
        lines += ["  " + " ".join(f"{c:<{w}}" for c, w in zip(r, widths)) + " " + r[-1] for r in table]
    return "\n".join(lines) + "\n"


def rich_detail(s: Segment, style: Style):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text
    fields = Table(box=None, show_header=False, pad_edge=False)
    fields.add_column(style="bold")
    fields.add_column()
    for k, v in _printable_fields(s, style):
        fields.add_row(k, Text.from_markup(_colour("STATUS", v)) if k == "status" else Text(v))
    rows = _printable_rows(s)
    if not rows:
        return fields
    procs = Table(*ATTACH_HEADERS, box=box.SIMPLE_HEAD, header_style="bold", title="attached processes")
    for row in rows:
        procs.add_row(*map(Text, row))
    return Group(fields, procs)
