"""Read every limit and what is in use against it: IPC_INFO and SHM_INFO (the caller's IPC
namespace), /proc/sysvipc/shm, /proc/sys, statvfs of /dev/shm, /proc/meminfo,
RLIMIT_MEMLOCK and the huge page pools."""
from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, List, Optional

from ..procfs import SEM_PREFIX, read_text
from ..procfs import hugepages as hugepages_fs
from ..procfs.sysctl import read_sysctl_int
from . import IPCMNI, IPCMNI_EXTENDED, DevShm, HugePool, Limits, Resource
from ..system import group_name

if TYPE_CHECKING:
    from ..system import View


def collect(src: "View") -> Limits:
    """Every limit, read from the roots of the System `src` (shmctl_cli/system.py)."""
    from ..syscalls import PAGE_SIZE
    limits = Limits(PAGE_SIZE, src.shm_dir)
    read_sysv(limits, src)
    limits.dev_shm = read_dev_shm(src.shm_dir)
    limits.meminfo = read_meminfo(src.proc)
    limits.memlock = memlock()
    limits.hugetlb_shm_group = read_sysctl_int("vm.hugetlb_shm_group", src.proc)
    limits.hugetlb_shm_group_name = group_name(limits.hugetlb_shm_group)
    limits.pools = read_pools(src.sys_root, limits.meminfo.get("Hugepagesize"))
    return limits


def read_sysv(limits: Limits, src: "View", segments: Optional[list] = None) -> None:
    """IPC_INFO and SHM_INFO answer for the caller's IPC namespace, as shmget(2) sees it, and so
    do /proc/sysvipc/shm and kernel.shm* in /proc/sys: the View's namespace is joined first.
    `segments`: that namespace's SysV segments where the caller has them already (metrics),
    so that /proc/sysvipc/shm is not read twice."""
    from .. import syscalls
    src.enter_ipc()
    info = syscalls.ipc_info()
    usage = syscalls.shm_info()
    if segments is None:
        sizes, orphans = sysv_segments(src)
    else:
        sizes, orphans = [s.size for s in segments], sum(1 for s in segments if s.orphan)
    page = limits.page_size
    limits.resources = {
        "shmmax": Resource("shmmax", info.shmmax, max(sizes, default=0), "bytes", page,
                           "max segment size; used: the largest"),
        "shmall": Resource("shmall", info.shmall, usage.shm_tot, "pages", page,
                           "total SysV memory"),
        "shmmni": Resource("shmmni", info.shmmni, usage.used_ids, "segments", page, "max SysV segments"),
        "shmmin": Resource("shmmin", info.shmmin, None, "bytes", page, "min segment size"),
    }
    limits.segments, limits.orphans = usage.used_ids, orphans
    limits.shm_rmid_forced = read_sysctl_int("kernel.shm_rmid_forced", src.proc)
    limits.ipcmni = ipc_mni(src.proc)
    limits.ipc_namespace = src.ipc_ns


def sysv_segments(view: "View") -> tuple:
    """Sizes of the segments, and how many are orphans (nattch 0, creator gone): those that
    shm_rmid_forced=1 destroys the moment it is set."""
    from ..kinds.sysv import from_columns
    from ..procfs.sysvipc import read_sysvipc_shm
    try:
        segments = from_columns(read_sysvipc_shm(view.proc), view.pids, view)
    except OSError:
        return [], 0
    return [s.size for s in segments], sum(1 for s in segments if s.orphan)


def ipc_mni(proc: str) -> int:
    """IPCMNI, or 16M when the kernel was booted with ipcmni_extend."""
    try:
        extended = "ipcmni_extend" in read_text(f"{proc}/cmdline").split()
    except OSError:
        extended = False
    return IPCMNI_EXTENDED if extended else IPCMNI


def collect_namespaces(view: "View") -> list:
    """`limits --all-namespaces`: for every IPC namespace its SysV limits and use, and for every
    distinct /dev/shm (mount namespace) its capacity, the view's own first; as (Namespace,
    Limits) pairs, Limits holding only the part that namespace has."""
    from ..kinds import Places
    from ..model import Inventory
    from ..syscalls import PAGE_SIZE
    inventory = Inventory()
    places = Places(view, inventory)
    found = {}
    for where in places.views("sysv"):
        limits = found[("ipc", where.ipc_ns)] = Limits(PAGE_SIZE, "-")
        read_sysv(limits, where)
    for where in places.views("posix"):
        limits = found[("mnt", where.mnt_ns)] = Limits(PAGE_SIZE, where.shm_name)
        pid = where.ns_pid if where.ns_pid is not None else os.getpid()
        limits.dev_shm = read_dev_shm(where.shm_dir, where.fstype(where.shm_dev, pid))
        limits.dev_shm.path = where.shm_name
    view.enter_ipc()
    return [(n, found[(n.type, n.inode)]) for n in inventory.namespaces if (n.type, n.inode) in found]


def read_dev_shm(path: Optional[str], fstype: Optional[str] = None, objects: bool = True) -> DevShm:
    """statvfs of /dev/shm, its objects and what sparse files promise. `fstype`: the type where
    our own mount table does not show the filesystem (another mount namespace's /dev/shm).
    `objects=False`: the caller counts the objects itself (from segments it has)."""
    if path is None:
        return DevShm("-")
    try:
        st = os.statvfs(path)
    except OSError:
        return DevShm(path)
    size = st.f_blocks * st.f_frsize or None  # a tmpfs mounted with size=0 has no limit
    shm = DevShm(path, size, st.f_bavail * st.f_frsize if size else None,
                 (st.f_blocks - st.f_bfree) * st.f_frsize if size else None,
                 st.f_files or None, st.f_ffree if st.f_files else None)
    if objects:
        add_posix_objects(shm)
    add_promised(shm, fstype)
    return shm


def add_promised(shm: DevShm, fstype: Optional[str] = None) -> None:
    """What sparse files anywhere on that filesystem promise: the count `create` checks."""
    from ..kinds.files import SPARSE_FS, mount_of, promised_space
    try:
        dev = os.stat(shm.path).st_dev
    except OSError:
        return
    mount = mount_of(dev, shm.path)
    if mount.fstype is None and fstype is not None:  # not in our mount table: /dev/shm is its root
        mount = mount._replace(fstype=fstype)
    if mount.fstype in SPARSE_FS:
        shm.promised = promised_space(mount.point, dev)[0]


def add_posix_objects(shm: DevShm) -> None:
    """st_size is what an object declares, st_blocks what it occupies (never followed)."""
    try:
        entries = list(os.scandir(shm.path))
    except OSError:
        return
    for entry in entries:
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and not entry.name.startswith(SEM_PREFIX):
            allocated = st.st_blocks * 512
            shm.objects += 1
            shm.declared += st.st_size
            shm.allocated += allocated
            shm.unbacked += max(0, st.st_size - allocated)


def read_meminfo(proc: str) -> dict:
    from ..procfs.meminfo import read_meminfo as read
    try:
        return read(proc)
    except OSError:
        return {}


def memlock() -> tuple:
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    return tuple(None if v == resource.RLIM_INFINITY else v for v in (soft, hard))


def read_pools(sys_root: str, default_size: Optional[int]) -> List[HugePool]:
    per_node = hugepages_fs.read_node_pools(sys_root)
    return [HugePool(size, counters, size == default_size,
                     {node: pools[size] for node, pools in per_node.items() if size in pools})
            for size, counters in hugepages_fs.read_pools(sys_root).items()]
