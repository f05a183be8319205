"""Every field of a segment, defined once: its column name, JSON key, the kinds that have it,
how one value reads (table cell, JSON value, `stat` line), alignment, sort and help. The
printers in render/ (plain, raw, rich, JSON, stat) and the options `-o`, `--sort` and
`--list-columns` all read this one table; adding a field is one `Field(...)` line in FIELDS.

Plain data and pure functions: no kernel, no rich, no json (start-up stays light)."""
from __future__ import annotations

import os
from operator import attrgetter
from typing import Callable, Dict, List, Optional, Sequence, Union

from . import KINDS, REGISTRY
from .address import printable
from .model import STATUS_WORDS, Attachment
from .units import format_key, format_mode, format_size, format_time, mode_string



class Style:
    """How values read: exact sizes (--bytes, and the default on a pipe) or binary units,
    numeric ids, the form of times (--time-format short|full|iso: units.format_time), and
    whether a terminal table may cut or drop columns (`notruncate`: -W), the terminal's
    `width` the tables fit into (None: not a terminal), and the columns the user named
    (`pinned`: cut only if they may be, never dropped; render/layout.py)."""

    def __init__(self, exact_sizes: bool = False, numeric_ids: bool = False,
                 user_name: Callable[[Optional[int]], Optional[str]] = str, time_format: str = "iso",
                 notruncate: bool = False, width: Optional[int] = None, pinned: Sequence[str] = ()):
        self.exact_sizes, self.numeric_ids, self.user_name = exact_sizes, numeric_ids, user_name
        self.time_format, self.notruncate, self.width, self.pinned = time_format, notruncate, width, frozenset(pinned)
        self.time_given = False  # --time-format was given: `stat` keeps it rather than its own default

    def with_times(self, time_format: str) -> "Style":
        """This style with times in `time_format`, unless the user chose a form."""
        if self.time_given or time_format == self.time_format:
            return self
        import copy
        other = copy.copy(self)
        other.time_format = time_format
        return other

    def size(self, n: Optional[int]) -> str:
        return format_size(n, self.exact_sizes)

    def time(self, epoch: Optional[float]) -> str:
        return format_time(epoch, form=self.time_format) or "-"

    def user(self, uid: Optional[int]) -> str:
        if uid is None:
            return "-"
        return str(uid) if self.numeric_ids else (self.user_name(uid) or str(uid))

    def with_names(self) -> "Style":
        """This style with user and group names whatever --numeric-ids says: --numeric-ids is
        ls -n's habit for the table forms (terminal, plain, raw) only; in JSON and --export a
        name field always holds the name (the uid as text where it has none), and the ids are
        in UID/GID/CUID/CGID (`uid`, `gid`, ...)."""
        if not self.numeric_ids:
            return self
        import copy
        other = copy.copy(self)
        other.numeric_ids = False
        return other


