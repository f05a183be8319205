"""`shmctl metrics`: what a Prometheus dashboard needs, collected once, as plain objects (a
Family per metric name, with its samples); render/prometheus.py writes the text exposition.

Everything is a gauge. Per segment only the `top` largest by memory (rss + swap; ties: size,
then address), so that the number of series stays bounded on a host with 32000 segments; the
rest are summed per kind and owner. Every segment is counted once: the SysV limits' use comes
from the segments collected here, not from a second read of /proc/sysvipc/shm. Label values
are the raw texts; the renderer makes them printable and escapes them."""
from __future__ import annotations

import heapq
import os
import time
from operator import attrgetter
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Sequence, Tuple

from . import REGISTRY
from .errors import ShmctlError

if TYPE_CHECKING:
    from .model import Inventory, Segment
    from .system import View

DEFAULT_TOP = 50
TEXTFILE_NAME = "shmctl.prom"  # what node_exporter's textfile collector reads: DIR/*.prom

SEGMENT_LABELS = ("kind", "address", "name", "owner", "status", "namespace", "container")

# Every family, in the order of the output: name -> help. The README and doctor refer to these names.
HELP: Dict[str, str] = {
    "shmctl_segment_size_bytes": "Size of one of the largest segments (by rss+swap; --top N of them).",
    "shmctl_segment_rss_bytes": "Resident memory of one of the largest segments.",
    "shmctl_segment_swap_bytes": "Swapped-out memory of one of the largest segments.",
    "shmctl_segment_attachments": "Attachments of one of the largest segments (nattch; at least this "
                                  "many where processes are hidden).",
    "shmctl_other_segments": "Segments not shown one by one (beyond --top), per kind and owner.",
    "shmctl_other_size_bytes": "Size of the segments not shown one by one, per kind and owner.",
    "shmctl_other_rss_bytes": "Resident memory of the segments not shown one by one, per kind and owner.",
    "shmctl_other_swap_bytes": "Swapped-out memory of the segments not shown one by one, per kind and owner.",
    "shmctl_segments": "Segments of each kind.",
    "shmctl_size_bytes": "Size of all segments of each kind.",
    "shmctl_rss_bytes": "Resident memory of all segments of each kind.",
    "shmctl_swap_bytes": "Swapped-out memory of all segments of each kind.",
    "shmctl_orphan_segments": "Orphans: segments no process holds (SysV: creator gone too).",
    "shmctl_orphan_size_bytes": "Size of the orphans.",
    "shmctl_orphan_rss_bytes": "Resident memory of the orphans.",
    "shmctl_deleted_held_segments": "Objects gone from every directory that processes still map or hold open.",
    "shmctl_deleted_held_rss_bytes": "Resident memory of the deleted objects still held.",
    "shmctl_meminfo_shmem_bytes": "Shmem in /proc/meminfo (free's \"shared\").",
    "shmctl_shmem_explained_bytes": "How much of Shmem the listed segments explain (rss of shmem-backed ones).",
    "shmctl_meminfo_hugetlb_bytes": "Hugetlb in /proc/meminfo (huge pages in use or reserved; not in Shmem).",
    "shmctl_sysv_shmmax_bytes": "kernel.shmmax: the largest SysV segment allowed, per IPC namespace.",
    "shmctl_sysv_shmall_bytes": "kernel.shmall in bytes: all SysV memory allowed, per IPC namespace.",
    "shmctl_sysv_shmmni": "kernel.shmmni: the most SysV segments allowed, per IPC namespace.",
    "shmctl_sysv_used_bytes": "SysV memory in use against shmall (whole pages), per IPC namespace.",
    "shmctl_sysv_used_segments": "SysV segments in use against shmmni, per IPC namespace.",
    "shmctl_sysv_largest_segment_bytes": "The largest SysV segment (against shmmax), per IPC namespace.",
    "shmctl_dev_shm_size_bytes": "Size of the /dev/shm tmpfs, per filesystem (absent: no size limit).",
    "shmctl_dev_shm_used_bytes": "Bytes used in the /dev/shm tmpfs.",
    "shmctl_dev_shm_avail_bytes": "Bytes still free in the /dev/shm tmpfs.",
    "shmctl_dev_shm_promised_bytes": "What sparse files on the /dev/shm tmpfs declare beyond what they occupy: "
                                     "pages a writer will still need.",
    "shmctl_dev_shm_objects": "POSIX shared-memory objects in /dev/shm (semaphores not counted).",
    "shmctl_hugepages": "Huge pages of each pool, by state (total counts surplus pages too).",
    "shmctl_hugepages_overcommit": "nr_overcommit_hugepages of each pool.",
    "shmctl_hidden_processes": "Processes whose mappings could not be read (counts may miss their segments).",
    "shmctl_collect_duration_seconds": "How long shmctl took to collect these metrics.",
    "shmctl_last_collect_timestamp_seconds": "When shmctl collected these metrics (Unix time).",
}


