"""`limits hugepages`: size a huge page pool and report what the kernel really allocated.
The pools are global (not per namespace); the kernel allocates what it can find, which
after a while of uptime may be fewer pages than asked (memory fragmentation)."""
from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, Dict, Optional

from ..errors import LimitReached, PermissionDenied, UsageError
from ..procfs import hugepages as hugepages_fs
from ..units import format_size
from . import ROOT_HINT, HugePool, Limits, write_value

if TYPE_CHECKING:
    from ..system import System


def choose_pool(limits: Limits, size: Optional[int]) -> HugePool:
    """The pool of that page size, or the default one."""
    if not limits.pools:
        raise UsageError("no huge page pools", "this kernel has no hugetlb support (CONFIG_HUGETLBFS)")
    pool = limits.default_pool if size is None else limits.pool(size)
    if pool is None:
        sizes = ", ".join(format_size(p.size) for p in limits.pools)
        raise UsageError(f"no {format_size(size)} huge page pool", f"this kernel has {sizes}",
                         "--size takes one of those")
    return pool


def check_memory(limits: Limits, pool: HugePool, count: int) -> None:
    """Refuse a pool that, with the other pools, would take all of memory: the kernel would
    try, and the machine would run out of memory for everything else."""
    mem_total = limits.meminfo.get("MemTotal")
    if mem_total is None:
        return
    others = sum(p.persistent * p.size for p in limits.pools if p is not pool)
    wanted = count * pool.size
    if wanted + others >= mem_total:
        raise LimitReached(f"{count} pages of {format_size(pool.size)}",
                           f"{format_size(wanted)} with the other pools' {format_size(others)} is not less than "
                           f"MemTotal {format_size(mem_total)}", "ask for fewer pages")


def write_pool(size: int, field: str, value: int, system: "System") -> None:
    write_value(hugepages_fs.pool_path(size, field, system.sys_root), value)


def may_write_pool(size: int, system: "System") -> bool:
    return os.access(hugepages_fs.pool_path(size, "nr_hugepages", system.sys_root), os.W_OK)


def require_writable(pool: HugePool, system: "System") -> None:
    what = f"cannot size the {format_size(pool.size)} huge page pool"
    if os.geteuid() != 0:
        raise PermissionDenied(what, "permission denied", ROOT_HINT)
    if not may_write_pool(pool.size, system):
        raise PermissionDenied(what, "not writable here", f"{ROOT_HINT} on the host")


class PoolResult:
    """What was asked and what the pool holds after the write."""

    def __init__(self, size: int, count: Optional[int], overcommit: Optional[int], counters: Dict[str, int]):
        self.size, self.count, self.overcommit_asked = size, count, overcommit
        self.pool = HugePool(size, counters)

    @property
    def got(self) -> int:
        return self.pool.persistent

    @property
    def short(self) -> bool:
        return self.count is not None and self.got < self.count


def set_pool(pool: HugePool, count: Optional[int], overcommit: Optional[int], system: "System") -> PoolResult:
    from ..errors import from_oserror
    for field, value in (("nr_overcommit_hugepages", overcommit), ("nr_hugepages", count)):
        if value is None:
            continue
        try:
            write_pool(pool.size, field, value, system)
        except OSError as exc:
            if exc.errno == errno.EINVAL and field == "nr_overcommit_hugepages":
                raise UsageError(f"--overcommit {value}", f"the kernel does not overcommit {format_size(pool.size)} "
                                 "pages (gigantic pages never are)") from None
            raise from_oserror(exc, f"cannot set {field} of the {format_size(pool.size)} pool to {value}") from None
    directory = os.path.dirname(hugepages_fs.pool_path(pool.size, "nr_hugepages", system.sys_root))
    return PoolResult(pool.size, count, overcommit, hugepages_fs.read_counters(directory, hugepages_fs.POOL_FIELDS))


def shortfall_error(result: PoolResult) -> LimitReached:
    size = format_size(result.size)
    return LimitReached(f"{size} huge pages: got {result.got} of {result.count}",
                        "the kernel found no more free contiguous memory (fragmentation)",
                        "compact memory with `echo 1 > /proc/sys/vm/compact_memory` and try again, or reserve "
                        f"them at boot: {boot_parameters(result.size, result.count)} on the kernel command line")


def boot_parameters(size: int, count: int) -> str:
    from ..units import kernel_size  # the kernel command line: 2M, 1G
    return f"hugepagesz={kernel_size(size)} hugepages={count}"


def persist_values(pool: HugePool, count: Optional[int], overcommit: Optional[int]) -> Dict[str, int]:
    """sysctl keys for the default size; other sizes have none (see boot_parameters)."""
    values = {}
    if count is not None:
        values["vm.nr_hugepages"] = count
    if overcommit is not None:
        values["vm.nr_overcommit_hugepages"] = overcommit
    return values if pool.default else {}


def persist_plan(pool: HugePool, count: Optional[int], overcommit: Optional[int], persist: Optional[str],
                 system: "System") -> tuple:
    """(the sysctl.d plan or None, a note on what cannot be persisted or None)."""
    from . import persist as persisting
    if persist is None:
        return None, None
    values = persist_values(pool, count, overcommit)
    if values:
        return persisting.plan(persisting.target_path(persist, system), values, system), None
    size = format_size(pool.size)
    if count is None:
        return None, f"the overcommit of {size} pages has no sysctl: nothing persisted"
    return None, (f"{size} pages are not the default size and have no sysctl: to keep them after a reboot, add "
                  f"`{boot_parameters(pool.size, count)}` to the kernel command line "
                  "(GRUB_CMDLINE_LINUX in /etc/default/grub)")


def surplus_note(result: PoolResult) -> Optional[str]:
    pool = result.pool
    if result.count is not None and pool.surplus and pool.persistent <= result.count:
        return f"{pool.surplus} pages in use stay in the pool as surplus until they are released"
    return None
