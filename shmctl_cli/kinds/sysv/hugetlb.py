"""Which SysV segments are SHM_HUGETLB, and the memory they really hold.

The kernel keeps SHM_HUGETLB in neither /proc/sysvipc/shm nor IPC_STAT. What tells it:
- an attacher's mapping, on a hugetlbfs device rather than the shmem one (attach_processes
  sets hugetlb from it); its smaps give the page size (KernelPageSize) and what it maps
  (Shared_Hugetlb + Private_Hugetlb, a lower bound of the segment's pages);
- the kernel's rss: more than the size rounded up to the base page is impossible for a
  normal segment;
- the huge page pools (/sys/kernel/mm/hugepages): with no huge page in any pool, no segment
  holds or reserves one; a segment fits pool H only if its rss is whole pages of H that the
  pool has in use, or, untouched, if the pool has its pages reserved.
Where both a normal and a hugetlb reading fit, hugetlb is None: unknown. Blind spot: an
untouched SHM_NORESERVE segment holds and reserves nothing, so it reads as a normal one.

The rss: /proc/sysvipc/shm (and SHM_INFO, ipcs) gives pages_per_huge_page(h) * nrpages for a
hugetlb segment (ipc/shm.c, shm_add_rss_swap). Kernels whose hugetlb page cache counts base
pages (6.18 here) make that pages_per_huge_page times too large: one 2 MiB page reads 1 GiB.
Older ones counted huge pages in nrpages and were right. Which kind this kernel is, is
read from the figures themselves (a reading that cannot be true), never assumed."""
from __future__ import annotations

import os
from itertools import compress
from operator import attrgetter, gt
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ...procfs.hugepages import read_pools
from ...procfs.smaps import read_mapping_figures

if TYPE_CHECKING:
    from ...model import Segment
    from ...system import View

BASE_PAGE = os.sysconf("SC_PAGE_SIZE")
EXACT, INFLATED = "exact", "inflated"  # how the kernel counts hugetlb rss
SMAPS_READS = 4  # attachers whose smaps are read per hugetlb segment: a lower bound needs few
Reading = Tuple[int, Optional[str], int]  # (huge page size, EXACT/INFLATED/None if untouched, true rss)


class Pool:
    """What one huge page pool can still explain: pages in use (nr - free) and reserved."""
    __slots__ = ("size", "used", "reserved", "ratio")

    def __init__(self, size: int, used: int, reserved: int):
        self.size, self.used, self.reserved, self.ratio = size, used, reserved, size // BASE_PAGE

    @classmethod
    def read(cls, size: int, counters: Dict[str, int]) -> "Pool":
        return cls(size, counters.get("nr_hugepages", 0) - counters.get("free_hugepages", 0),
                   counters.get("resv_hugepages", 0))


