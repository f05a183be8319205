"""shmctl doctor: the host's shared-memory misconfigurations, with evidence and the fix."""
from __future__ import annotations

import click

from .params import SIZE

CHECKS = ("logind-removeipc", "dev-shm", "tmpfs-overcommit", "sysv-limits", "hugepages", "shm-rmid-forced",
          "memlock", "orphans", "shmem-unexplained")  # doctor.CHECK_IDS, without importing the backend


def _colour() -> bool:
    import os
    from .output import is_terminal
    return is_terminal() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"


def _width():
    """A terminal's real width to wrap to (whatever TERM says); None on a pipe: not wrapped."""
    from .output import is_terminal, terminal_width
    return terminal_width() if is_terminal() else None


@click.command("doctor", short_help="Check the host for shared-memory problems and their fixes.")
@click.option("-J", "--json", "as_json", is_flag=True,
              help='JSON: {"findings": [{"check", "severity", "summary", "evidence", "fix"}], "checks": '
                   '[{"check", "severity"}], "worst"}; severities ok, info, warning, critical.')
@click.option("-v", "--verbose", is_flag=True, help="Also list the checks that found nothing (OK).")
@click.option("-A", "--all-namespaces", "everywhere", is_flag=True,
              help="Every IPC namespace (limits, orphans) and every /dev/shm and tmpfs of the host (containers: "
                   "the 64 MiB default), not only the caller's. Root sees them all.")
@click.option("--expect", type=SIZE, metavar="SIZE",
              help="The SysV segment a workload will ask for (e.g. 16G): critical when shmmax or shmall "
                   "cannot give it.")
@click.option("--check", "only", type=click.Choice(CHECKS), multiple=True,
              help="Run only this check (repeatable); the exit code is its worst finding.")
def doctor_command(as_json, verbose, everywhere, expect, only):
    """Check the host for what breaks shared memory, and say how to fix it: logind's
    RemoveIPC=yes with segments of non-system users; /dev/shm smaller than what its objects
    use and promise (and containers' 64 MiB default where a database runs); tmpfs mounts
    that together may hold more than RAM + swap; shmmax/shmall/shmmni short of existing
    segments or of --expect; huge page pools short of SHM_HUGETLB segments and hugetlbfs
    mounts, or holding surplus pages; kernel.shm_rmid_forced; RLIMIT_MEMLOCK against
    SHM_LOCKed segments; orphans and deleted-but-held objects; Shmem that nothing listed
    explains.

    Each finding: its severity (info, warning, critical), the check, one line, the evidence
    (numbers and where they come from) and the exact fix. Findings come worst first; the
    last line counts them. Exit code: 0 when nothing is worse than info, 8 for a warning,
    9 for a critical finding.
    """
    from ..doctor import exit_code, run_checks
    from ..doctor.facts import default_view, gather
    from ..render import doctor as render
    facts = gather(default_view(), everywhere, expect)
    report = run_checks(facts, only)
    if as_json:
        click.echo(render.report_json(report), nl=False)
    else:
        click.echo(render.report_text(report, verbose, _colour(), _width()), nl=False)
    return exit_code(report)
