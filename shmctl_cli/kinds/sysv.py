"""SysV segments: /proc/sysvipc/shm for the list, /proc/PID/maps for who is attached."""
from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Dict, List

from ..errors import NotFound, UsageError
from ..model import SHM_DEST, SHM_LOCKED, Segment
from ..procfs.sysvipc import read_sysvipc_shm
from ..units import format_key
from . import View

if TYPE_CHECKING:
    from ..address import Address

SYSV_PREFIX = "/SYSV"


def from_columns(c: Dict[str, list]) -> List[Segment]:
    """Segments from /proc/sysvipc/shm's columns; map() over columns keeps 32000 rows cheap."""
    n = len(c["shmid"])
    perms = c["perms"]
    return list(map(Segment, repeat("sysv", n), [f"sysv:{i}" for i in c["shmid"]], c["shmid"], c["key"],
                    repeat(None, n), [p & 0o777 for p in perms], c["uid"], c["gid"], c["cuid"], c["cgid"],
                    c["size"], c["rss"], c["swap"], c["nattch"], c["cpid"], c["lpid"], c["atime"], c["dtime"],
                    c["ctime"], repeat(0, n), [bool(p & SHM_DEST) for p in perms],
                    [bool(p & SHM_LOCKED) for p in perms]))


def attach_processes(segments: List[Segment], view: View) -> None:
    """Fill attachments from the maps: `/SYSV%08x (deleted)`, inode = shmid. Only processes
    of our IPC namespace count (another namespace reuses the same shmids). A mapping on a
    device other than the shmem mount is a hugetlbfs one: SHM_HUGETLB is not kept in perms."""
    by_id: Dict[int, Segment] = {s.id: s for s in segments}
    for s in segments:
        s.attachments = []
    for pid, m in view.mappings():
        seg = by_id.get(m.inode)
        if seg is None or not m.path.startswith(SYSV_PREFIX) or not view.same_ipc_namespace(pid):
            continue
        seg.attachments.append(view.attachment(pid, m))
        if view.shmem_dev is not None and m.dev != view.shmem_dev:
            seg.hugetlb = True


def mark_orphans(segments: List[Segment], view: View) -> None:
    for s in segments:
        if s.nattch == 0 and s.cpid not in view.pids:
            s.orphan = f"no process attached and creator pid {s.cpid} is gone"


def collect(view: View, processes: bool = False) -> List[Segment]:
    segments = from_columns(read_sysvipc_shm(view.proc))
    # the maps scan is the costly part: only when someone is attached or asked for
    if processes or any(s.nattch for s in segments):
        attach_processes(segments, view)
    mark_orphans(segments, view)
    return segments


def resolve_key(address: Address) -> int:
    if address.ftok is not None:
        from ..syscalls import ftok
        return ftok(*address.ftok)
    return address.key


def find(address: "Address", view: View) -> Segment:
    segments = from_columns(read_sysvipc_shm(view.proc))
    if address.shmid is not None:
        matches = [s for s in segments if s.id == address.shmid]
        wanted = f"shmid {address.shmid}"
    else:
        key = resolve_key(address)
        if key == 0:
            raise UsageError(f"{address}", "key 0 is IPC_PRIVATE and names no segment", "address it by shmid")
        matches = [s for s in segments if s.key == key]
        wanted = f"key {format_key(key)}"
    if not matches:
        raise NotFound(f"{address}", f"no SysV segment with {wanted}",
                       "a segment marked for removal loses its key; see shmctl list -m")
    segment = matches[0]
    attach_processes([segment], view)
    mark_orphans([segment], view)
    return segment