class Field:
    """One field. `attr`: the segment attribute(s) that hold it (its JSON value, and what
    --sort orders by when `sort`); `get`: what a table cell reads, `attr` unless given;
    `fmt(value, style)`: the cell text, None when the value is text already; `json(value,
    style)`: the JSON value, the value itself when None. `name` None: JSON only; `key` None:
    no JSON. `label`: the `stat` line (None: not in stat), `labels` per kind where it differs,
    `detail(segment, style)` where the line says more than the cell, `omit_empty`: no line
    when `attr` is None or "". `kinds`: the kinds that have it (stat shows it only for
    those). `json_after`/`stat_after`: a field whose place in JSON/stat is after the named
    column rather than in table order. `distinct`: format each distinct value once (hashable
    values); `cells(segments, style)`: a faster whole-column path; `escaped`: `fmt` escapes
    its text itself; `colour(text)`: rich markup for the text. `priority`: on a terminal too
    narrow for every column, the highest numbers go first (0: never dropped, never cut);
    `squeeze`: the cell may be cut short with `…` before columns are dropped."""
    __slots__ = ("name", "key", "attr", "get", "fmt", "json", "right", "sort", "kinds", "help", "label",
                 "labels", "detail", "omit_empty", "json_after", "stat_after", "distinct", "cells", "escaped",
                 "colour", "value", "priority", "squeeze")

    def __init__(self, name: Optional[str], key: Optional[str], attr: Union[str, tuple],
                 fmt: Optional[Callable] = None, *,
                 get: Optional[Callable] = None, json: Optional[Callable] = None, right: bool = False,
                 sort: bool = False, kinds: Sequence[str] = KINDS, help: str = "", label: Optional[str] = None,
                 labels: Optional[Dict[str, str]] = None, detail: Optional[Callable] = None,
                 omit_empty: bool = False, json_after: Optional[str] = None, stat_after: Optional[str] = None,
                 distinct: bool = True, cells: Optional[Callable] = None, escaped: bool = False,
                 colour: Optional[Callable[[str], str]] = None, priority: int = 9, squeeze: bool = False):
        self.name, self.key, self.attr, self.fmt, self.json = name, key, attr, fmt, json
        self.value = attrgetter(attr) if isinstance(attr, str) else attrgetter(*attr)
        self.get = get or self.value
        self.right, self.sort, self.kinds, self.help = right, sort, tuple(kinds), help
        self.label, self.labels, self.detail, self.omit_empty = label, labels or {}, detail, omit_empty
        self.json_after, self.stat_after = json_after, stat_after
        self.distinct, self.cells, self.escaped, self.colour = distinct, cells, escaped, colour
        self.priority, self.squeeze = priority, squeeze

    def text(self, segment, style: Style) -> str:
        """One cell's text, not yet escaped."""
        value = self.get(segment)
        return value if self.fmt is None else self.fmt(value, style)

    def sort_key(self, style: Style) -> Callable:
        """Typed fields sort as numbers (None last), the others by their text."""
        if self.sort:
            value = self.value
            return lambda s: (value(s) is None, value(s) or 0)
        return lambda s: self.text(s, style)


# --- how values read ---

def _opt(value, style=None) -> str:
    return "-" if value is None else str(value)


def _time(epoch, style=None) -> str:
    return format_time(epoch, form=style.time_format if style is not None else "iso") or "-"


def _iso(epoch, style=None) -> Optional[str]:
    """JSON's: ISO 8601 with the UTC offset, whatever --time-format says."""
    return format_time(epoch, form="iso")


def _size(n, style: Style) -> str:
    return style.size(n)


def _user(uid, style: Style) -> str:
    return style.user(uid)


def _group(gid, style: Style) -> str:
    """The group's name (the gid where it has none, or with --numeric-ids): the style may
    carry a cached `group_name` lookup as it carries `user_name`."""
    if gid is None:
        return "-"
    names = None if style.numeric_ids else getattr(style, "group_name", None)
    return (names(gid) if names is not None else None) or str(gid)


def _group_json(gid, style: Style) -> Optional[str]:
    return None if gid is None else printable(_group(gid, style.with_names()))


def _user_json(uid, style: Style) -> Optional[str]:
    """The user's name (the uid as text where it has none), whatever --numeric-ids says."""
    return None if uid is None else printable(style.with_names().user(uid))


def _key(key, style=None) -> str:
    return format_key(key) if key is not None else "-"


def _name(value, style) -> str:
    kind, key, name = value
    if kind == "sysv":
        return _key(key)
    return name or "-"


def _name_json(value, style) -> Optional[str]:
    """NAME in JSON is the cell's text: a SysV key as 0x hex text, a POSIX name, an mmap path
    or anonymous/memfd:NAME; null only where the cell is `-`."""
    kind, key, name = value
    if kind == "sysv":
        return None if key is None else format_key(key)
    return _text(name)


