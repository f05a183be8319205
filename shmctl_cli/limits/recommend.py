"""`limits recommend --for SIZE`: the limits a workload needing SIZE of shared memory must
find, against the current ones, and the commands that get there. Any one segment may be
all of SIZE (so shmmax covers it, as hugeadm --set-recommended-shmmax does); N segments
may each waste up to a page of rounding."""
from __future__ import annotations

from typing import TYPE_CHECKING, List, Optional

from ..errors import LimitReached
from ..units import format_size
from . import HugePool, Limits, Resource

if TYPE_CHECKING:
    from ..system import System

MEMLOCK_HOW = "ulimit -l of the workload, to lock its segments"
GROUP_HOW = "group allowed SHM_HUGETLB"
MEMLOCK_ADVICE = ("raise the workload's RLIMIT_MEMLOCK (ulimit -l; LimitMEMLOCK= in its systemd unit; memlock in "
                  "/etc/security/limits.conf) if it locks its segments (SHM_LOCK, mlock, Oracle lock_sga)")
GROUP_ADVICE = ("give --group with the workload's group: without CAP_IPC_LOCK only members of "
                "vm.hugetlb_shm_group may create SHM_HUGETLB segments (the kernel no longer lets RLIMIT_MEMLOCK "
                "stand in)")


class Advice:
    """One limit: what it is, what the workload needs, whether it is enough (None: cannot
    tell), and in what unit."""
    __slots__ = ("name", "current", "needed", "unit", "enough", "how", "unlimited")

    def __init__(self, name: str, current: Optional[int], needed: Optional[int], unit: str,
                 enough: Optional[bool], how: str = "", unlimited: bool = False):
        self.name, self.current, self.needed, self.unit = name, current, needed, unit
        self.enough, self.how, self.unlimited = enough, how, unlimited


class Recommendation:
    def __init__(self, size: int, segments: int, pool: Optional[HugePool], group: Optional[int]):
        self.size, self.segments, self.pool, self.group = size, segments, pool, group
        self.items: List[Advice] = []

    def item(self, name: str) -> Optional[Advice]:
        return next((a for a in self.items if a.name == name), None)

    def lacking(self, *names: str) -> List[Advice]:
        return [a for a in self.items if a.name in names and a.enough is False]

    @property
    def commands(self) -> List[str]:
        commands = []
        sets = self.lacking("shmmax", "shmall", "shmmni")
        if sets:
            commands.append("shmctl limits set " + " ".join(f"{a.name}={a.needed}" for a in sets))
        if self.lacking("nr_hugepages"):
            pages = self.item("nr_hugepages").needed
            commands.append(f"shmctl limits hugepages --size {format_size(self.pool.size)} --count {pages}")
        if self.lacking("hugetlb_shm_group"):
            commands.append(f"sysctl -w vm.hugetlb_shm_group={self.group}")
        return commands


def _pages(size: int, page: int) -> int:
    return -(-size // page)


def recommend(limits: Limits, size: int, segments: int = 1, pool: Optional[HugePool] = None,
              group: Optional[int] = None) -> Recommendation:
    mem_total = limits.meminfo.get("MemTotal")
    if mem_total is not None and size > mem_total:
        raise LimitReached(f"limits recommend --for {format_size(size)}",
                           f"more than MemTotal {format_size(mem_total)}",
                           "shared memory has to fit in RAM: ask for less")
    rec = Recommendation(size, segments, pool, group)
    page, res = limits.page_size, limits.resources
    slack = segments - 1  # each segment is rounded up to whole pages on its own
    rec.items.append(_at_least(res["shmmax"], _pages(size, page) * page, "largest segment"))
    rec.items.append(_at_least(res["shmall"], res["shmall"].used + _pages(size, page) + slack, "all SysV segments"))
    rec.items.append(_at_least(res["shmmni"], res["shmmni"].used + segments, "SysV segments"))
    if pool is not None:
        rec.items.append(_pool_advice(limits, pool, _pages(size, pool.size) + slack))
    soft = limits.memlock[0]
    rec.items.append(Advice("memlock", soft, size, "bytes", soft is None or soft >= size, MEMLOCK_HOW))
    if pool is not None:
        current = limits.hugetlb_shm_group
        rec.items.append(Advice("hugetlb_shm_group", current, group, "gid",
                                None if group is None else current == group, GROUP_HOW))
    return rec


def _at_least(resource: Resource, needed: int, how: str) -> Advice:
    return Advice(resource.name, resource.limit, needed, resource.unit, resource.limit >= needed, how,
                  resource.unlimited)


def _pool_advice(limits: Limits, pool: HugePool, pages: int) -> Advice:
    """Pages in use or reserved by others stay theirs: the pool must hold those and ours."""
    needed = pool.committed + pages
    mem_total = limits.meminfo.get("MemTotal")
    others = sum(p.persistent * p.size for p in limits.pools if p is not pool)
    if mem_total is not None and needed * pool.size + others >= mem_total:
        raise LimitReached(f"{needed} huge pages of {format_size(pool.size)}",
                           f"{format_size(needed * pool.size)} with the other pools' {format_size(others)} is not "
                           f"less than MemTotal {format_size(mem_total)}", "huge pages are never swapped: ask for less")
    return Advice("nr_hugepages", pool.total, needed, f"{format_size(pool.size)} pages", pool.total >= needed,
                  f"{pool.committed} in use or reserved now")


def require_apply_rights(rec: Recommendation, system: "System") -> None:
    from . import hugepages, setting
    keys = [f"kernel.{a.name}" for a in rec.lacking("shmmax", "shmall", "shmmni")]
    if rec.lacking("hugetlb_shm_group"):
        keys.append("vm.hugetlb_shm_group")
    if keys:
        setting.require_writable(keys, system)
    if rec.lacking("nr_hugepages"):
        hugepages.require_writable(rec.pool, system)


def apply(rec: Recommendation, limits: Limits, system: "System") -> tuple:
    """Make what is lacking: (notes on what changed, the pool result or None)."""
    from . import hugepages, setting
    changes = [setting.Change(a.name, f"{a.name}={a.needed}", a.needed)
               for a in rec.lacking("shmmax", "shmall", "shmmni")]
    setting.validate(changes, limits, force=False)
    setting.apply(changes, system)
    notes = [f"changed {c.key}: {c.old} -> {c.kept}" for c in changes]
    if rec.lacking("hugetlb_shm_group"):
        _set_group(rec.group, system)
        notes.append(f"changed vm.hugetlb_shm_group: {rec.item('hugetlb_shm_group').current} -> {rec.group}")
    result = None
    if rec.lacking("nr_hugepages"):
        result = hugepages.set_pool(rec.pool, rec.item("nr_hugepages").needed, None, system)
        notes.append(f"sized the {format_size(result.size)} pool: {result.got} pages")
    return notes, result


def _set_group(gid: int, system: "System") -> None:
    from ..errors import from_oserror
    from .setting import write_sysctl
    try:
        write_sysctl("vm.hugetlb_shm_group", gid, system)
    except OSError as exc:
        raise from_oserror(exc, f"cannot set vm.hugetlb_shm_group={gid}") from None
