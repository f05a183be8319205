"""Segments as JSON: stable field names (the column names in lower case), numbers as numbers,
ISO 8601 times, sizes in bytes, every text from the system in its printable form."""
from __future__ import annotations

from operator import attrgetter
from typing import Iterator, List, Optional, Sequence

from ..address import needs_escape, printable
from ..fields import COLUMNS, JSON_FIELDS, Field, Style, _text
from ..model import Inventory, Segment


def _json_column(field: Field, segments: Sequence[Segment], style: Style) -> list:
    """One field's JSON values, column-wise: a field of few distinct values converts each once."""
    values = list(map(field.value, segments))
    convert = field.json
    if convert is None:
        return values
    if field.distinct:
        distinct = set(values)
        if len(distinct) * 4 <= len(values):
            text = {v: convert(v, style) for v in distinct}
            return list(map(text.__getitem__, values))
    return [convert(v, style) for v in values]


def json_fields(columns: Optional[Sequence[str]] = None, processes: bool = True) -> List[Field]:
    """The JSON fields: every one without `columns`; with them (-o, a preset) each chosen
    column's key in their order, each followed by its JSON-only companions (key_hex after KEY,
    nattch_exact after NATTCH, hugetlb after STATUS, orphan_certain after ORPHAN)."""
    if columns is None:
        fields = JSON_FIELDS
    else:
        fields = []
        for name in columns:
            if COLUMNS[name].key:
                fields.append(COLUMNS[name])
            fields += [f for f in JSON_FIELDS if f.name is None and f.json_after == name]
    return [f for f in fields if processes or f.key != "processes"]


def segment_dicts(segments: Sequence[Segment], style: Style, processes: bool = True,
                  columns: Optional[Sequence[str]] = None) -> List[dict]:
    """The JSON objects of `segments`, built a field at a time. "processes" is there only
    when asked and scanned."""
    fields = json_fields(columns, processes)
    keys = [f.key for f in fields]
    rows = [dict(zip(keys, row)) for row in zip(*(_json_column(f, segments, style) for f in fields))]
    if "processes" in keys:
        for row in rows:
            if row["processes"] is None:
                del row["processes"]
    return rows


def segment_dict(s: Segment, style: Style, processes: bool = True) -> dict:
    return segment_dicts([s], style, processes)[0]


def to_json(data) -> str:
    import json
    return json.dumps(data, indent=2) + "\n"


def _json_value(value, indent: str) -> str:
    """One value as json.dumps(..., indent=2) writes it at that depth."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is int:
        return int.__repr__(value)
    if kind is str:
        from json.encoder import encode_basestring_ascii
        return encode_basestring_ascii(value)
    import json
    return json.dumps(value, indent=2).replace("\n", "\n" + indent)


_ITEM_INDENT = " " * 6
CHUNK = 2048  # segments rendered and written at a time: memory stays bounded by this, not the list
_CACHE_MAX = 8192  # distinct values remembered per field across chunks


class _FieldWriter:
    """One field's `"key": value` lines, a chunk of segments at a time. A field of few
    distinct values encodes each once (remembered across chunks); a column of plain ints or
    texts goes through C-level maps; "" where a row leaves the key out (processes not scanned)."""

    def __init__(self, field: Field, style: Style, before: str = "", after: str = ""):
        self.field, self.style = field, style
        self.head = f'{before}{_ITEM_INDENT}"{field.key}": '
        self.after = after  # the row's glue baked into each item: a row is then one "".join
        self.optional = field.key == "processes"
        self.cache: dict = {}
        self.status = field.key == "status" and field.cells is not None

    def items(self, segments: Sequence[Segment]) -> List[str]:
        if self.status:
            return self._status(segments)
        values = self._values(segments)
        try:
            distinct = set(values)
        except TypeError:  # lists: processes
            return [self._item(v) for v in values]
        if len(distinct) * 4 <= len(values) or len(distinct) <= 2:
            return self._cached(values, distinct)
        return self._direct(values, distinct)

    def repeats(self, segments: Sequence[Segment]) -> bool:
        """Whether the field takes few distinct values here: it can join a _Run."""
        if self.status or self.optional:
            return False
        try:
            distinct = len(set(map(self.field.value, segments)))
        except TypeError:  # lists
            return False
        return distinct * 4 <= len(segments) or distinct <= 2

    def encode(self, value) -> str:
        """One value's `"key": value` item, as items() makes it."""
        convert = self.field.json
        return self._item(value if convert is None else convert(value, self.style))

    def _values(self, segments: Sequence[Segment]) -> list:
        field = self.field
        values = list(map(field.value, segments))
        convert = field.json
        if convert is None:
            return values
        if convert is _text and None not in values and not needs_escape("".join(values)):
            return values  # every text printable already: one C-level scan of the column
        if field.distinct:
            distinct = set(values)
            if len(distinct) * 4 <= len(values):
                style = self.style
                text = {v: convert(v, style) for v in distinct}
                return list(map(text.__getitem__, values))
        return [convert(v, self.style) for v in values]

    def _item(self, value) -> str:
        if self.optional and value is None:
            return ""
        return self.head + _json_value(value, _ITEM_INDENT) + self.after

    def _cached(self, values: list, distinct: set) -> List[str]:
        cache = self.cache
        if len(cache) > _CACHE_MAX:
            cache.clear()
        for v in distinct:
            if v not in cache:
                cache[v] = self._item(v)
        return list(map(cache.__getitem__, values))

    def _direct(self, values: list, distinct: set) -> List[str]:
        kinds = set(map(type, distinct))
        head, after = self.head, self.after
        if kinds == {int}:
            return [head + t + after for t in map(int.__repr__, values)]
        if kinds == {str}:
            from json.encoder import encode_basestring_ascii
            return [head + t + after for t in map(encode_basestring_ascii, values)]
        return [self._item(v) for v in values]

    def _status(self, segments: Sequence[Segment]) -> List[str]:
        """STATUS from the column's own C-level cells ("orphan?,hugetlb" or "-"): the same
        words as Segment.status, without building a list per segment."""
        cells = self.field.cells(segments, self.style)
        cache = self.cache
        for text in set(cells):
            if text not in cache:
                cache[text] = self._item([] if text == "-" else text.split(","))
        return list(map(cache.__getitem__, cells))


