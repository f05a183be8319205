"""shmctl doctor: the misconfigurations behind most shared-memory incidents, checked on one
host. facts.py gathers everything from a View's roots (proc, sys_root, shm_dir, etc) into
plain objects; each check is a pure function of those facts returning Findings (checks.py:
SysV and users; memory.py: filesystems, huge pages, Shmem); render/doctor.py prints them.

Severities, worst last: ok (nothing found), info, warning, critical. The exit code is the
worst finding's: 0 up to info, 8 warning, 9 critical (errors.Exit.DOCTOR_*)."""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, List, Optional, Sequence, Tuple

from .findings import SEVERITIES, Finding, rank  # noqa: F401  (doctor.Finding, ...)

if TYPE_CHECKING:
    from .facts import Facts


class Report:
    """Every check that ran with its worst severity, and every finding, worst first."""

    def __init__(self, checks: List[Tuple[str, str]], findings: List[Finding]):
        self.checks, self.findings = checks, findings

    @property
    def worst(self) -> str:
        return max((s for _, s in self.checks), key=rank, default="ok")


Check = Callable[["Facts"], List[Finding]]


def registry() -> List[Tuple[str, Check]]:
    """The checks in the order they are documented (README, --help)."""
    from . import checks, memory
    return [
        ("logind-removeipc", checks.logind_remove_ipc),
        ("dev-shm", memory.dev_shm_capacity),
        ("tmpfs-overcommit", memory.tmpfs_overcommit),
        ("sysv-limits", checks.sysv_limits),
        ("hugepages", memory.huge_pages),
        ("shm-rmid-forced", checks.shm_rmid_forced),
        ("memlock", checks.memlock),
        ("orphans", checks.orphans),
        ("shmem-unexplained", memory.shmem_unexplained),
    ]


CHECK_IDS = ("logind-removeipc", "dev-shm", "tmpfs-overcommit", "sysv-limits", "hugepages", "shm-rmid-forced",
             "memlock", "orphans", "shmem-unexplained")


def run_checks(facts: "Facts", only: Optional[Sequence[str]] = None) -> Report:
    """Every check on the facts; findings sorted worst first (then in check order)."""
    results, findings = [], []
    for order, (name, check) in enumerate(registry()):
        if only and name not in only:
            continue
        found = check(facts)
        results.append((name, max((f.severity for f in found), key=rank, default="ok")))
        findings += [(order, f) for f in found]
    findings.sort(key=lambda pair: (-rank(pair[1].severity), pair[0]))
    return Report(results, [f for _, f in findings])


def exit_code(report: Report):
    from ..errors import Exit
    return {"critical": Exit.DOCTOR_CRITICAL, "warning": Exit.DOCTOR_WARNING}.get(report.worst, Exit.OK)
