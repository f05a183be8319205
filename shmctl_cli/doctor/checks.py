"""The checks of SysV and of users: logind's RemoveIPC, shmmax/shmall/shmmni, shm_rmid_forced,
RLIMIT_MEMLOCK against locked segments, orphans and deleted-but-held objects. Each is a pure
function of a Facts (facts.py) returning Findings."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, List

from ..address import printable
from ..units import format_size
from .findings import Finding, shell_word

if TYPE_CHECKING:
    from ..model import Segment
    from .facts import Facts

NOBODY = 65534  # never has a session, so logind never cleans up after it
SHOWN = 5  # segments named per owner, pids per finding
DROPIN = "/etc/systemd/logind.conf.d/90-shmctl-keep-ipc.conf"


def owner_text(uid) -> str:
    from ..system import user_name
    name = user_name(uid)
    return printable(f"{name} (uid {uid})" if name != str(uid) else f"uid {uid}")


def seg_text(s: "Segment") -> str:
    name = f" {printable(s.name)}" if s.name and s.name not in s.address else ""
    return f"{printable(s.address)}{name} ({format_size(s.size)})"


def named(items: List[str], limit: int = SHOWN) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


# --- 1. logind RemoveIPC ---

def logind_remove_ipc(facts: "Facts") -> List[Finding]:
    if facts.logind is None or not facts.remove_ipc.value:
        return []
    sys_max, sys_source = facts.system_uid_max
    owners: Dict[int, List["Segment"]] = {}
    for s in facts.segments:
        if s.kind in ("sysv", "posix") and s.uid is not None and sys_max < s.uid != NOBODY:
            owners.setdefault(s.uid, []).append(s)
    evidence = [f"systemd-logind: {facts.logind}", f"RemoveIPC=yes: {facts.remove_ipc.source}",
                f"system users: uid <= {sys_max} ({sys_source}); others lose their SysV and POSIX IPC "
                "when their last session ends"]
    fix = f"printf '[Login]\\nRemoveIPC=no\\n' > {DROPIN} && systemctl restart systemd-logind"
    if not owners:
        return [Finding("logind-removeipc", "info", "RemoveIPC=yes: shared memory that a non-system user "
                        "creates vanishes at that user's last logout", evidence, fix)]
    for uid, segs in sorted(owners.items()):
        evidence.append(f"{owner_text(uid)}: {named([seg_text(s) for s in segs])}")
    total = sum(len(v) for v in owners.values())
    users = named([owner_text(uid) for uid in sorted(owners)])
    return [Finding("logind-removeipc", "warning",
                    f"RemoveIPC=yes: {total} segment{'s' if total != 1 else ''} of {users} will be removed at "
                    "their owner's last logout", evidence,
                    fix + "  (or run the service as a system user)")]


# --- 4. shmmax, shmall, shmmni ---

def sysv_limits(facts: "Facts") -> List[Finding]:
    found: List[Finding] = []
    for i, place in enumerate(facts.sysv):
        found += _sysv_place(place, facts.expect if i == 0 else None)
    return found


def _sysv_place(place, expect) -> List[Finding]:
    limits, where = place.limits, place.label
    res = limits.resources
    shmmax, shmall, shmmni = res.get("shmmax"), res.get("shmall"), res.get("shmmni")
    found = []
    src = "/proc/sys/kernel"
    if shmmax and shmmax.used and shmmax.limit is not None and shmmax.used > shmmax.limit:
        found.append(Finding("sysv-limits", "warning",
                             f"{where}: a segment of {format_size(shmmax.used)} exists but shmmax is "
                             f"{format_size(shmmax.limit)}: re-creating it (after a restart) fails with EINVAL",
                             [f"largest segment {shmmax.used} bytes (/proc/sysvipc/shm)",
                              f"shmmax {shmmax.limit} bytes ({src}/shmmax)"],
                             f"shmctl limits set shmmax={shmmax.used} --persist"))
    if shmall and shmall.used is not None and shmall.limit is not None and shmall.used > shmall.limit:
        found.append(Finding("sysv-limits", "warning",
                             f"{where}: segments use {shmall.used} pages, more than shmall {shmall.limit}: "
                             "no new segment can be created (ENOSPC)",
                             [f"in use {shmall.used} pages (SHM_INFO shm_tot)", f"shmall {shmall.limit} pages "
                              f"({src}/shmall)"], f"shmctl limits set shmall={shmall.used} --persist"))
    if shmmni and shmmni.limit and shmmni.used is not None and shmmni.used * 10 > shmmni.limit * 9:
        full = shmmni.used >= shmmni.limit
        found.append(Finding("sysv-limits", "critical" if full else "warning",
                             f"{where}: {shmmni.used} of shmmni {shmmni.limit} segments exist"
                             + (": shmget fails with ENOSPC" if full else " (over 90%)"),
                             [f"segments {shmmni.used} (SHM_INFO used_ids)", f"shmmni {shmmni.limit} ({src}/shmmni)"],
                             f"shmctl limits set shmmni={min(limits.ipcmni, max(shmmni.limit * 2, 4096))} --persist"))
    if expect:
        found += _expected(where, expect, shmmax, shmall)
    return found


def _expected(where: str, expect: int, shmmax, shmall) -> List[Finding]:
    found = []
    if shmmax and shmmax.limit is not None and expect > shmmax.limit:
        found.append(Finding("sysv-limits", "critical",
                             f"{where}: a segment of {format_size(expect)} (--expect) is larger than shmmax "
                             f"{format_size(shmmax.limit)}: shmget fails with EINVAL",
                             [f"--expect {expect} bytes", f"shmmax {shmmax.limit} bytes (/proc/sys/kernel/shmmax)"],
                             f"shmctl limits recommend --for {expect} --apply"))
    if shmall and shmall.limit_bytes is not None and shmall.used_bytes is not None \
            and expect + shmall.used_bytes > shmall.limit_bytes:
        found.append(Finding("sysv-limits", "critical",
                             f"{where}: {format_size(expect)} more (--expect) passes shmall "
                             f"{format_size(shmall.limit_bytes)} with {format_size(shmall.used_bytes)} in use: "
                             "shmget fails with ENOSPC",
                             [f"--expect {expect} bytes", f"in use {shmall.used} pages (SHM_INFO shm_tot)",
                              f"shmall {shmall.limit} pages of {shmall.page_size} bytes (/proc/sys/kernel/shmall)"],
                             f"shmctl limits recommend --for {expect + shmall.used_bytes} --apply"))
    return found


# --- 6. kernel.shm_rmid_forced ---

def shm_rmid_forced(facts: "Facts") -> List[Finding]:
    found = []
    for place in facts.sysv:
        value = place.limits.shm_rmid_forced
        source = f"kernel.shm_rmid_forced = {value} (/proc/sys/kernel/shm_rmid_forced, {place.label})"
        if value == 1:
            found.append(Finding("shm-rmid-forced", "info",
                                 f"{place.label}: shm_rmid_forced=1: a segment is destroyed at its last detach once "
                                 "its creator is gone (a database that detaches and re-attaches later loses it)",
                                 [source], "shmctl limits set shm_rmid_forced=0 --persist  (if that is not wanted)"))
        elif value == 0:
            orphans = [s for s in facts.segments if s.kind == "sysv" and s.orphan and s.namespace == place.namespace]
            if orphans:
                found.append(Finding("shm-rmid-forced", "info",
                                     f"{place.label}: shm_rmid_forced=0: {len(orphans)} orphaned SysV segment"
                                     f"{'s' if len(orphans) != 1 else ''} ({format_size(_memory(orphans))} of memory) "
                                     + ("stay until someone removes them" if len(orphans) != 1 else
                                        "stays until someone removes it"),
                                     [source, f"orphans: {named([seg_text(s) for s in orphans])}"],
                                     "shmctl rm --orphans -k sysv  (see the orphans check)"))
    return found


# --- 7. RLIMIT_MEMLOCK against SHM_LOCKed segments ---

def memlock(facts: "Facts") -> List[Finding]:
    found = []
    for uid, lockers in sorted(facts.lockers.items()):
        locked = [s for s in facts.segments if s.kind == "sysv" and s.locked and s.uid == uid]
        total = sum(-(-s.size // facts.page_size) * facts.page_size for s in locked)
        short = [p for p in lockers if not p.cap_ipc_lock and p.memlock is not None and p.memlock < total]
        if not short:
            continue
        found.append(Finding(
            "memlock", "warning",
            f"{owner_text(uid)} has {format_size(total)} of SysV memory locked (SHM_LOCK) but RLIMIT_MEMLOCK of "
            f"its processes is {format_size(min(p.memlock for p in short))}: its next SHM_LOCK fails (ENOMEM)",
            [f"locked: {named([seg_text(s) for s in locked])} (/proc/sysvipc/shm perms 02000)"]
            + [f"pid {p.pid} ({printable(p.comm)}): Max locked memory {p.memlock} bytes (/proc/{p.pid}/limits)"
               for p in short[:SHOWN]]
            + ["SHM_LOCK charges the user who locks; root (uid 0) and processes with CAP_IPC_LOCK are exempt"],
            f"LimitMEMLOCK={total} in the service's unit, or `{printable(_user_word(uid))} - memlock "
            f"{-(-total // 1024)}` in /etc/security/limits.d/90-shmctl.conf"))
    return found


def _user_word(uid) -> str:
    from ..system import user_name
    return user_name(uid)


# --- 8. orphans and deleted-but-held objects ---

WARN_BYTES = 1 << 30  # warning when orphans (or deleted objects) hold this much ...
WARN_SHARE = 0.05  # ... or this share of MemTotal, whichever is smaller


def _memory(segments) -> int:
    """What they really hold: resident plus swapped (size where the kernel does not say)."""
    return sum((s.rss or 0) + (s.swap or 0) if s.rss is not None else s.size for s in segments)


def warn_threshold(meminfo: Dict[str, int]) -> int:
    total = meminfo.get("MemTotal")
    return min(WARN_BYTES, int(total * WARN_SHARE)) if total else WARN_BYTES


def orphans(facts: "Facts") -> List[Finding]:
    found = []
    limit = warn_threshold(facts.meminfo)
    orphaned = [s for s in facts.segments if s.orphan and not s.deleted]
    if orphaned:
        memory = _memory(orphaned)
        unsure = sum(1 for s in orphaned if s.orphan_unsure)
        addresses = [shell_word(s.address, space=True) for s in orphaned]
        fix = (f"shmctl rm {' '.join(addresses)}" if len(addresses) <= 8
               else "shmctl rm --orphans --dry-run, then shmctl rm --orphans --yes")
        found.append(Finding(
            "orphans", "warning" if memory >= limit else "info",
            f"{len(orphaned)} orphaned segment{'s hold' if len(orphaned) != 1 else ' holds'} "
            f"{format_size(memory)} of memory that nothing uses",
            [f"{seg_text(s)}: rss {format_size(s.rss)}, {printable(s.orphan)}" for s in orphaned[:SHOWN]]
            + ([f"... and {len(orphaned) - SHOWN} more"] if len(orphaned) > SHOWN else [])
            + ([f"{unsure} may be held by processes whose maps are closed (orphan?)"] if unsure else [])
            + [f"warning from {format_size(limit)} (1 GiB or 5% of MemTotal, the smaller)"], fix))
    deleted = [s for s in facts.segments if s.deleted]
    if deleted:
        memory = _memory(deleted)
        pids = sorted({(a.pid, a.comm) for s in deleted for a in s.attachments or ()})
        holders = named([f"{pid} ({printable(comm)})" for pid, comm in pids])
        found.append(Finding(
            "orphans", "warning" if memory >= limit else "info",
            f"{len(deleted)} deleted object{'s' if len(deleted) != 1 else ''} still held: {format_size(memory)} "
            "that no directory lists, freed only when the holders let go",
            [f"{seg_text(s)}: rss {format_size(s.rss)}, held by pid {', '.join(map(str, s.pids[:SHOWN]))}"
             for s in deleted[:SHOWN]] + [f"warning from {format_size(limit)}"],
            f"restart (or stop) pid {holders}" if pids else "restart the processes that hold them"))
    return found