class _Run:
    """Consecutive fields of few distinct values, written as one piece of each row: one
    C-level attrgetter call a segment gives the run's values, and each distinct combination
    is encoded once (a bulk of segments shares most fields: 32000 rows then cost a few
    lookups each, not one per field)."""

    def __init__(self, writers: List[_FieldWriter]):
        self.writers = writers
        names: List[str] = []
        self.parts = []  # per writer: its value's place in the run's tuple (an index, or a slice)
        for w in writers:
            attr = w.field.attr
            if isinstance(attr, str):
                self.parts.append(len(names))
                names.append(attr)
            else:
                self.parts.append(slice(len(names), len(names) + len(attr)))
                names.extend(attr)
        self.get = attrgetter(*names) if len(names) > 1 else lambda s, one=attrgetter(names[0]): (one(s),)
        self.cache = _Encoded(self._encode)

    def _encode(self, key: tuple) -> str:
        return "".join(w.encode(key[part]) for w, part in zip(self.writers, self.parts))

    def items(self, segments: Sequence[Segment]) -> List[str]:
        if len(self.cache) > _CACHE_MAX:
            self.cache.clear()
        return list(map(self.cache.__getitem__, map(self.get, segments)))


class _Encoded(dict):
    """key -> text, each encoded on its first lookup (one hash a lookup, in C)."""

    def __init__(self, encode):
        super().__init__()
        self.encode = encode

    def __missing__(self, key) -> str:
        text = self[key] = self.encode(key)
        return text


def _runs(writers: List[_FieldWriter], sample: Sequence[Segment]) -> list:
    """The writers with each stretch of repeating fields (judged on a sample) merged into one
    _Run; the order, and so the text, stays the same."""
    grouped: list = []
    stretch: List[_FieldWriter] = []
    for w in writers + [None]:
        if w is not None and w.repeats(sample):
            stretch.append(w)
            continue
        if stretch:
            grouped.append(_Run(stretch) if len(stretch) > 1 else stretch[0])
            stretch = []
        if w is not None:
            grouped.append(w)
    return grouped


def segments_json_chunks(segments: Sequence[Segment], style: Style, processes: bool,
                         columns: Optional[Sequence[str]] = None) -> Iterator[str]:
    """The "segments" array, text for text what json.dumps(segment_dicts(...), indent=2) gives
    at depth one, made a column at a time and CHUNK segments at a time: json's own encoder
    walks 32000 x 30 values in Python, and a whole document would hold them all at once."""
    if not segments:
        yield "[]"
        return
    fields = json_fields(columns, processes)
    optional = any(f.key == "processes" for f in fields)
    if optional or not fields:  # rows differ in their keys: each joined on its own
        writers = [_FieldWriter(f, style) for f in fields]
        rows = lambda items: [_row_text(row) for row in items]  # noqa: E731
    else:  # every row has every key: the glue is in the items, a row is one "".join
        last = len(fields) - 1
        writers = _runs([_FieldWriter(f, style, "    {\n" if i == 0 else "", "\n    }" if i == last else ",\n")
                         for i, f in enumerate(fields)], segments[:CHUNK])
        rows = lambda items: map("".join, items)  # noqa: E731
    yield "[\n"
    for start in range(0, len(segments), CHUNK):
        chunk = segments[start:start + CHUNK]
        items = zip(*(w.items(chunk) for w in writers)) if writers else [()] * len(chunk)
        text = ",\n".join(rows(items))
        yield text if start == 0 else ",\n" + text
    yield "\n  ]"


def _row_text(items) -> str:
    shown = ",\n".join(filter(None, items))
    return f"    {{\n{shown}\n    }}" if shown else "    {}"


def inventory_json_chunks(inv: Inventory, style: Style, processes: bool, summary: Optional[dict] = None,
                          columns: Optional[Sequence[str]] = None) -> Iterator[str]:
    """`list --json` as pieces to write as they come: the segments a chunk at a time, then
    the rest of the document as json.dumps(indent=2) writes it."""
    data = {"segments": [], "hidden_processes": inv.hidden_processes,
            "not_segments": [printable(n) for n in inv.skipped]}
    if inv.namespaces:
        data["namespaces"] = [namespace_dict(n) for n in inv.namespaces]
    if summary is not None:
        data["summary"] = summary
    text = to_json(data)
    head = '{\n  "segments": '
    yield head
    yield from segments_json_chunks(inv.segments, style, processes, columns)
    yield text[len(head) + 2:]


def inventory_json(inv: Inventory, style: Style, processes: bool, summary: Optional[dict] = None,
                   columns: Optional[Sequence[str]] = None) -> str:
    return "".join(inventory_json_chunks(inv, style, processes, summary, columns))


def namespace_dict(n) -> dict:
    return {"namespace": n.inode, "type": n.type, "home": n.home, "pid": n.pid,
            "command": printable(n.command), "container": _maybe_printable(n.container), "kinds": n.kinds}


def _maybe_printable(text: Optional[str]) -> Optional[str]:
    return None if text is None else printable(text)
