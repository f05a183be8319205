"""Which `/SYSV%08x (deleted)` mappings are attachments of a segment of the IPC namespace a
View looks at.

Every IPC namespace numbers its segments from 0, and every attachment shows device 00:01 (or
a hugetlbfs one) with inode = shmid: (device, inode) names a segment only within one IPC
namespace. A process may attach in namespace A and then move to B (unshare, setns): it still
maps A's segment, and nothing in /proc/PID/maps says which namespace that was. What does tell,
cheapest first (checked on 6.18):

a. the process's current IPC namespace: right unless it moved while attached;
b. the key in the mapping's name against the segment's (a segment marked for removal shows
   key 0 in /proc, its mappings keep the original), and the mapping's end against the size
   rounded up to the page;
c. where those leave a doubt (as root): the exact size of the file (stat of
   /proc/PID/map_files/START-END) and its file handle (name_to_handle_at): shmem inodes get a
   random generation, so mappings of one segment share a handle and two segments with the
   same shmid have different ones. hugetlbfs has no handles (EOPNOTSUPP);
d. the kernel's nattch, which counts the segment's VMAs: when every process of the host is
   visible (the initial PID namespace, no maps denied), the segment's attachments are exactly
   nattch of the compatible mappings, all of one handle.
What remains (two segments alike in key and size, both attached by processes of the
namespace, and no count to choose) cannot be told: those attachments are kept, marked unsure.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

if TYPE_CHECKING:
    from ...model import Segment
    from ...procfs.maps import SharedMapping
    from ...system import View

SYSV_PREFIX = "/SYSV"
BASE_PAGE = os.sysconf("SC_PAGE_SIZE")
INIT_PID_NS = 0xEFFFFFFC  # PROC_PID_INIT_INO: the host's own PID namespace
Candidate = Tuple[int, "SharedMapping"]  # (pid, mapping)
Decision = Tuple[int, "SharedMapping", bool]  # (pid, mapping, unsure)


def mapping_key(m: "SharedMapping") -> Optional[int]:
    """The key in `/SYSV%08x (deleted)`; None for a name not of that form."""
    digits = m.path[5:13]
    if len(digits) != 8 or not m.path.startswith(SYSV_PREFIX):
        return None
    try:
        return int(digits, 16)
    except ValueError:
        return None


def compatible(seg: "Segment", m: "SharedMapping", huge_page: Optional[int]) -> bool:
    """Whether the mapping can be one of the segment: same key (any, once it is marked for
    removal and /proc shows key 0) and within its size rounded up to the page."""
    key = mapping_key(m)
    if key is None or (key != seg.key and not (seg.dest and seg.key == 0)):
        return False
    page = BASE_PAGE if huge_page is None else huge_page
    return m.offset + (m.end - m.start) <= -(-seg.size // page) * page


class Matcher:
    """The doubtful cases of one View: namespaces of processes, probes of mappings."""

    def __init__(self, view: "View"):
        self.view = view
        self._full: Optional[bool] = None

    def at_home(self, pid: int) -> bool:
        return self.view.same_ipc_namespace(pid)

    @property
    def full_view(self) -> bool:
        """Every VMA on the host is in the maps we read: the initial PID namespace, none denied."""
        if self._full is None:
            from ...procfs.namespaces import namespace_inode
            view = self.view
            self._full = (namespace_inode("self", "pid", view.proc) == INIT_PID_NS and view.host.scanned
                          and view.maps.hidden == 0)
        return self._full

    def probe(self, pid: int, m: "SharedMapping") -> Tuple[Optional[int], Optional[bytes]]:
        """The exact size and the file handle of the mapped file (None, None without root)."""
        from ...syscalls import file_handle
        path = f"{self.view.proc}/{pid}/map_files/{m.start:x}-{m.end:x}"
        try:
            size = os.stat(path).st_size
        except OSError:
            return None, None
        return size, file_handle(path)

    def decide(self, seg: "Segment", candidates: List[Candidate]) -> List[Decision]:
        """The segment's attachments among the compatible mappings of its shmid."""
        nattch = seg.nattch or 0
        home = [c for c in candidates if self.at_home(c[0])]
        if len(home) == len(candidates) and len(home) <= nattch:
            return _all(home, False)  # (a): the common case, nothing more to read
        if self.full_view and len(candidates) == nattch:
            return _all(candidates, False)  # (d): every VMA of it is among them
        probed = [(c, self.probe(*c)) for c in candidates]
        candidates = [c for c, (size, _) in probed if size is None or size == seg.size]
        handles = {id(c[1]): h for c, (_, h) in probed}
        home = [c for c in candidates if self.at_home(c[0])]
        if all(handles.get(id(m)) for _, m in candidates):
            return self._by_handle(seg, candidates, handles, home)
        return _by_namespace(candidates, home, nattch)

    def _by_handle(self, seg: "Segment", candidates: List[Candidate], handles: Dict[int, bytes],
                   home: List[Candidate]) -> List[Decision]:
        """(c)+(d): one segment is one handle; choose the group the counts and namespaces allow."""
        nattch = seg.nattch or 0
        groups: Dict[bytes, List[Candidate]] = {}
        for c in candidates:
            groups.setdefault(handles[id(c[1])], []).append(c)
        fits = (lambda n: n == nattch) if self.full_view else (lambda n: 0 < n <= nattch)
        eligible = [g for g in groups.values() if fits(len(g))]
        home_ids = {id(m) for _, m in home}
        at_home = [g for g in eligible if any(id(m) in home_ids for _, m in g)]
        if len(eligible) == 1 and (self.full_view or at_home):
            return _all(eligible[0], False)
        if len(at_home) == 1:
            return _all(at_home[0], False)
        unsure = at_home or eligible
        return [d for g in unsure for d in _all(g, True)]


