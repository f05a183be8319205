"""Creating a SysV segment: the key, the kernel limits it meets (shmmax, shmmni, shmall, huge
pages, memlock), shmget with IPC_EXCL, and adopting an existing one only when asked."""
from __future__ import annotations

import errno
import os
from typing import TYPE_CHECKING, List, Optional

from ...errors import Conflict, LimitReached, PermissionDenied, ShmctlError, UsageError
from ...units import format_key
from ...system import View
from .. import adopt
from .segment import _stat, address_of, open_segment

if TYPE_CHECKING:
    from ...address import Address


class SysvRequest:
    def __init__(self, key: int, size: int, mode: int = 0o600, hugetlb: bool = False,
                 huge_size: Optional[int] = None, lock: bool = False, exist_ok: bool = False,
                 dry_run: bool = False, fill=None, owner: Optional[int] = None, larger_ok: bool = False):
        self.key, self.size, self.mode, self.hugetlb, self.huge_size = key, size, mode, hugetlb, huge_size
        self.lock, self.exist_ok, self.dry_run, self.fill = lock, exist_ok, dry_run, fill
        self.wanted = adopt.Wanted(size, mode, owner, larger_ok)


def _existing(req: SysvRequest, plan: List[str], view: View):
    """The segment that already has the key, adopted under --exist-ok only when it is what
    was asked for. Anyone may take a free key first, and an owner may even hand a segment
    to us with IPC_SET: its creator (cuid) stays theirs, so both uid and cuid must match."""
    from ... import syscalls
    from ..files import Created
    if req.key == 0:
        return None
    try:
        shmid = syscalls.shmget(req.key, 0, 0)
    except ShmctlError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    where = f"create sysv:key={format_key(req.key)}"
    ds = _stat_existing(shmid, where)
    size = ds.shm_segsz
    if not req.exist_ok:
        raise Conflict(where, f"the key exists already: sysv:{shmid}, {size} bytes",
                       "--exist-ok uses it; shmctl never reuses a key silently")
    adopt.check(f"{where}: sysv:{shmid}", req.wanted, ds.shm_perm.uid, ds.shm_perm.mode, cuid=ds.shm_perm.cuid)
    if req.fill is not None:
        raise Conflict(where, f"the key exists already (sysv:{shmid}): --from is not written into an existing "
                       "segment", f"shmctl write sysv:{shmid} FILE writes into it")
    refusal = adopt.size_refusal(f"{where}: sysv:{shmid}", req.wanted, size,
                                 "a SysV segment cannot grow: remove it and create it anew")
    if refusal is not None:
        raise refusal
    plan.append(f"sysv:{shmid} exists with {size} bytes: used as it is")
    return Created(address_of(shmid, view), plan)


def _stat_existing(shmid: int, where: str):
    try:
        return _stat(shmid, f"sysv:{shmid}")
    except PermissionDenied:
        raise Conflict(where, f"the key exists already (sysv:{shmid}) and you may not even read its "
                       "permissions: it is not yours", "choose another key") from None


def huge_page_size(requested: Optional[int], proc: str) -> int:
    if requested:
        return requested
    from ...procfs.meminfo import read_meminfo
    return read_meminfo(proc).get("Hugepagesize", 2 << 20)


def huge_pages_available(page_size: int) -> Optional[int]:
    """Pages a new hugetlb segment may take: free minus reserved, plus overcommit room."""
    from ...procfs import hugepages
    read = hugepages.read_counters(os.path.dirname(hugepages.pool_path(page_size, "")), hugepages.POOL_FIELDS)
    if len(read) < len(hugepages.POOL_FIELDS):
        return None  # no pool of that size
    return (read["free_hugepages"] - read["resv_hugepages"]
            + max(0, read["nr_overcommit_hugepages"] - read["surplus_hugepages"]))


