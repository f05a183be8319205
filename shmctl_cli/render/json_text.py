"""Segments as JSON: stable field names (the column names in lower case), numbers as numbers,
ISO 8601 times, sizes in bytes, every text from the system in its printable form."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..address import printable
from ..fields import COLUMNS, JSON_FIELDS, Field, Style
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


def _json_items(field: Field, segments: Sequence[Segment], style: Style) -> List[str]:
    """One field's `"key": value` lines, column-wise; "" where a row leaves the key out
    (processes not scanned). A field of few distinct values encodes each once."""
    values = _json_column(field, segments, style)
    head = f'{_ITEM_INDENT}"{field.key}": '
    optional = field.key == "processes"
    try:
        distinct = set(values)
    except TypeError:  # lists: processes
        distinct = None
    if distinct is not None and len(distinct) * 4 <= len(values):
        item = {v: "" if optional and v is None else head + _json_value(v, _ITEM_INDENT) for v in distinct}
        return list(map(item.__getitem__, values))
    return ["" if optional and v is None else head + _json_value(v, _ITEM_INDENT) for v in values]


def segments_json_text(segments: Sequence[Segment], style: Style, processes: bool,
                       columns: Optional[Sequence[str]] = None) -> str:
    """The "segments" array, text for text what json.dumps(segment_dicts(...), indent=2) gives
    at depth one, made a column at a time: json's own encoder walks 32000 x 30 values in Python."""
    if not segments:
        return "[]"
    fields = json_fields(columns, processes)
    if not fields:
        return "[\n" + ",\n".join(["    {}"] * len(segments)) + "\n  ]"
    rows = zip(*(_json_items(f, segments, style) for f in fields))
    join = ",\n".join
    objects = [join(filter(None, row)) for row in rows]
    body = ",\n".join([f"    {{\n{o}\n    }}" if o else "    {}" for o in objects])
    return "[\n" + body + "\n  ]"


def inventory_json(inv: Inventory, style: Style, processes: bool, summary: Optional[dict] = None,
                   columns: Optional[Sequence[str]] = None) -> str:
    data = {"segments": [], "hidden_processes": inv.hidden_processes,
            "not_segments": [printable(n) for n in inv.skipped]}
    if inv.namespaces:
        data["namespaces"] = [namespace_dict(n) for n in inv.namespaces]
    if summary is not None:
        data["summary"] = summary
    text = to_json(data)
    head = '{\n  "segments": '
    return head + segments_json_text(inv.segments, style, processes, columns) + text[len(head) + 2:]


def namespace_dict(n) -> dict:
    return {"namespace": n.label, "type": n.type, "inode": n.inode, "home": n.home, "pid": n.pid,
            "command": printable(n.command), "container": _maybe_printable(n.container), "kinds": n.kinds}


def _maybe_printable(text: Optional[str]) -> Optional[str]:
    return None if text is None else printable(text)
