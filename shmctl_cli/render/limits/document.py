"""`shmctl limits --json` without -o: one document, its figures grouped by subject (sysv,
dev_shm, memory, hugepages), numbers as numbers, sizes in bytes."""
from __future__ import annotations

from typing import Optional

from ...limits import HugePool, Limits, Resource
from .. import to_json


def resource_dict(r: Resource) -> dict:
    data = {"limit": r.limit, "used": r.used, "use_percent": r.use_percent, "unit": r.unit}
    if r.unit == "pages":
        data.update(limit_bytes=r.limit_bytes, used_bytes=r.used_bytes)
    if r.unit in ("bytes", "pages"):
        data["unlimited"] = r.unlimited
    return data


def pool_dict(p: HugePool) -> dict:
    return {"size": p.size, "total": p.total, "persistent": p.persistent, "free": p.free, "reserved": p.reserved,
            "surplus": p.surplus, "overcommit": p.overcommit, "default": p.default,
            "nodes": [{"node": n, "total": c.get("nr_hugepages"), "free": c.get("free_hugepages"),
                       "surplus": c.get("surplus_hugepages")} for n, c in p.nodes.items()]}


def dev_shm_dict(limits: Limits) -> dict:
    shm = limits.dev_shm
    inodes_used = shm.inodes - shm.inodes_free if shm.inodes is not None else None
    return {"path": shm.path, "size": shm.size, "used": shm.used, "free": shm.free,
            "use_percent": percent(shm.used, shm.size), "inodes": shm.inodes, "inodes_used": inodes_used,
            "inodes_free": shm.inodes_free, "posix_objects": shm.objects, "posix_declared": shm.declared,
            "posix_allocated": shm.allocated, "posix_unbacked": shm.unbacked, "shortfall": shm.shortfall,
            "promised": shm.promised, "committed": shm.committed}


def limits_dict(limits: Limits) -> dict:
    """The namespace as JSON spells it everywhere: the inode, a number (`namespace` in list
    and stat); `ipc:INODE` is its text form."""
    mem = limits.meminfo
    sysv = {name: resource_dict(r) for name, r in limits.resources.items()}
    sysv.update(shm_rmid_forced=limits.shm_rmid_forced, ipcmni=limits.ipcmni, segments=limits.segments,
                orphans=limits.orphans)
    return {
        "ipc_namespace": limits.ipc_namespace, "page_size": limits.page_size, "sysv": sysv,
        "dev_shm": dev_shm_dict(limits),
        "memory": {"mem_total": mem.get("MemTotal"), "shmem": mem.get("Shmem"),
                   "shmem_huge_pages": mem.get("ShmemHugePages"), "hugetlb": mem.get("Hugetlb"),
                   "memlock_soft": limits.memlock[0], "memlock_hard": limits.memlock[1],
                   "hugetlb_shm_group": limits.hugetlb_shm_group,
                   "hugetlb_shm_group_name": _printable(limits.hugetlb_shm_group_name)},
        "hugepages": {"default_size": mem.get("Hugepagesize"), "pools": [pool_dict(p) for p in limits.pools]},
        "warnings": limits.warnings(),
    }


def limits_json(limits: Limits) -> str:
    return to_json(limits_dict(limits))


def _printable(text: Optional[str]) -> Optional[str]:
    from ...address import printable
    return None if text is None else printable(text)


def percent(used: Optional[int], limit: Optional[int]) -> Optional[float]:
    from ...limits import use_percent
    return use_percent(used, limit)
