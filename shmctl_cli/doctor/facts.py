"""Everything the checks look at, gathered once from a View's roots (proc, sys_root, shm_dir,
etc) into plain objects: the checks are pure functions of a Facts, and the table tests
build one by hand."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, List, NamedTuple, Optional, Tuple

from .config import Setting

if TYPE_CHECKING:
    from ..limits import DevShm, HugePool, Limits
    from ..model import Segment
    from ..system import View

CAP_IPC_LOCK = 14


class SysvPlace(NamedTuple):
    """One IPC namespace: its label (ipc:INODE, and the container), inode and SysV limits."""
    label: str
    namespace: Optional[int]
    limits: "Limits"


class ShmPlace(NamedTuple):
    """One /dev/shm filesystem: where, whose, what it holds, and who runs there."""
    label: str  # "/dev/shm", or "/dev/shm of mnt:INODE"
    container: Optional[str]
    dev_shm: "DevShm"
    comms: List[Tuple[int, str]]  # the processes of that mount namespace
    largest: int = 0  # the largest POSIX object's declared size


class TmpfsMount(NamedTuple):
    dev: int
    point: str
    size: Optional[int]  # bytes; None: the default (half of RAM); 0: unlimited
    used: Optional[int]  # statvfs, where this mount namespace's mount could be reached
    where: str  # "mountinfo of pid N" (the source)


class HugeMount(NamedTuple):
    point: str
    pagesize: Optional[int]
    size: Optional[int]
    min_size: Optional[int]
    where: str


class Locker(NamedTuple):
    """A process of a uid that owns locked segments: its RLIMIT_MEMLOCK and CAP_IPC_LOCK."""
    pid: int
    comm: str
    memlock: Optional[int]  # soft limit in bytes, None = unlimited
    cap_ipc_lock: bool


class Facts:
    def __init__(self, page_size: int = 4096):
        self.page_size = page_size
        self.everywhere = False
        self.logind: Optional[str] = None  # how systemd-logind is known to be present
        self.remove_ipc = Setting(True, "the compiled default")
        self.system_uid_max: Tuple[int, str] = (999, "the default UID_MIN 1000")
        self.segments: List["Segment"] = []
        self.hidden = 0
        self.sysv: List[SysvPlace] = []
        self.dev_shm: List[ShmPlace] = []
        self.tmpfs: List[TmpfsMount] = []
        self.meminfo: Dict[str, int] = {}
        self.pools: List["HugePool"] = []
        self.hugetlbfs: List[HugeMount] = []
        self.lockers: Dict[int, List[Locker]] = {}
        self.expect: Optional[int] = None
        self.explained = 0  # render.summarize's: rss of the listed segments that Shmem counts
        self.explained_tmpfs = 0  # of it, what lives on a tmpfs counted in self.tmpfs's `used`


def default_view() -> "View":
    """The View of a doctor run: the system's roots; SHMCTL_ETC_DIR redirects /etc (tests)."""
    from ..system import View
    return View(etc=os.environ.get("SHMCTL_ETC_DIR") or "/etc")


def gather(view: "View", everywhere: bool = False, expect: Optional[int] = None) -> Facts:
    from .. import KINDS, kinds, render
    from ..limits.collect import collect, read_pools
    from ..syscalls import PAGE_SIZE
    from . import config
    facts = Facts(PAGE_SIZE)
    facts.everywhere, facts.expect = everywhere, expect
    inventory = kinds.collect(KINDS, view, processes=True, everywhere=everywhere)
    facts.segments, facts.hidden = inventory.segments, inventory.hidden_processes
    limits = collect(view)
    facts.meminfo = inventory.meminfo = limits.meminfo
    facts.pools = read_pools(view.sys_root, limits.meminfo.get("Hugepagesize"))
    _places(facts, view, limits, everywhere)
    _mounts(facts, view, everywhere)
    facts.explained = render.summarize(inventory, KINDS)["explained"]
    facts.explained_tmpfs = _explained_on(facts)
    facts.logind = config.logind_presence(view.etc, view.proc, {pid: view.comm(pid) for pid in view.pids})
    facts.remove_ipc = config.read_remove_ipc(view.etc)
    facts.system_uid_max = config.read_system_uid_max(view.etc)
    facts.lockers = _lockers(facts.segments, view)
    return facts


def _places(facts: Facts, view: "View", limits: "Limits", everywhere: bool) -> None:
    """SysV limits per IPC namespace, /dev/shm per mount namespace (every one with -A)."""
    members = view.host.members("mnt")
    comms = lambda ns: [(pid, view.comm(pid)) for pid in members.get(ns, [])]  # noqa: E731
    if not everywhere:
        facts.sysv = [SysvPlace(f"ipc:{view.ipc_ns}", view.ipc_ns, limits)]
        facts.dev_shm = [ShmPlace(view.shm_name, None, limits.dev_shm, comms(view.mnt_ns),
                                  _largest(facts, None))]
        return
    from ..limits.collect import collect_namespaces
    for namespace, theirs in collect_namespaces(view):
        if namespace.type == "ipc":
            where = f" ({namespace.container})" if namespace.container else ""
            facts.sysv.append(SysvPlace(namespace.label + where, namespace.inode, theirs))
        else:
            shm = theirs.dev_shm
            facts.dev_shm.append(ShmPlace(shm.path, namespace.container, shm, comms(namespace.inode),
                                          _largest(facts, namespace.inode)))


