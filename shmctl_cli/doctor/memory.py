"""The checks of memory: /dev/shm capacity (and the 64 MiB of containers), tmpfs overcommit,
huge page pools, and the Shmem that nothing listed explains. Pure functions of a Facts."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, List, Optional

from ..address import printable
from ..units import format_size, kernel_size
from .findings import Finding, shell_word

if TYPE_CHECKING:
    from .facts import Facts, ShmPlace

MIB = 1 << 20
CONTAINER_DEFAULT = 64 * MIB  # docker's and podman's --shm-size default
# processes that want a large /dev/shm (PostgreSQL's dynamic shared memory, Oracle's
# MEMORY_TARGET, SAP HANA, shared-memory transports); a comm is at most 15 characters
DATABASE_COMMS = ("postgres", "postmaster", "oracle", "mysqld", "mariadbd", "db2sysc", "hdbindexserver",
                  "sqlservr", "mongod", "redis-server", "clickhouse-serv")
DATABASE_PREFIXES = ("ora_", "postgres:", "hdb")


def is_database(comm: str) -> bool:
    return comm in DATABASE_COMMS or comm.startswith(DATABASE_PREFIXES)


def _round_mib(n: int) -> int:
    """A size to suggest: a quarter more, rounded up to a whole MiB."""
    return -(-(n + n // 4) // MIB) * MIB


# --- 2. /dev/shm capacity ---

def dev_shm_capacity(facts: "Facts") -> List[Finding]:
    found: List[Finding] = []
    for place in facts.dev_shm:
        found += _capacity(place) or _small(place)
    return found


def _place_words(place: "ShmPlace") -> str:
    return printable(place.label) + (f" (container {printable(place.container)})" if place.container else "")


def _resize_fix(place: "ShmPlace", size: int) -> str:
    words = kernel_size(size)
    if place.container:
        return f"recreate the container with --shm-size={words} (docker, podman), or shm_size: {words} in compose"
    return (f"mount -o remount,size={words} /dev/shm, and in /etc/fstab: "
            f"tmpfs /dev/shm tmpfs defaults,nosuid,nodev,size={words} 0 0")


def _capacity(place: "ShmPlace") -> List[Finding]:
    shm = place.dev_shm
    if not shm.size or shm.used is None:
        return []  # unlimited (size=0) or not reachable: tmpfs-overcommit speaks of the first
    promised = shm.promised if shm.promised is not None else shm.unbacked
    committed = shm.used + promised
    if committed * 10 <= shm.size * 9:
        return []
    over = committed > shm.size
    evidence = [f"statvfs {printable(shm.path)}: size {format_size(shm.size)}, used {format_size(shm.used)}, "
                f"free {format_size(shm.free)}",
                f"{shm.objects} POSIX objects declare {format_size(shm.declared)} (st_size) and occupy "
                f"{format_size(shm.allocated)} (st_blocks)",
                f"sparse files promise {format_size(promised)} more: committed {format_size(committed)} = "
                f"{committed * 100 // shm.size}% of the size"]
    summary = (f"{_place_words(place)}: objects may claim {format_size(committed)} but it holds "
               f"{format_size(shm.size)}: the writer that passes it gets SIGBUS" if over else
               f"{_place_words(place)} is {committed * 100 // shm.size}% committed (used + promised by sparse "
               "objects)")
    return [Finding("dev-shm", "critical" if over else "warning", summary, evidence,
                    _resize_fix(place, _round_mib(committed)))]


def _small(place: "ShmPlace") -> List[Finding]:
    """The container default: 64 MiB or less, with a database running there or an object
    that takes more than half of it."""
    shm = place.dev_shm
    if not shm.size or shm.size > CONTAINER_DEFAULT:
        return []
    databases = [(pid, comm) for pid, comm in place.comms if is_database(comm)]
    big = place.largest * 2 > shm.size
    if not databases and not big:
        return []
    evidence = [f"statvfs {printable(shm.path)}: size {format_size(shm.size)} (docker's and podman's default "
                "is 64 MiB)"]
    if databases:
        evidence.append("database-like processes there: "
                        + ", ".join(f"{pid} ({printable(comm)})" for pid, comm in databases[:5]))
    if big:
        evidence.append(f"the largest object declares {format_size(place.largest)}, over half of it")
    return [Finding("dev-shm", "warning", f"{_place_words(place)} is only {format_size(shm.size)}: too small "
                    "for a database's shared memory", evidence, _resize_fix(place, 1 << 30))]


# --- 3. tmpfs overcommit ---

def tmpfs_overcommit(facts: "Facts") -> List[Finding]:
    mem, swap = facts.meminfo.get("MemTotal"), facts.meminfo.get("SwapTotal", 0)
    if not mem or not facts.tmpfs:
        return []
    sizes = [(m, m.size if m.size is not None else mem // 2) for m in facts.tmpfs]
    unlimited = [m for m, size in sizes if size == 0]
    total = sum(size for _, size in sizes)
    if total <= mem + swap and not unlimited:
        return []
    sizes.sort(key=lambda pair: -pair[1])
    # the device tells apart mounts stacked on one path (a /dev/shm mounted over another)
    evidence = [f"{printable(m.point)} (dev {os.major(m.dev)}:{os.minor(m.dev)}): "
                f"{'unlimited (size=0)' if size == 0 else format_size(size)}"
                f"{' (the default: half of RAM)' if m.size is None else ''} ({m.where})" for m, size in sizes[:8]]
    if len(sizes) > 8:
        evidence.append(f"... and {len(sizes) - 8} more tmpfs")
    evidence.append(f"MemTotal {format_size(mem)} + SwapTotal {format_size(swap)} (/proc/meminfo)")
    biggest = sizes[0][0]
    what = (f"{len(unlimited)} tmpfs without a size limit" if unlimited else
            f"{len(sizes)} tmpfs may hold {format_size(total)}, more than RAM + swap ({format_size(mem + swap)})")
    return [Finding("tmpfs-overcommit", "warning",
                    f"{what}: filling them exhausts memory, and the OOM killer cannot free tmpfs pages",
                    evidence, f"mount -o remount,size={kernel_size(max(MIB, mem // 4 // MIB * MIB))} "
                              f"{shell_word(biggest.point)}  (and the same size= in /etc/fstab)")]


# --- 5. huge pages ---

def huge_pages(facts: "Facts") -> List[Finding]:
    found: List[Finding] = []
    for pool in facts.pools:
        found += _pool(pool, facts)
    default = next((p for p in facts.pools if p.default), None)
    for mount in facts.hugetlbfs:
        pool = next((p for p in facts.pools if p.size == (mount.pagesize or (default and default.size))), None)
        if pool is None or mount.size is None:
            continue
        room = (pool.persistent + pool.overcommit) * pool.size
        if mount.size > room:
            found.append(Finding("hugepages", "warning",
                                 f"hugetlbfs {printable(mount.point)} allows {format_size(mount.size)} but the "
                                 f"{format_size(pool.size)} pool can give {format_size(room)}: a writer past it "
                                 "gets SIGBUS",
                                 [f"size={mount.size} min_size={mount.min_size} pagesize={mount.pagesize} "
                                  f"({mount.where})", _pool_line(pool)],
                                 f"shmctl limits hugepages --size {kernel_size(pool.size)} "
                                 f"--count {-(-mount.size // pool.size)}"))
    return found


def _pool_line(pool) -> str:
    return (f"{format_size(pool.size)} pool: total {pool.total}, free {pool.free}, reserved {pool.reserved}, surplus "
            f"{pool.surplus}, overcommit {pool.overcommit} (/sys/kernel/mm/hugepages/hugepages-{pool.size // 1024}kB)")


def _pool(pool, facts: "Facts") -> List[Finding]:
    size, found = kernel_size(pool.size), []
    fix = f"shmctl limits hugepages --size {size} --count"
    if pool.reserved > pool.free:
        found.append(Finding("hugepages", "critical", f"{format_size(pool.size)} pool: {pool.reserved} pages reserved "
                             f"but only {pool.free} free: a mapping will fault with SIGBUS", [_pool_line(pool)],
                             f"{fix} {pool.total + pool.reserved - pool.free}"))
    segs = [s for s in facts.segments if s.kind == "sysv" and s.hugetlb and (pool.default or len(facts.pools) == 1)]
    need = sum(-(-s.size // pool.size) for s in segs)
    if need > pool.persistent:
        found.append(Finding("hugepages", "warning",
                             f"SHM_HUGETLB segments need {need} pages of {format_size(pool.size)}, the pool keeps "
                             f"{pool.persistent}: re-creating them after a restart fails (ENOMEM)",
                             [f"hugetlb segments: {', '.join(printable(s.address) for s in segs[:5])}",
                              _pool_line(pool)], f"{fix} {need} --persist"))
    if pool.surplus:
        found.append(Finding("hugepages", "warning",
                             f"{format_size(pool.size)} pool: {pool.surplus} surplus pages in use: they return to "
                             "the kernel when released and may not be had again",
                             [_pool_line(pool)], f"{fix} {pool.total} --persist"))
    elif pool.overcommit:
        found.append(Finding("hugepages", "info",
                             f"{format_size(pool.size)} pool may grow by {pool.overcommit} surplus pages on demand: "
                             "they vanish when released, and under fragmentation the kernel may not find them",
                             [_pool_line(pool)], f"{fix} {pool.persistent + pool.overcommit} --overcommit 0"))
    return found


# --- 9. Shmem that nothing listed explains ---

INFO_BYTES = 64 * MIB  # unexplained Shmem worth a word
WARN_BYTES = 1 << 30  # and a warning from 1 GiB, when that is also 10% of MemTotal
WARN_SHARE = 0.10


def unexplained_bytes(facts: "Facts") -> Optional[int]:
    shmem = facts.meminfo.get("Shmem")
    if shmem is None:
        return None
    tmpfs_used = sum(m.used for m in facts.tmpfs if m.used)
    return max(0, shmem - (facts.explained - facts.explained_tmpfs) - tmpfs_used)


def shmem_unexplained(facts: "Facts") -> List[Finding]:
    rest = unexplained_bytes(facts)
    if rest is None or rest < INFO_BYTES:
        return []
    mem = facts.meminfo.get("MemTotal") or 0
    warn = rest >= WARN_BYTES and rest >= mem * WARN_SHARE
    tmpfs_used = sum(m.used for m in facts.tmpfs if m.used)
    unreached = [m for m in facts.tmpfs if m.used is None]
    evidence = [f"Shmem {format_size(facts.meminfo['Shmem'])} (/proc/meminfo)",
                f"the listed segments outside those tmpfs (SysV, anonymous, memfd) explain "
                f"{format_size(facts.explained - facts.explained_tmpfs)} (rss)",
                f"files on {sum(1 for m in facts.tmpfs if m.used)} tmpfs use {format_size(tmpfs_used)} (statvfs)",
                f"unexplained: {format_size(rest)}; info from {format_size(INFO_BYTES)}, warning from 1 GiB and 10% "
                "of MemTotal"]
    if facts.hidden:
        evidence.append(f"{facts.hidden} processes' maps could not be read (their mappings are not listed)")
    if unreached:
        evidence.append(f"{len(unreached)} tmpfs not reachable from here (hidden under another mount, or in another "
                        "mount namespace)")
    fix = ("run as root: shmctl doctor -A  (other mount namespaces' tmpfs and every process), then shmctl list -u -A"
           if not facts.everywhere else "look for memory in tmpfs mounts hidden under others: findmnt -t tmpfs")
    return [Finding("shmem-unexplained", "warning" if warn else "info",
                    f"{format_size(rest)} of Shmem is in no segment listed and no tmpfs reachable", evidence, fix)]