class Sample:
    """One value of a family and its labels ((name, value) pairs, in output order)."""
    __slots__ = ("labels", "value")

    def __init__(self, labels: Tuple[Tuple[str, str], ...], value: float):
        self.labels, self.value = labels, value

    def __repr__(self) -> str:
        return f"Sample({dict(self.labels)!r}, {self.value!r})"


class Family:
    """One metric name: its help, its type and its samples."""
    __slots__ = ("name", "help", "type", "samples")

    def __init__(self, name: str, help: str, type: str = "gauge"):
        self.name, self.help, self.type = name, help, type
        self.samples: List[Sample] = []


class Metrics:
    """The families of one collection, every one of HELP present (with no samples where
    nothing was measured), in HELP's order."""

    def __init__(self):
        self.by_name = {name: Family(name, text) for name, text in HELP.items()}

    def add(self, metric: str, value: Optional[float], /, **labels: str) -> None:
        """A sample; None (unknown) adds nothing."""
        if value is not None:
            self.by_name[metric].samples.append(Sample(tuple(labels.items()), value))

    def families(self) -> List[Family]:
        return list(self.by_name.values())


def collect(view: "View", kinds: Sequence[str], top: int = DEFAULT_TOP, everywhere: bool = True) -> List[Family]:
    """Every family for the wanted kinds, in every namespace (`everywhere`) or the view's own.
    The SysV limits are there when sysv is one of the kinds, /dev/shm when posix is."""
    from . import kinds as backend
    started = time.monotonic()
    out = Metrics()
    inv = backend.collect(kinds, view, everywhere=everywhere)
    inv.meminfo = backend.meminfo(view)
    places = Places(view, inv)
    add_segments(out, inv.segments, top, places)
    add_kind_totals(out, inv.segments, kinds)
    add_memory(out, inv)
    if "sysv" in kinds:
        add_sysv_limits(out, inv, view, places)
    if "posix" in kinds:
        add_dev_shm(out, inv, view, places)
    add_hugepages(out, view, inv.meminfo)
    out.add("shmctl_hidden_processes", inv.hidden_processes)
    out.add("shmctl_collect_duration_seconds", round(time.monotonic() - started, 6))
    out.add("shmctl_last_collect_timestamp_seconds", round(time.time(), 3))
    return out.families()


class Places:
    """The namespace label of a segment or a place: "" for the run's own, else TYPE:INODE."""

    def __init__(self, view: "View", inv: "Inventory"):
        self.home = view.home
        self.namespaces = inv.namespaces

    def label(self, kind: str, namespace: Optional[int]) -> str:
        ns_type = REGISTRY[kind]["namespace"]
        return "" if namespace is None or namespace == self.home[ns_type] else f"{ns_type}:{namespace}"

    def looked_into(self, ns_type: str, kind: str):
        """The namespaces whose places of `kind` were looked into (a /dev/shm that two mount
        namespaces share once); empty when the run looked only from its own (--here)."""
        return [n for n in self.namespaces if n.type == ns_type and kind in n.kinds]


# --- segments ---

def memory_order(seg: "Segment") -> tuple:
    """The key of the top-N choice: the most memory first, then the largest, then by address."""
    return (-((seg.rss or 0) + (seg.swap or 0)), -seg.size, seg.address)