def _largest(facts: Facts, namespace: Optional[int]) -> int:
    """The largest POSIX object (in that mount namespace's /dev/shm; None: the only one)."""
    return max((s.size for s in facts.segments if s.kind == "posix" and not s.semaphore and not s.deleted
                and (namespace is None or s.namespace == namespace)), default=0)


def _mounts(facts: Facts, view: "View", everywhere: bool) -> None:
    """tmpfs and hugetlbfs mounts, each superblock once: ours, and with -A every mount
    namespace's (one process's mountinfo each)."""
    from ..procfs import read_text
    pids = ["self"] + ([members[0] for ns, members in view.host.members("mnt").items()
                        if ns != view.mnt_ns] if everywhere else [])
    seen = set()
    for pid in pids:
        try:
            text = read_text(f"{view.proc}/{pid}/mountinfo")
        except OSError:
            continue
        where = f"{view.proc}/{pid}/mountinfo"
        for line in text.splitlines():
            mount = parse_mount_line(line)
            if mount is None or mount[0] in seen:
                continue
            dev, point, fstype, options = mount
            if fstype == "tmpfs":
                seen.add(dev)
                used = _statvfs_used(point, dev) if pid == "self" else None
                facts.tmpfs.append(TmpfsMount(dev, point, tmpfs_size(options), used, where))
            elif fstype == "hugetlbfs":
                seen.add(dev)
                facts.hugetlbfs.append(HugeMount(point, _size(options.get("pagesize")), _size(options.get("size")),
                                                 _size(options.get("min_size")), where))


def parse_mount_line(line: str) -> Optional[Tuple[int, str, str, Dict[str, str]]]:
    """(dev, mount point, fstype, super options) of one mountinfo line."""
    from ..procfs.mountinfo import parse_mounts
    mounts = parse_mounts(line)
    if not mounts:
        return None
    tail = line.partition(" - ")[2].split()
    options = dict(o.partition("=")[::2] for o in (tail[2].split(",") if len(tail) > 2 else []))
    return mounts[0].dev, mounts[0].point, mounts[0].fstype, options


def tmpfs_size(options: Dict[str, str]) -> Optional[int]:
    """size= as mountinfo shows it (always in k; absent for the default, half of RAM)."""
    return _size(options.get("size"))


def _size(text: Optional[str]) -> Optional[int]:
    """`1024k`, `2M`, `4194304`: the kernel's own spellings in mountinfo."""
    if not text:
        return None
    units = {"k": 1 << 10, "K": 1 << 10, "m": 1 << 20, "M": 1 << 20, "g": 1 << 30, "G": 1 << 30}
    try:
        return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
    except ValueError:
        return None


def _statvfs_used(point: str, dev: int) -> Optional[int]:
    """Bytes in use, only where the path still leads to that very filesystem (a mount over
    it hides it) and no symlink was followed on the way."""
    try:
        if os.lstat(point).st_dev != dev:
            return None
        st = os.statvfs(point)
    except OSError:
        return None
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def _explained_on(facts: Facts) -> int:
    """The explained rss of segments whose pages a tmpfs statvfs already counts."""
    counted = {m.dev for m in facts.tmpfs if m.used is not None}
    return sum(s.rss or 0 for s in facts.segments
               if not s.hugetlb and s.kind != "sysv" and s.device in counted and s.backing in (None, "tmpfs"))


def _lockers(segments: List["Segment"], view: "View") -> Dict[int, List[Locker]]:
    """For every uid but root that owns SHM_LOCKed segments: its processes' limits."""
    uids = {s.uid for s in segments if s.locked and s.uid}
    found: Dict[int, List[Locker]] = {uid: [] for uid in uids}
    if not uids:
        return found
    for pid in sorted(view.pids):
        uid = view.uid_of(pid)
        if uid in found:
            limits = read_memlock(pid, view.proc)
            if limits is not False:
                found[uid].append(Locker(pid, view.comm(pid), limits, has_cap_ipc_lock(pid, view.proc)))
    return found


def parse_memlock(text: str):
    """The soft "Max locked memory" of /proc/PID/limits: bytes, None = unlimited, False = absent."""
    for line in text.splitlines():
        if line.startswith("Max locked memory"):
            soft = line[len("Max locked memory"):].split()[0]
            return None if soft == "unlimited" else int(soft)
    return False


def read_memlock(pid: int, proc: str):
    from ..procfs import read_text
    try:
        return parse_memlock(read_text(f"{proc}/{pid}/limits"))
    except (OSError, ValueError):
        return False


def has_cap_ipc_lock(pid: int, proc: str) -> bool:
    from ..procfs import read_text
    try:
        text = read_text(f"{proc}/{pid}/status")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> CAP_IPC_LOCK & 1)
    return False
