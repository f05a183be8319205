r"""The Prometheus text exposition format (version 0.0.4, what node_exporter's textfile
collector and every scraper read) from metrics.Family objects. Pure: text in, text out.

A label value is written in shmctl's printable form first (address.printable: control
characters, a backslash and undecodable bytes as `\xHH`), then escaped as the format asks
(`\` as `\\`, `"` as `\"`, a newline as `\n`): a name in /dev/shm, whatever bytes it holds,
can neither end a line nor forge a sample, and a parser gives back the printable text that
every command accepts."""
from __future__ import annotations

import math
from typing import Dict, Iterable

from ..address import printable

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_LABEL_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"', "\n": "\\n"})
_HELP_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n"})


def label_value(text: str) -> str:
    """A label value as it goes between the quotes."""
    return printable(text).translate(_LABEL_ESCAPES)


def help_text(text: str) -> str:
    return text.translate(_HELP_ESCAPES)


def number(value) -> str:
    """Integers exactly (a 2^64 shmmax stays one); floats as Go's ParseFloat reads them."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def exposition(families: Iterable) -> str:
    """# HELP and # TYPE once per family, then its samples, one a line."""
    lines = []
    escaped: Dict[str, str] = {}  # label values repeat (kinds, owners, namespaces): escape each once
    for family in families:
        lines.append(f"# HELP {family.name} {help_text(family.help)}")
        lines.append(f"# TYPE {family.name} {family.type}")
        for sample in family.samples:
            labels = ""
            if sample.labels:
                pairs = []
                for name, value in sample.labels:
                    text = escaped.get(value)
                    if text is None:
                        text = escaped[value] = label_value(value)
                    pairs.append(f'{name}="{text}"')
                labels = "{" + ",".join(pairs) + "}"
            lines.append(f"{family.name}{labels} {number(sample.value)}")
    return "\n".join(lines) + "\n"