def _backing(value, style=None) -> Optional[str]:
    """What holds the memory: mmap's anonymous, memfd, tmpfs, hugetlbfs or file; the kind
    itself (sysv, posix) for the others: the same word in every form."""
    backing, kind = value
    return backing or kind


def _namespace(value, style=None) -> str:
    kind, inode = value
    return "-" if inode is None else f"{REGISTRY[kind]['namespace']}:{inode}"


def _text(value, style=None) -> Optional[str]:
    return value if value is None else printable(value)


_COMMA = "\\x2c"


def _processes(attachments, style) -> str:
    """`pid:comm,...`, escaped here: a comm holding a comma would forge another process."""
    if attachments is None:
        return "-"
    seen, parts = set(), []
    for a in attachments:
        if a.pid not in seen:
            seen.add(a.pid)
            parts.append(f"{a.pid}:{printable(a.comm, space=True).replace(',', _COMMA)}" + ("?" if a.unsure else ""))
    return ",".join(parts) or "-"


def _nattch(value, style=None) -> str:
    """`N`; `N+` where processes were hidden (POSIX and mmap users are counted from the maps we
    could read: at least N); `?` for none seen then, never a 0 that reads as "unused"."""
    n, hidden = value
    if not hidden or n is None:
        return _opt(n)
    return f"{n}+" if n else "?"


def _nattch_detail(s, style) -> str:
    hidden = s.nattch_unsure
    text = _opt(s.nattch)
    if hidden and s.nattch is not None:
        what = f"{hidden} process{'es' if hidden != 1 else ''}" if hidden is not True else "some processes"
        text = f"at least {s.nattch} ({what} not visible)"
    if s.deleted:
        pids = list(dict.fromkeys(f"{a.pid} ({a.comm})" for a in s.attachments or ()))
        if pids:
            text += f"; deleted: freed when {'pid' if len(pids) == 1 else 'pids'} {', '.join(pids)} let go"
    return text

def _status_cells(segments, style) -> List[str]:
    """Most segments share a status: look at each flag column once (C-level passes), and
    combine only the flags that some segment has; the same words as Segment.status."""
    flags = [list(map(attrgetter(word), segments)) for word in STATUS_WORDS]
    flags[-1] = list(map(bool, flags[-1]))  # orphan holds its reason
    unsure = list(map(attrgetter("orphan_unsure"), segments))
    if any(unsure):
        flags[-1] = ["?" if u and o else o for o, u in zip(flags[-1], unsure)]
    huge = STATUS_WORDS.index("hugetlb")
    maybe_huge = None in flags[huge]  # unknown: `hugetlb?`
    if maybe_huge:
        flags[huge] = ["?" if h is None else h for h in flags[huge]]
    active = [i for i, column in enumerate(flags) if any(column)]
    if not active:
        return ["-"] * len(segments)
    if len(active) == 1 and not any(unsure) and not maybe_huge:
        word = STATUS_WORDS[active[0]]
        return [word if on else "-" for on in flags[active[0]]]
    rows = list(zip(*flags))
    text = {row: ",".join(w + (on if isinstance(on, str) else "") for w, on in zip(STATUS_WORDS, row) if on) or "-"
            for row in set(rows)}
    return list(map(text.__getitem__, rows))


_STATUS_COLOURS = {"orphan": "yellow", "orphan?": "yellow", "dest": "red", "locked": "cyan", "hugetlb": "magenta",
                   "hugetlb?": "magenta"}


def _status_colour(text: str) -> str:
    if text == "-":
        return text
    return ",".join(f"[{_STATUS_COLOURS.get(w, 'default')}]{w}[/]" for w in text.split(","))


