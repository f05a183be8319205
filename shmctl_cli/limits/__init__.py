"""The kernel limits on shared memory, as plain objects: SysV's shmmax/shmall/shmmni (per
IPC namespace), the /dev/shm tmpfs, memory, and the huge page pools (global). collect.py
reads them (through procfs/, which only reads); setting.py, persist.py, hugepages.py and
recommend.py change them, through write_value here."""
from __future__ import annotations

import os
from typing import Dict, List, Optional

# SHMMAX and SHMALL of include/uapi/linux/shm.h: ULONG_MAX - 2^24, "as large as possible"
KERNEL_DEFAULT = (1 << 64) - 1 - (1 << 24)
ULONG_MAX = (1 << 64) - 1
# a byte count this large is no limit: no segment, file or machine comes near it
UNLIMITED_BYTES = 1 << 63
IPCMNI, IPCMNI_EXTENDED = 32768, 1 << 24  # shmmni's ceiling, without and with ipcmni_extend
ROOT_HINT = "run as root"  # the hint of every refusal to change a limit without the right


def write_value(path: str, value: int) -> None:
    """One write(2) of the whole value to a /proc/sys or /sys file, as sysctl(8) does: the
    kernel parses it on write."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, f"{value}\n".encode())
    finally:
        os.close(fd)


def use_percent(used: Optional[int], limit: Optional[int]) -> Optional[float]:
    """USE%; Python divides big integers exactly, so a 2^64 limit gives 0.0, not nonsense."""
    if used is None or not limit:
        return None
    return round(used * 100 / limit, 2)


class Resource:
    """One SysV limit and what is in use against it. unit: bytes, pages or segments."""
    __slots__ = ("name", "limit", "used", "unit", "page_size", "description")

    def __init__(self, name: str, limit: Optional[int], used: Optional[int], unit: str, page_size: int,
                 description: str):
        self.name, self.limit, self.used, self.unit = name, limit, used, unit
        self.page_size, self.description = page_size, description

    def _bytes(self, value: Optional[int]) -> Optional[int]:
        if value is None or self.unit not in ("bytes", "pages"):
            return None
        return value * self.page_size if self.unit == "pages" else value

    @property
    def limit_bytes(self) -> Optional[int]:
        return self._bytes(self.limit)

    @property
    def used_bytes(self) -> Optional[int]:
        return self._bytes(self.used)

    @property
    def unlimited(self) -> bool:
        return self.limit_bytes is not None and self.limit_bytes >= UNLIMITED_BYTES

    @property
    def use_percent(self) -> Optional[float]:
        return use_percent(self.used, self.limit)


class DevShm:
    """The /dev/shm tmpfs (statvfs) and the POSIX objects in it. `unbacked` is what the
    objects declare (st_size) beyond what they occupy: pages a writer will still need.
    `promised` is the same for every regular file on the filesystem (subdirectories and
    semaphores too): what `create` counts before it makes more."""
    __slots__ = ("path", "size", "free", "used", "inodes", "inodes_free", "objects", "declared", "allocated",
                 "unbacked", "promised")

    def __init__(self, path: str, size: Optional[int] = None, free: Optional[int] = None,
                 used: Optional[int] = None, inodes: Optional[int] = None, inodes_free: Optional[int] = None,
                 objects: int = 0, declared: int = 0, allocated: int = 0, unbacked: int = 0):
        self.path, self.size, self.free, self.used = path, size, free, used
        self.inodes, self.inodes_free = inodes, inodes_free
        self.objects, self.declared, self.allocated, self.unbacked = objects, declared, allocated, unbacked
        self.promised: Optional[int] = None

    @property
    def committed(self) -> Optional[int]:
        """Used plus promised: what the tmpfs holds once every sparse file is written."""
        if self.used is None or self.promised is None:
            return None
        return self.used + self.promised

    @property
    def shortfall(self) -> int:
        """Bytes the objects may still claim that the tmpfs cannot give (0 when unlimited)."""
        if self.size is None or self.free is None:
            return 0
        return max(0, self.unbacked - self.free)


class HugePool:
    """One huge page size's pool. total counts surplus pages too (as nr_hugepages does)."""
    __slots__ = ("size", "total", "free", "reserved", "surplus", "overcommit", "default", "nodes")

    def __init__(self, size: int, counters: Dict[str, int], default: bool = False,
                 nodes: Optional[Dict[int, Dict[str, int]]] = None):
        self.size, self.default = size, default
        self.total = counters.get("nr_hugepages", 0)
        self.free = counters.get("free_hugepages", 0)
        self.reserved = counters.get("resv_hugepages", 0)
        self.surplus = counters.get("surplus_hugepages", 0)
        self.overcommit = counters.get("nr_overcommit_hugepages", 0)
        self.nodes = nodes or {}

    @property
    def persistent(self) -> int:
        return self.total - self.surplus

    @property
    def committed(self) -> int:
        """Pages in use or promised to a mapping (reserved pages are still counted free)."""
        return self.total - self.free + self.reserved


class Limits:
    """Everything `shmctl limits` shows, read in one go."""

    def __init__(self, page_size: int, shm_dir: str):
        self.page_size = page_size
        self.ipc_namespace: Optional[int] = None  # the IPC namespace's inode (ipc:INODE)
        self.ipcmni = IPCMNI
        self.resources: Dict[str, Resource] = {}
        self.shm_rmid_forced: Optional[int] = None
        self.segments = 0  # SysV segments in this namespace (SHM_INFO used_ids)
        self.orphans = 0  # of them, with no process attached and the creator gone
        self.dev_shm = DevShm(shm_dir)
        self.meminfo: Dict[str, int] = {}
        self.memlock: tuple = (None, None)  # RLIMIT_MEMLOCK (soft, hard) in bytes, None = unlimited
        self.hugetlb_shm_group: Optional[int] = None
        self.hugetlb_shm_group_name: Optional[str] = None
        self.pools: List[HugePool] = []

    def pool(self, size: int) -> Optional[HugePool]:
        return next((p for p in self.pools if p.size == size), None)

    @property
    def default_pool(self) -> Optional[HugePool]:
        return next((p for p in self.pools if p.default), None)

    @property
    def numa_nodes(self) -> int:
        return max((len(p.nodes) for p in self.pools), default=0)

    def warnings(self) -> List[str]:
        from ..units import format_size
        notes = []
        shm = self.dev_shm
        if shm.shortfall:
            notes.append(f"{shm.path}: POSIX objects declare {format_size(shm.unbacked)} more than they occupy, "
                         f"but only {format_size(shm.free)} is free: the writer that passes it gets SIGBUS "
                         f"(grow it: mount -o remount,size=... {shm.path})")
        shmmax, shmall = self.resources.get("shmmax"), self.resources.get("shmall")
        if shmmax and shmall and not shmmax.unlimited and shmmax.limit > shmall.limit_bytes:
            notes.append(f"shmmax {shmmax.limit} is more than shmall allows in total ({shmall.limit} pages = "
                         f"{shmall.limit_bytes} bytes): no segment can be larger than that")
        return notes