def _all(candidates: List[Candidate], unsure: bool) -> List[Decision]:
    return [(pid, m, unsure) for pid, m in candidates]


def _by_namespace(candidates: List[Candidate], home: List[Candidate], nattch: int) -> List[Decision]:
    """Without handles (hugetlbfs, or not root): the process's namespace decides where the count
    allows it; where it does not, the attachment is kept and marked unsure."""
    if not nattch:
        return []  # the kernel counts no attachment of it: all of them are another's
    home_ids = {id(m) for _, m in home}
    away = [c for c in candidates if id(c[1]) not in home_ids]
    decided = _all(home, len(home) > nattch)
    if len(home) < nattch:
        decided += _all(away, True)
    return decided


def largest_huge_page(view: "View") -> int:
    from ...procfs.hugepages import read_pools
    return max(read_pools(view.sys_root), default=BASE_PAGE)


def match(segments: List["Segment"], view: "View"):
    """(segment, pid, mapping, unsure) for every attachment of the View's segments."""
    by_id = {s.id: s for s in segments}
    shmem_dev = view.shmem_dev
    huge_page = None
    candidates: Dict[int, List[Candidate]] = {}
    for pid, m in view.mappings():
        seg = by_id.get(m.inode)
        if seg is None or not m.path.startswith(SYSV_PREFIX):
            continue
        huge = None
        if shmem_dev is not None and m.dev != shmem_dev:
            if view.fstype(m.dev, pid) not in (None, "hugetlbfs"):
                continue  # a file named /SYSV... on some disk: no segment (the kernel's own
                # hugetlbfs mounts, where SHM_HUGETLB segments live, are in no mountinfo)
            huge = huge_page = huge_page or largest_huge_page(view)
        if compatible(seg, m, huge):
            candidates.setdefault(seg.id, []).append((pid, m))
    matcher = Matcher(view)
    for shmid, found in candidates.items():
        seg = by_id[shmid]
        for pid, m, unsure in matcher.decide(seg, found):
            yield seg, pid, m, unsure