def attachment_dict(a: Attachment) -> dict:
    data = {"pid": a.pid, "comm": printable(a.comm), "uid": a.uid, "user": _text(a.user),
            "start": f"0x{a.start:x}", "end": f"0x{a.end:x}", "length": a.length, "perms": a.perms,
            "offset": a.offset}
    if a.command is not None:
        data["command"] = printable(a.command)
    if a.unsure:  # SysV: maybe a mapping of another IPC namespace's segment of the same shmid
        data["namespace_certain"] = False
    return data


def _attachments_json(attachments, style):
    return None if attachments is None else [attachment_dict(a) for a in attachments]


SYSV, FILES = ("sysv",), ("posix", "mmap")

# The one table. Its order is the order of --list-columns and --output-all; JSON and stat
# follow it too, but for the fields that name a place with json_after/stat_after.
# A column's JSON key is its name in lower case (USE% -> use_percent); the fields without a
# column (name None) are JSON-only companions placed after the column they explain.
FIELDS: List[Field] = [
    Field("ADDRESS", "address", "address", json=_text, distinct=False, label="address",
          help="the segment's address", priority=0),
    Field("KIND", "kind", "kind", label="kind", help="sysv, posix or mmap", priority=4),
    Field("KEY", "key", "key", _key, sort=True, kinds=SYSV, label="key", help="SysV key", priority=5),
    Field(None, "key_hex", "key", json=lambda v, st: None if v is None else format_key(v), kinds=SYSV,
          json_after="KEY"),
    Field("NAME", "name", ("kind", "key", "name"), _name, json=_name_json, kinds=FILES, label="name",
          help="the name processes find it by: SysV key (0x hex, as KEY), POSIX name (/NAME), mmap path, or "
               "anonymous / memfd:NAME; the same text in JSON (null for none)", priority=5, squeeze=True),
    Field("ID", "id", "id", _opt, right=True, sort=True, distinct=False, label="inode", labels={"sysv": "shmid"},
          json_after="KIND", help="shmid (sysv) or inode", priority=6),
    Field("OWNER", "owner", "uid", _user, json=_user_json,
          label="owner", detail=lambda s, st: f"{st.user(s.uid)} (uid {_opt(s.uid)}, gid {_opt(s.gid)})",
          help="owner's user name (the uid where it has no name; the table forms show the uid with "
               "--numeric-ids, JSON and --export never)", priority=4),
    Field("GROUP", "group", "gid", _group, json=_group_json, label="group", omit_empty=True,
          detail=lambda s, st: f"{_group(s.gid, st)} (gid {s.gid})",
          help="owner's group name (the gid where it has no name; as OWNER with --numeric-ids)"),
    Field("UID", "uid", "uid", _opt, right=True, sort=True, help="owner's user id"),
    Field("GID", "gid", "gid", _opt, right=True, sort=True, help="owner's group id"),
    Field("CUID", "cuid", "cuid", _opt, right=True, sort=True, help="creator's user id"),
    Field("CGID", "cgid", "cgid", _opt, right=True, sort=True, help="creator's group id"),
    Field("CUSER", "cuser", "cuid", _user, json=_user_json, label="creator", omit_empty=True,
          detail=lambda s, st: f"{st.user(s.cuid)} (uid {s.cuid}, gid {_opt(s.cgid)})",
          help="creator's user name (as OWNER with --numeric-ids)"),
    Field("CGROUP", "cgroup", "cgid", _group, json=_group_json, help="creator's group name (as OWNER with --numeric-ids)"),
    Field("PERMS", "perms", "mode", lambda v, st: format_mode(v), json=lambda v, st: format_mode(v), label="perms",
          detail=lambda s, st: f"{format_mode(s.mode)} ({mode_string(s.mode)})", help="permissions, octal", priority=7),
    Field("MODE", "mode", "mode", lambda v, st: mode_string(v), json=lambda v, st: mode_string(v),
          help="permissions, rwx"),
    Field("SIZE", "size", "size", _size, right=True, sort=True, label="size", help="size", priority=1),
    Field("RSS", "rss", "rss", _size, right=True, sort=True, label="rss", labels={"posix": "allocated"},
          help="resident memory", priority=3),
    Field("SWAP", "swap", "swap", _size, right=True, sort=True, label="swap", omit_empty=True, help="swapped out", priority=8),
    Field("NATTCH", "nattch", "nattch", _nattch, get=attrgetter("nattch", "nattch_unsure"), right=True, sort=True,
          label="nattch", detail=_nattch_detail,
          help="attached processes (N+: at least N, ?: unknown, where processes are hidden)", priority=2),
    Field(None, "nattch_exact", "nattch_unsure", json=lambda v, st: not v, json_after="NATTCH"),
    Field("CPID", "cpid", "cpid", _opt, right=True, sort=True, kinds=SYSV, label="cpid", help="creator pid", priority=9),
    Field("LPID", "lpid", "lpid", _opt, right=True, sort=True, kinds=SYSV, label="lpid",
          help="pid of the last attach/detach", priority=9),
    Field("ATIME", "atime", "atime", _time, json=_iso, sort=True, label="atime", help="last attach (sysv) or access"),
    Field("DTIME", "dtime", "dtime", _time, json=_iso, sort=True, kinds=SYSV, label="dtime",
          help="last detach (sysv)"),
    Field("CTIME", "ctime", "ctime", _time, json=_iso, sort=True, label="ctime", help="last change", priority=8),
    Field("MTIME", "mtime", "mtime", _time, json=_iso, sort=True, kinds=FILES, label="mtime", stat_after="DTIME",
          help="last modification (posix, mmap)"),
    Field("STATUS", "status", "status", lambda v, st: ",".join(v) or "-", distinct=False, cells=_status_cells,
          colour=_status_colour, label="status",
          help="deleted (unlinked, still held), dest, locked, hugetlb (hugetlb? where unknown), orphan (orphan? where some processes were "
               "hidden), semaphore", priority=3, squeeze=True),
    Field(None, "hugetlb", "hugetlb", json_after="STATUS"),  # true, false, or null: unknown (sysv)
    Field("ORPHAN", "orphan", "orphan", lambda v, st: v or "-", label="orphan", omit_empty=True,
          help="why the segment is an orphan", priority=4, squeeze=True),
    Field(None, "orphan_certain", ("orphan", "orphan_unsure"),
          json=lambda v, st: bool(v[0]) and not v[1], json_after="ORPHAN"),
    Field("BACKING", "backing", ("backing", "kind"), _backing, json=_backing, kinds=("mmap",), label="backing",
          stat_after="ID", help="what holds the memory: mmap's anonymous, memfd, tmpfs, hugetlbfs or file; sysv "
                                "or posix for those kinds; the same word in JSON", priority=7),
    Field(None, "device", "device", json=lambda v, st: None if v is None else f"{os.major(v)}:{os.minor(v)}"),
    Field("NAMESPACE", "namespace", "namespace", _namespace, get=attrgetter("kind", "namespace"), label="namespace",
          omit_empty=True, help="the IPC (sysv) or mount (posix, mmap path) namespace, TYPE:INODE as lsns shows it", priority=5),
    Field("CONTAINER", "container", "container", _opt, json=_text, label="container", omit_empty=True,
          help="the container of the namespace (or of the first process, mmap): RUNTIME:ID from its cgroup", priority=6, squeeze=True),
    Field("PROCESSES", "processes", "attachments", _processes, json=_attachments_json, distinct=False,
          escaped=True, help="attached processes, pid:comm (pid:comm? where the IPC namespace is uncertain)", priority=3, squeeze=True),
]

