"""A finding and the severities (the doctor package's plain objects)."""
from __future__ import annotations

from typing import Sequence

SEVERITIES = ("ok", "info", "warning", "critical")


def shell_word(text: str, space: bool = False) -> str:
    """Untrusted text (an address, a mount point anyone may name in their own user namespace)
    as one word of a command to paste: printable, then quoted, so `/tmp/x;reboot` stays one."""
    from shlex import quote

    from ..address import printable
    return quote(printable(text, space=space))


def rank(severity: str) -> int:
    return SEVERITIES.index(severity)


class Finding:
    """One thing found: the check that found it, how bad, one line, the facts with their
    sources (file:line, /proc paths, numbers), and the exact fix (a command or a config line).
    Every untrusted piece of the texts is already escaped (address.printable)."""
    __slots__ = ("check", "severity", "summary", "evidence", "fix")

    def __init__(self, check: str, severity: str, summary: str, evidence: Sequence[str] = (), fix: str = ""):
        assert severity in SEVERITIES[1:], severity
        self.check, self.severity, self.summary = check, severity, summary
        self.evidence, self.fix = list(evidence), fix

    def __repr__(self) -> str:
        return f"Finding({self.check!r}, {self.severity!r}, {self.summary!r})"