def round_up(size: int, page: int) -> int:
    return -(-size // page) * page


def settle(segments: "List[Segment]", view: "View") -> None:
    """Set hugetlb (True, False or None) and the true rss of the SysV segments, and cap every
    rss at what the segment can hold. Costs C-level passes over the list, plus Python work for
    the few segments whose rss passes their size, and for all only where a pool has pages."""
    sizes = read_pools(view.sys_root)
    pools = {size: Pool.read(size, c) for size, c in sizes.items() if c.get("nr_hugepages")}
    over = _rss_over_size(segments)
    known = _certainly_hugetlb(segments, over)
    if known or pools:
        left = _settle_known(known, pools, min(sizes, default=BASE_PAGE), view)
        if pools:
            _settle_rest(_unsettled(segments, view), left)
    cap_rss(over, max(sizes, default=BASE_PAGE))


def _rss_over_size(segments: "List[Segment]") -> "List[Segment]":
    """C-level passes: the untouched (rss 0, the bulk of a large table) drop out first, and
    so does an rss of None (a kernel without the column)."""
    touched = list(compress(segments, map(attrgetter("rss"), segments)))
    return list(compress(touched, map(gt, map(attrgetter("rss"), touched), map(attrgetter("size"), touched))))


def _certainly_hugetlb(segments: "List[Segment]", over: "List[Segment]") -> "List[Segment]":
    """An attacher's mapping said so (attach_processes: only where the maps were scanned), or
    the rss is more than any normal segment of that size can have."""
    scanned = bool(segments) and segments[0].attachments is not None
    known = {id(s): s for s in compress(segments, map(attrgetter("hugetlb"), segments))} if scanned else {}
    known.update((id(s), s) for s in over if s.rss > round_up(s.size, BASE_PAGE))
    for s in known.values():
        s.hugetlb = True
    return list(known.values())


def _unsettled(segments: "List[Segment]", view: "View") -> "List[Segment]":
    """Neither certainly hugetlb nor seen attached on the shmem device (known normal)."""
    seen = view.shmem_dev is not None
    return [s for s in segments if not s.hugetlb and not (seen and s.attachments)]


def _settle_known(known: "List[Segment]", pools: Dict[int, Pool], default_page: int, view: "View"
                  ) -> "Tuple[Dict[int, Pool], Optional[str]]":
    """The true rss of the certain ones; returns what the pools have left to explain the
    others, and the verdict on how this kernel counts."""
    figures = {id(s): _smaps(s, view) for s in known if s.attachments}
    readings = {id(s): _readings(s.size, s.rss or 0, pools, *figures.get(id(s), (None, 0))) for s in known}
    verdict = _verdict(readings.values())
    used = {size: pool.used for size, pool in pools.items()}
    for s in known:
        page, floor = figures.get(id(s), (None, 0))
        page, s.rss = _true_rss(s, readings[id(s)], verdict, page or default_page, floor)
        if page in used:
            used[page] -= s.rss // page
    return {size: Pool(size, max(used[size], 0), pool.reserved) for size, pool in pools.items()}, verdict


def _smaps(s: "Segment", view: "View") -> Tuple[Optional[int], int]:
    """(page size, the most any attacher maps) from the smaps of a few attachers."""
    page, most = None, 0
    for a in s.attachments[:SMAPS_READS]:
        figures = read_mapping_figures(a.pid, a.start, view.proc)
        if figures.get("KernelPageSize", 0) > BASE_PAGE:
            page = figures["KernelPageSize"]
            most = max(most, figures.get("Shared_Hugetlb", 0) + figures.get("Private_Hugetlb", 0))
    return page, most


def _readings(size: int, rss: int, pools: Dict[int, Pool], page: Optional[int] = None, floor: int = 0
              ) -> List[Reading]:
    """Every way the kernel's `rss` can be true for a hugetlb segment of `size`: each pool
    (only `page`'s where known), counted exactly or inflated, within the size rounded up to
    the huge page, the pages the pool has in use and at least `floor` (what smaps show)."""
    found = []
    for h, pool in pools.items():
        if page is not None and h != page:
            continue
        if rss == 0:
            if -(-size // h) <= pool.reserved:
                found.append((h, None, 0))
            continue
        for how, true in ((EXACT, rss), (INFLATED, rss // pool.ratio if rss % (h * pool.ratio) == 0 else 0)):
            if true and true % h == 0 and floor <= true <= round_up(size, h) and true // h <= pool.used:
                found.append((h, how, true))
    return found


def _verdict(all_readings) -> Optional[str]:
    """EXACT or INFLATED where some certain hugetlb segment's figures fit one way only."""
    seen = set()
    for readings in all_readings:
        hows = {how for _, how, _ in readings if how}
        if len(hows) == 1:
            seen |= hows
    return seen.pop() if len(seen) == 1 else None


def _narrowed(readings: List[Reading], verdict: Optional[str]) -> List[Reading]:
    return [r for r in readings if r[1] in (verdict, None)] if verdict else readings


def _true_rss(s: "Segment", readings: List[Reading], verdict: Optional[str], page: int, floor: int
              ) -> Tuple[int, int]:
    """(page size, true rss) of a certain hugetlb segment. Where readings disagree, the
    smallest: never more than the kernel's figures allow."""
    chosen = _narrowed(readings, verdict) or readings
    if chosen:
        return max(h for h, _, _ in chosen), min(t for _, _, t in chosen)
    rss = s.rss or 0  # no pool fits (the pools changed while we read): the figure, corrected by the verdict
    if verdict == INFLATED and rss % page == 0:
        rss //= page // BASE_PAGE
    return page, min(max(rss, floor), round_up(s.size, page))


def _settle_rest(rest: "List[Segment]", left: "Tuple[Dict[int, Pool], Optional[str]]") -> None:
    """Segments with no visible attacher and a figure a normal segment may have: hugetlb
    False where no pool fits, None (unknown) where one does. Decided once per (size, rss)."""
    pools, verdict = left
    keys = list(zip(map(attrgetter("size"), rest), map(attrgetter("rss"), rest)))
    decided = {}
    for size, rss in set(keys):
        fits = _narrowed(_readings(size, rss or 0, pools), verdict)
        decided[size, rss] = None if fits else False
    for s, key in zip(rest, keys):
        s.hugetlb = decided[key]


def cap_rss(over: "List[Segment]", largest_page: int) -> None:
    """No segment shows more rss than it can hold: its size rounded up to its page size (the
    base page; for hugetlb, already settled above, the largest huge page). A figure above
    that is a kernel accounting error, as the hugetlb one above, not memory. `over`: the
    segments whose rss passed their size, the only ones that can need it."""
    for s in over:
        limit = round_up(s.size, BASE_PAGE if s.hugetlb is False else largest_page)
        if s.rss > limit:
            s.rss = limit