COLUMNS: Dict[str, Field] = {f.name: f for f in FIELDS if f.name}

# lsipc's column names that mean what a shmctl column means: -o takes them (`-o KEY,USER`),
# the header and the JSON key are shmctl's own name (one name per meaning in every output,
# and `-e` never sets the shell's $USER). Listed by --list-columns after the columns.
ALIASES: Dict[str, str] = {"USER": "OWNER", "ATTACH": "ATIME", "DETACH": "DTIME"}
# lsipc's names with no shmctl column of that meaning: what to use instead
NOT_COLUMNS: Dict[str, str] = {
    "COMMAND": "lsipc's COMMAND, the creator's command line, is not kept; CPID is the creator's pid, "
               "PROCESSES the attached processes",
}


def column_spec(spec: str, example: str) -> tuple:
    """-o COLS or -o +COLS, of any table: (whether it adds to the defaults, the names named,
    upper-case, each once, in order); naming none is a usage error."""
    names = list(dict.fromkeys(c.strip().upper() for c in spec.lstrip("+").split(",") if c.strip()))
    if not names:
        from .errors import UsageError
        raise UsageError(f"invalid -o '{spec}'", "no column named", f"e.g. -o {example}")
    return spec.startswith("+"), names


def column_name(word: str) -> str:
    """The column `word` names in -o (any case, lsipc's aliases too); a usage error else."""
    name = word.strip().upper()
    name = ALIASES.get(name, name)
    if name in COLUMNS:
        return name
    from .errors import UsageError
    if name in NOT_COLUMNS:
        raise UsageError(f"unknown column '{word}'", NOT_COLUMNS[name])
    raise UsageError(f"unknown column '{word}'", "", "columns: " + ",".join(COLUMNS))


