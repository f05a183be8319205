"""`shmctl doctor` as text and JSON. Pure: a Report in, text out.

The checks write every untrusted piece (names, comms, paths, addresses) through
address.printable already; `_guard` escapes whatever non-printable character might be left,
without touching the escapes already made."""
from __future__ import annotations

from typing import List

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


def report_text(report, verbose: bool = False, colour: bool = False) -> str:
    """Findings worst first: `SEVERITY  check: summary`, the evidence indented, then `fix:`;
    with `verbose` the checks that found nothing as `OK` lines; last, the count."""
    lines: List[str] = []
    indent = " " * WIDTH
    for f in report.findings:
        lines.append(f"{_label(f.severity, colour)}{f.check}: {_guard(f.summary)}")
        lines += [f"{indent}{_guard(e)}" for e in f.evidence]
        if f.fix:
            lines.append(f"{indent}fix: {_guard(f.fix)}")
    if verbose:
        lines += [f"{_label('ok', colour)}{name}" for name, severity in report.checks if severity == "ok"]
    n = len(report.findings)
    lines.append(f"{len(report.checks)} checks, {n} finding{'' if n == 1 else 's'} (worst: {report.worst})")
    return "\n".join(lines) + "\n"