def _has_capability(bit: int, proc: str) -> bool:
    with open(f"{proc}/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> bit & 1)
    return False


CAP_IPC_LOCK = 14


def check_limits(req: SysvRequest, where: str, proc: str) -> List[str]:
    """Each kernel limit the new segment meets, as plan lines; LimitReached for the first it
    would pass. ENOSPC alone cannot tell shmmni from shmall: SHM_INFO and IPC_INFO can."""
    from ... import syscalls
    info, usage = syscalls.ipc_info(), syscalls.shm_info()
    pages = -(-req.size // syscalls.PAGE_SIZE)
    lines = [f"shmmax: {req.size} of {info.shmmax} bytes",
             f"shmmni: segment {usage.used_ids + 1} of {info.shmmni}",
             f"shmall: {usage.shm_tot} + {pages} of {info.shmall} pages"]
    if req.size > info.shmmax:
        raise LimitReached(where, f"{req.size} bytes is more than shmmax ({info.shmmax})",
                           f"shmctl limits set shmmax={req.size}")
    if usage.used_ids >= info.shmmni:
        raise LimitReached(where, f"all {info.shmmni} segments that shmmni allows exist",
                           "shmctl limits set shmmni=N, or shmctl rm --orphans")
    if usage.shm_tot + pages > info.shmall:
        raise LimitReached(where, f"{pages} more pages would pass shmall ({usage.shm_tot} of {info.shmall} pages "
                           "in use)", f"shmctl limits set shmall={usage.shm_tot + pages}")
    if req.hugetlb:
        lines.append(_check_huge_pages(req, where, proc))
    if req.lock and not _has_capability(CAP_IPC_LOCK, proc):
        import resource
        soft = resource.getrlimit(resource.RLIMIT_MEMLOCK)[0]
        lines.append(f"memlock: {req.size} of {soft} bytes (RLIMIT_MEMLOCK)")
        if soft != resource.RLIM_INFINITY and req.size > soft:
            raise LimitReached(where, f"--lock needs {req.size} bytes of RLIMIT_MEMLOCK, which is {soft}",
                               "raise ulimit -l, or run with CAP_IPC_LOCK")
    return lines


def _check_huge_pages(req: SysvRequest, where: str, proc: str) -> str:
    page = huge_page_size(req.huge_size, proc)
    needed = -(-req.size // page)
    available = huge_pages_available(page)
    if available is None:
        raise LimitReached(where, f"this kernel has no {page >> 20}M huge page pool",
                           "see /sys/kernel/mm/hugepages")
    if needed > available:
        raise LimitReached(where, f"needs {needed} huge pages of {page >> 20}M, the pool has {available} free",
                           f"shmctl limits hugepages --size {page >> 20}M --count N")
    return f"hugepages: {needed} of {available} free {page >> 20}M pages"


def _shmget_error(exc: ShmctlError, req: SysvRequest, where: str, proc: str) -> ShmctlError:
    """Say which limit a refusal means: the kernel's errno is ambiguous."""
    if exc.errno == errno.EEXIST:
        return Conflict(where, "the key exists already (made by someone else just now)", "--exist-ok uses it")
    if exc.errno in (errno.ENOSPC, errno.EINVAL):
        try:
            check_limits(SysvRequest(req.key, req.size), where, proc)
        except LimitReached as limit:
            return limit
    if exc.errno == errno.ENOMEM and req.hugetlb:
        return LimitReached(where, "the huge page pool could not supply the segment",
                            "shmctl limits hugepages --size 2M --count N")
    if exc.errno == errno.EPERM and req.hugetlb:
        return PermissionDenied(where, "SHM_HUGETLB needs CAP_IPC_LOCK or membership in vm.hugetlb_shm_group",
                                "run as root")
    return exc


def create(req: SysvRequest, view: View):
    """shmget with IPC_CREAT|IPC_EXCL (never an existing key by accident), then the contents
    and SHM_LOCK; a half-made segment is removed before the error is raised. Until it is
    whole it has mode 0600, so no other user can attach a half-filled segment; the mode
    (and --owner) asked for are set last. Losing a race for the key under --exist-ok adopts
    the winner's segment, after the same checks as any existing one."""
    from ... import syscalls
    from ..files import Created
    where = f"create sysv:key={format_key(req.key)}" if req.key else "create sysv"
    view.enter_ipc()  # shmget, IPC_INFO and SHM_INFO answer for the caller's IPC namespace
    plan: List[str] = []
    found = _existing(req, plan, view)
    if found is not None:
        return found
    plan += check_limits(req, where, view.proc)
    plan.append(f"would create sysv{f':key={format_key(req.key)}' if req.key else ' (IPC_PRIVATE)'}: "
                f"{req.size} bytes, mode {req.mode:04o}" + (", hugetlb" if req.hugetlb else "")
                + (", locked" if req.lock else ""))
    if req.dry_run:
        return Created("sysv", plan)
    try:
        shmid = syscalls.shmget(req.key, req.size, _shmget_flags(req))
    except ShmctlError as exc:
        if exc.errno == errno.EEXIST and req.exist_ok:
            return _existing(req, plan, view) or _gone_again(where)
        raise _shmget_error(exc, req, where, view.proc) from None
    try:
        _finish(shmid, req, view)
    except BaseException:
        syscalls.shmctl_rmid(shmid)
        raise
    return Created(address_of(shmid, view), plan, undo=lambda: syscalls.shmctl_rmid(shmid))


def _shmget_flags(req: SysvRequest) -> int:
    from ... import syscalls
    flags = syscalls.IPC_CREAT | syscalls.IPC_EXCL | (0o600 if req.fill is not None else req.mode)
    if req.hugetlb:
        flags |= syscalls.SHM_HUGETLB
        if req.huge_size:
            flags |= (req.huge_size.bit_length() - 1) << syscalls.SHM_HUGE_SHIFT
    return flags


def _finish(shmid: int, req: SysvRequest, view: View) -> None:
    from ... import syscalls
    from ...address import Address
    if req.lock:
        syscalls.shmctl_lock(shmid)
    if req.fill is not None:
        with open_segment(Address("sysv", shmid=shmid), view, writable=True) as handle:
            req.fill(handle)
    if req.fill is not None or req.wanted.owner != os.geteuid():
        ds = syscalls.shmctl_stat(shmid)
        syscalls.shmctl_set(shmid, req.wanted.owner, ds.shm_perm.gid, req.mode)


def _gone_again(where: str):
    raise Conflict(where, "the key was taken and freed again by someone else while we created it", "try again")


def request_key(address: "Address", key: Optional[str], ftok: Optional[str]) -> int:
    """The key of a new segment: from the address, --key or --ftok (given once at most)."""
    from ...address import parse_key, parse_proj
    from ...syscalls import ftok as derive
    given = [x for x in (address.key or None, address.ftok, key, ftok) if x]
    if len(given) > 1:
        raise UsageError("create sysv", "give the key once: in the address, --key or --ftok")
    if ftok:
        path, sep, proj = ftok.rpartition(",")
        if not sep:
            raise UsageError(f"invalid --ftok '{ftok}'", "expected PATH,PROJ")
        return derive(path, parse_proj(proj))
    if address.ftok:
        return derive(*address.ftok)
    return parse_key(key) if key is not None else (address.key or 0)