def owner(uid: Optional[int]) -> str:
    from .system import user_name
    return "" if uid is None else user_name(uid)


def add_segments(out: Metrics, segments: List["Segment"], top: int, places: Places) -> None:
    """The `top` largest one by one; the others summed per kind and owner."""
    shown = heapq.nsmallest(top, segments, key=memory_order) if top else []
    for seg in shown:
        labels = dict(zip(SEGMENT_LABELS, (seg.kind, seg.address, seg.name or "", owner(seg.uid),
                                           ",".join(seg.status), places.label(seg.kind, seg.namespace),
                                           seg.container or "")))
        out.add("shmctl_segment_size_bytes", seg.size, **labels)
        out.add("shmctl_segment_rss_bytes", seg.rss or 0, **labels)
        out.add("shmctl_segment_swap_bytes", seg.swap or 0, **labels)
        out.add("shmctl_segment_attachments", seg.nattch, **labels)
    if len(shown) == len(segments):
        return
    picked = set(map(id, shown))
    groups: Dict[Tuple[str, Optional[int]], List["Segment"]] = {}
    for seg in segments:
        if id(seg) not in picked:
            groups.setdefault((seg.kind, seg.uid), []).append(seg)
    for (kind, uid), segs in sorted(groups.items(), key=lambda item: (item[0][0], owner(item[0][1]))):
        labels = {"kind": kind, "owner": owner(uid)}
        count, size, rss, swap = totals(segs)
        out.add("shmctl_other_segments", count, **labels)
        out.add("shmctl_other_size_bytes", size, **labels)
        out.add("shmctl_other_rss_bytes", rss, **labels)
        out.add("shmctl_other_swap_bytes", swap, **labels)


def totals(segs: List["Segment"]) -> Tuple[int, int, int, int]:
    """Count, size, rss and swap (unknown as 0), in C-level passes."""
    return (len(segs), sum(map(attrgetter("size"), segs)), sum(filter(None, map(attrgetter("rss"), segs))),
            sum(filter(None, map(attrgetter("swap"), segs))))


def add_kind_totals(out: Metrics, segments: Iterable["Segment"], kinds: Sequence[str]) -> None:
    by_kind: Dict[str, List["Segment"]] = {kind: [] for kind in kinds}
    for seg in segments:
        by_kind[seg.kind].append(seg)
    for kind, segs in by_kind.items():
        count, size, rss, swap = totals(segs)
        out.add("shmctl_segments", count, kind=kind)
        out.add("shmctl_size_bytes", size, kind=kind)
        out.add("shmctl_rss_bytes", rss, kind=kind)
        out.add("shmctl_swap_bytes", swap, kind=kind)
        count, size, rss, _ = totals([s for s in segs if s.orphan])
        out.add("shmctl_orphan_segments", count, kind=kind)
        out.add("shmctl_orphan_size_bytes", size, kind=kind)
        out.add("shmctl_orphan_rss_bytes", rss, kind=kind)
        count, _, rss, _ = totals([s for s in segs if s.deleted])
        out.add("shmctl_deleted_held_segments", count, kind=kind)
        out.add("shmctl_deleted_held_rss_bytes", rss, kind=kind)


def add_memory(out: Metrics, inv: "Inventory") -> None:
    from .render import shmem_explained
    out.add("shmctl_meminfo_shmem_bytes", inv.meminfo.get("Shmem"))
    out.add("shmctl_shmem_explained_bytes", shmem_explained(inv.segments))
    out.add("shmctl_meminfo_hugetlb_bytes", inv.meminfo.get("Hugetlb"))


# --- limits of each place ---

def place_views(view: "View", places: Places, ns_type: str, kind: str) -> List[Tuple[str, Optional[str], "View"]]:
    """(namespace label, container, View) of every place of `kind` looked into, the own first."""
    found = places.looked_into(ns_type, kind)
    if not found:
        return [("", None, view)]
    return [("" if n.home else n.label, n.container, view if n.home else view.sibling(n.pid)) for n in found]