def columns_listing() -> List[str]:
    """--list-columns: every column with its meaning, then lsipc's aliases."""
    lines = [f"{name:<10} {column.help}" for name, column in COLUMNS.items()]
    lines += [f"{alias:<10} lsipc's name for {name}" for alias, name in ALIASES.items()]
    return lines


def _placed(fields: List[Field], after: str) -> List[Field]:
    order = [f for f in fields if getattr(f, after) is None]
    for f in fields:
        target = getattr(f, after)
        if target is not None:
            order.insert(next(i for i, g in enumerate(order) if g.name == target) + 1, f)
    return order


JSON_FIELDS: List[Field] = _placed([f for f in FIELDS if f.key], "json_after")
STAT_FIELDS: List[Field] = _placed([f for f in FIELDS if f.label], "stat_after")

# `list -m` (ipcs -m, lsipc -m): these kinds, first, besides any --kind given
IPCS_KINDS = tuple(name for name, entry in REGISTRY.items() if entry["ipcs"])

DEFAULT_COLUMNS = {
    "sysv": ["ADDRESS", "KEY", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CPID", "LPID", "CTIME", "STATUS"],
    "posix": ["ADDRESS", "NAME", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CTIME", "STATUS"],
    "mmap": ["ADDRESS", "NAME", "ID", "OWNER", "PERMS", "BACKING", "SIZE", "RSS", "NATTCH", "CTIME", "STATUS"],
    "all": ["ADDRESS", "KIND", "NAME", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CPID", "LPID", "CTIME",
            "STATUS"],
}


def default_columns(kinds: Sequence[str], everywhere: bool = False) -> List[str]:
    """The columns `list` shows; with --all-namespaces, where each segment lives comes second."""
    own = DEFAULT_COLUMNS.get(kinds[0]) if len(kinds) == 1 else None
    names = list(own or DEFAULT_COLUMNS["all"])  # a new kind needs no list of its own
    if everywhere:
        names[1:1] = ["NAMESPACE", "CONTAINER"]
    return names


def stat_lines(s, style: Style) -> List[tuple]:
    """(label, text) of every field `stat` shows for this segment, in stat order."""
    lines = []
    for f in STAT_FIELDS:
        if s.kind not in f.kinds or (f.omit_empty and f.value(s) in (None, "")):
            continue
        text = f.detail(s, style) if f.detail is not None else f.text(s, style)
        lines.append((f.labels.get(s.kind, f.label), text))
    return lines
