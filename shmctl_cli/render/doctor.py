"""`shmctl doctor` as text and JSON. Pure: a Report in, text out.

The checks write every untrusted piece (names, comms, paths, addresses) through
address.printable already; `_guard` escapes whatever non-printable character might be left,
without touching the escapes already made.

On a terminal (`width` given) each line is wrapped to the width with a hanging indent (a
continuation two columns in from the line it continues). Prose breaks only at spaces, and
never between a number and its unit (`2097152 bytes`); a size, a path or an address holds no
space, so none is ever cut. A fix breaks only between its clauses (after `, ` or `: `, and
before a two-space `  (` remark), never inside a quote: a command to copy stays whole on one
line, longer than the terminal if it must be. On a pipe nothing is wrapped: one line per
finding, evidence or fix, as scripts read it."""
from __future__ import annotations

import re
from typing import List, Optional

from ..address import printable
from . import to_json

COLOURS = {"critical": "\x1b[1;31m", "warning": "\x1b[33m", "info": "\x1b[36m", "ok": "\x1b[32m"}
RESET = "\x1b[0m"
WIDTH = 10  # "CRITICAL" and two spaces


def _guard(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else printable(c) for c in text)


def finding_dict(f) -> dict:
    return {"check": f.check, "severity": f.severity, "summary": _guard(f.summary),
            "evidence": [_guard(e) for e in f.evidence], "fix": _guard(f.fix)}


def report_dict(report) -> dict:
    return {"findings": [finding_dict(f) for f in report.findings],
            "checks": [{"check": name, "severity": severity} for name, severity in report.checks],
            "worst": report.worst}


def report_json(report) -> str:
    return to_json(report_dict(report))


def _label(severity: str, colour: bool) -> str:
    word = severity.upper().ljust(WIDTH)
    return f"{COLOURS[severity]}{word.rstrip()}{RESET}{' ' * (WIDTH - len(severity))}" if colour else word


def report_text(report, verbose: bool = False, colour: bool = False, width: Optional[int] = None) -> str:
    """Findings worst first: `SEVERITY  check: summary`, the evidence indented, then `fix:`;
    with `verbose` the checks that found nothing as `OK` lines; last, the count. `width`:
    a terminal's, to wrap to (see the module's docstring); None: a pipe, nothing wrapped."""
    lines: List[str] = []
    indent = " " * WIDTH
    for f in report.findings:
        lines += _hanging(_label(f.severity, colour), WIDTH, f"{f.check}: {_guard(f.summary)}", width, _words)
        for e in f.evidence:
            lines += _hanging(indent, WIDTH, _guard(e), width, _words)
        if f.fix:
            lines += _hanging(indent + "fix: ", WIDTH + 5, _guard(f.fix), width, _clauses)
    if verbose:
        lines += [f"{_label('ok', colour)}{name}" for name, severity in report.checks if severity == "ok"]
    n = len(report.findings)
    lines.append(f"{len(report.checks)} checks, {n} finding{'' if n == 1 else 's'} (worst: {report.worst})")
    return "\n".join(lines) + "\n"


HANG = 2  # a continuation line starts this much further in than the line it continues
_UNIT = re.compile(r"(bytes?|pages?|[KMGTPE]i?B|B|%)[,.;:)]*$")
_NUMBER = re.compile(r"[0-9][0-9.,]*$")


def _hanging(prefix: str, prefix_width: int, text: str, width: Optional[int], pieces) -> List[str]:
    """`prefix` + `text`, wrapped to `width` at the places `pieces` allows; continuation lines
    indented HANG further than the text's first line."""
    if width is None or prefix_width + len(text) <= width:
        return [prefix + text]
    lines, line, room = [], prefix, width - prefix_width
    fresh = True  # nothing of the text on this line yet
    for piece in pieces(text):
        if not fresh and len(line) - len(prefix) + len(piece.rstrip()) > room:
            lines.append(line.rstrip())
            line = prefix = " " * (prefix_width + HANG)
            room = width - prefix_width - HANG
            piece = piece.lstrip()
        line += piece
        fresh = False
    lines.append(line.rstrip())
    return lines


def _words(text: str) -> List[str]:
    """Prose as the pieces a line may end after: each word with its following space, a
    number kept with its unit, a short parenthesis whole."""
    out: List[str] = []
    for word in re.findall(r"\S+\s*", text):
        if out and (_NUMBER.match(out[-1].rstrip()) and _UNIT.match(word.rstrip())
                    or _open_aside(out[-1]) and len(out[-1]) + len(word.rstrip()) <= ASIDE):
            out[-1] += word
        else:
            out.append(word)
    return out


ASIDE = 16  # a parenthesis this short stays on one line: `(dev 0:25)`, `(uid 1000)`


def _open_aside(piece: str) -> bool:
    return piece.startswith("(") and ")" not in piece


def _clauses(text: str) -> List[str]:
    """A fix as the pieces a line may end after: its clauses, ending in `, `, in `: ` (not
    `key: 1G`) or in the two spaces before a remark; never inside a quoted word ('...',
    "..." or `...` opened at the start of a word)."""
    out, start, quote, i = [], 0, None, 0
    while i < len(text):
        c = text[i]
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"`" and (i == 0 or text[i - 1] in " ="):
            quote = c
        elif text.startswith(", ", i) or (text.startswith(": ", i) and not text[i + 2:i + 3].isdigit()) \
                or text.startswith("  ", i):
            end = i + 1
            while end < len(text) and text[end] == " ":
                end += 1
            out.append(text[start:end])
            start = i = end
            continue
        i += 1
    return out + [text[start:]] if start < len(text) else out