def add_sysv_limits(out: Metrics, inv: "Inventory", view: "View", places: Places) -> None:
    """shmmax, shmall, shmmni and their use in each IPC namespace, from the segments collected."""
    from .limits import Limits
    from .limits.collect import read_sysv
    from .syscalls import PAGE_SIZE
    by_namespace: Dict[Optional[int], List["Segment"]] = {}
    for seg in inv.segments:
        if seg.kind == "sysv":
            by_namespace.setdefault(seg.namespace, []).append(seg)
    try:
        for label, _container, where in place_views(view, places, "ipc", "sysv"):
            limits = Limits(PAGE_SIZE, "-")
            try:
                read_sysv(limits, where, by_namespace.get(where.ipc_ns, []))
            except ShmctlError:
                continue  # its last process ended since the collection: the namespace is gone
            resources = limits.resources
            out.add("shmctl_sysv_shmmax_bytes", resources["shmmax"].limit, namespace=label)
            out.add("shmctl_sysv_shmall_bytes", resources["shmall"].limit_bytes, namespace=label)
            out.add("shmctl_sysv_shmmni", resources["shmmni"].limit, namespace=label)
            out.add("shmctl_sysv_used_bytes", resources["shmall"].used_bytes, namespace=label)
            out.add("shmctl_sysv_used_segments", resources["shmmni"].used, namespace=label)
            out.add("shmctl_sysv_largest_segment_bytes", resources["shmmax"].used, namespace=label)
    finally:
        view.enter_ipc()  # back to the run's own IPC namespace


def add_dev_shm(out: Metrics, inv: "Inventory", view: "View", places: Places) -> None:
    """Each distinct /dev/shm: statvfs and what sparse files promise; its objects counted from
    the POSIX segments collected (not scanned a second time)."""
    from .limits.collect import read_dev_shm
    objects: Dict[Optional[int], int] = {}  # by the device of their /dev/shm: the place itself
    for seg in inv.segments:
        if seg.kind == "posix" and not seg.deleted and not seg.semaphore:
            objects[seg.device] = objects.get(seg.device, 0) + 1
    for label, container, where in place_views(view, places, "mnt", "posix"):
        pid = where.ns_pid if where.ns_pid is not None else os.getpid()
        try:
            shm_dir = where.shm_dir
        except ShmctlError:
            continue  # as above: the mount namespace ended since the collection
        shm = read_dev_shm(shm_dir, where.fstype(where.shm_dev, pid) if shm_dir else None, objects=False)
        labels = {"namespace": label, "path": "/dev/shm" if label else where.shm_name, "container": container or ""}
        out.add("shmctl_dev_shm_size_bytes", shm.size, **labels)
        out.add("shmctl_dev_shm_used_bytes", shm.used, **labels)
        out.add("shmctl_dev_shm_avail_bytes", shm.free, **labels)
        out.add("shmctl_dev_shm_promised_bytes", shm.promised, **labels)
        out.add("shmctl_dev_shm_objects", objects.get(where.shm_dev, 0) if shm_dir else None, **labels)


def add_hugepages(out: Metrics, view: "View", meminfo: Dict[str, int]) -> None:
    from .limits.collect import read_pools
    for pool in sorted(read_pools(view.sys_root, meminfo.get("Hugepagesize")), key=attrgetter("size")):
        size = str(pool.size)
        for state in ("total", "free", "reserved", "surplus"):
            out.add("shmctl_hugepages", getattr(pool, state), size_bytes=size, state=state)
        out.add("shmctl_hugepages_overcommit", pool.overcommit, size_bytes=size)


# --- node_exporter's textfile collector ---

def write_textfile(directory: str, text: str) -> str:
    """DIR/shmctl.prom replaced atomically (outfile.py: a fresh temp file in DIR, fsync, rename;
    mode 0644; nothing at the name ever opened or followed): the collector reads the old file
    or the new one, never half of one. Returns the path written."""
    from .outfile import local_error, replaced_file
    path = os.path.join(directory, TEXTFILE_NAME)
    data = memoryview(text.encode())
    with replaced_file(path, mode=0o644) as fd:
        try:
            while data:
                data = data[os.write(fd, data):]
        except OSError as exc:
            raise local_error(exc, f"write {path}") from None
    return path
