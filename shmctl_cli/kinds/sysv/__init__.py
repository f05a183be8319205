"""SysV segments: /proc/sysvipc/shm for the list, /proc/PID/maps for who is attached; making
one (shmget against the kernel limits) is in create.py."""
from __future__ import annotations

from itertools import repeat
from typing import TYPE_CHECKING, Dict, List, Optional

from ...errors import Conflict, NotFound, UsageError
from ...model import Segment
from ...procfs.sysvipc import SHM_DEST, SHM_LOCKED, parse_sysvipc_shm_columns, read_sysvipc_shm
from ...units import format_key
from ...system import View
from ...units import plural
from ..base import DESCRIBED, CreateOptions, Kind, completion_note
from .hugetlb import settle as settle_hugetlb
from .lookup import signed_key, table_line
from .segment import open_segment, remove, resolve_key, resolve_shmid  # noqa: F401 (kinds.sysv API)

if TYPE_CHECKING:
    from ...address import Address
    from ..base import Typed
    from ..access import Handle


SYSV_PREFIX = "/SYSV"


def _lookup(table: dict, column: list) -> list:
    return list(map(table.__getitem__, column))


def orphan_reasons(cpids: list, nattch: list, live: set) -> list:
    """Why each segment is an orphan (no process attached, creator gone), or None. A cpid of
    0 is a creator outside our PID namespace: unknown, so never called gone."""
    reason = {cpid: None if cpid in live or cpid == 0 else f"no process attached and creator pid {cpid} is gone"
              for cpid in set(cpids)}
    orphans = _lookup(reason, cpids)
    if any(nattch):
        orphans = [None if attached else why for why, attached in zip(orphans, nattch)]
    return orphans


def from_columns(c: Dict[str, list], live: set, view: Optional[View] = None) -> List[Segment]:
    """Segments from /proc/sysvipc/shm's columns, through Segment.rows (the fast path).
    `live` is the set of pids, which tells whose creator is gone; `view` the View the table
    was read in: its IPC namespace goes into each segment and, where it is not the run's
    home, into each address (`sysv@ipc:NS:ID`)."""
    from ...address import namespace_prefix
    n = len(c["shmid"])
    namespace = view.ipc_ns if view is not None else None
    address = namespace_prefix("sysv", view.qualifier("sysv") if view is not None else None) + ":{}"
    perms, distinct = c["perms"], set(c["perms"])
    mode = _lookup({p: p & 0o777 for p in distinct}, perms)
    dest = _lookup({p: bool(p & SHM_DEST) for p in distinct}, perms)
    locked = _lookup({p: bool(p & SHM_LOCKED) for p in distinct}, perms)
    none = [None] * n
    return list(Segment.rows(  # in Segment.__init__'s order: kind, address, id, key, name, ...
        repeat("sysv", n), map(address.format, c["shmid"]), c["shmid"], c["key"], none,
        mode, c["uid"], c["gid"], c["cuid"], c["cgid"], c["size"], c["rss"], c["swap"], c["nattch"],
        c["cpid"], c["lpid"], c["atime"], c["dtime"], c["ctime"], repeat(0, n),  # mtime
        dest, locked, repeat(False, n), repeat(False, n),  # hugetlb (set from the maps), semaphore
        orphan_reasons(c["cpid"], c["nattch"], live), none, none, none,  # orphan, device, backing, attachments
        repeat(False, n), repeat(namespace, n), none))  # deleted, namespace, container


def attach_processes(segments: List[Segment], view: View) -> None:
    """Fill attachments from the maps: `/SYSV%08x (deleted)`, inode = shmid, matched to the
    View's IPC namespace (another one reuses the same shmids, and a process may have attached
    in another namespace than its current one: namespaces.py). A mapping on a device other
    than the shmem mount is a hugetlbfs one: SHM_HUGETLB is not kept in perms."""
    from .namespaces import match
    for s in segments:
        s.attachments = []
    for seg, pid, m, unsure in match(segments, view):
        attachment = view.attachment(pid, m)
        attachment.unsure = unsure
        seg.attachments.append(attachment)
        if view.shmem_dev is not None and m.dev != view.shmem_dev:
            seg.hugetlb = True


def collect(view: View, processes: bool = False) -> List[Segment]:
    view.enter_ipc()  # /proc/sysvipc/shm lists the reader's IPC namespace
    columns = read_sysvipc_shm(view.proc)
    segments = from_columns(columns, view.pids, view)
    # the maps scan is the costly part: only when someone is attached or asked for
    if processes or any(columns["nattch"]):
        attach_processes(segments, view)
    settle_hugetlb(segments, view)
    return segments


def find(address: "Address", view: View) -> Segment:
    """The segment at the address, in the View's IPC namespace (the one a qualified address
    names: the caller hands over a View of it): its one line of /proc/sysvipc/shm, one
    Segment, and the maps scanned only when the kernel counts an attachment."""
    if address.namespace is not None and view.ipc_ns is not None and address.namespace != view.ipc_ns:
        raise NotFound(f"{address}", f"IPC namespace {address.namespace} is not the one looked at ({view.ipc_ns})")
    view.enter_ipc()
    if address.shmid is not None:
        column, value, wanted = "shmid", address.shmid, f"shmid {address.shmid}"
    else:
        key = resolve_key(address)
        if key == 0:
            raise UsageError(f"{address}", "key 0 is IPC_PRIVATE and names no segment", "address it by shmid")
        column, value, wanted = "key", signed_key(key), f"key {format_key(key)}"
    table = table_line(view.proc, column, value)
    if table is None:
        raise NotFound(f"{address}", f"no SysV segment with {wanted}",
                       "a segment marked for removal loses its key; see shmctl list -m")
    segment = from_columns(parse_sysvipc_shm_columns(table), view.pids, view)[0]
    if segment.nattch:
        attach_processes([segment], view)
    else:  # nothing attached: no mapping can be one of its attachments (namespaces.match)
        segment.attachments = []
    settle_hugetlb([segment], view)
    return segment


def _about(key: int, size: int, uid: int) -> str:
    return completion_note("SysV", size, uid) + (f", key {format_key(key)}" if key else "")


class SysvKind(Kind):
    name = "sysv"
    kernel_counts_users = True  # nattch comes from the kernel: certain
    force_hint = "--force marks it for removal: the kernel frees it when the last process detaches"

    def collect(self, view: View, all_mappings: bool, processes: bool):
        return collect(view, processes), []

    def find(self, address: "Address", view: View) -> Segment:
        return find(address, view)

    def place(self, view: View):
        return view.ipc_ns

    def complete(self, typed: "Typed", view: View):
        """`sysv:SHMID`, and `sysv:key=0x...` once the word reaches past `sysv:`: from
        /proc/sysvipc/shm alone. A segment already on the line (by id or key) is left out."""
        if not typed.may_become("sysv:"):
            return []
        view.enter_ipc()
        c = read_sysvipc_shm(view.proc)
        taken = [a for a in typed.taken if a.kind == "sysv" and a.namespace is None]
        ids, keys = {a.shmid for a in taken}, {a.key for a in taken if a.key}
        rows = [row for row in zip(c["shmid"], c["key"], c["size"], c["uid"]) if row[0] not in ids
                and row[1] not in keys]
        with_keys = typed.starts("sysv:")
        addresses, of = [], []
        for row in rows:
            addresses.append(f"sysv:{row[0]}")
            of.append(row)
            if row[1] and with_keys:
                addresses.append(f"sysv:key={format_key(row[1])}")
                of.append(row)
        chosen = typed.choose(addresses)
        describe = typed.describe and len(chosen) <= DESCRIBED
        return [(candidate, _about(*of[i][1:]) if describe else "", form) for candidate, form, i in chosen]

    def check_create_options(self, address: "Address", options: CreateOptions) -> None:
        where = f"create {address}"
        if options.resize:
            raise UsageError(where, "a SysV segment cannot be resized", "remove it and create it anew")
        if options.overcommit:
            raise UsageError(where, "--overcommit applies to files on tmpfs and hugetlbfs",
                             "SysV segments are bounded by shmmax and shmall instead")
        huge_size = options.huge_size
        if huge_size and not options.hugetlb:
            raise UsageError("create sysv", "--huge-size goes with --hugetlb")
        if huge_size and huge_size & (huge_size - 1):
            raise UsageError("create sysv", f"--huge-size {huge_size} is not a power of two", "e.g. 2M or 1G")
        if not address.is_new and address.shmid is not None:
            raise UsageError(where, "the kernel picks the shmid", "create sysv [--key KEY]")

    def create(self, address: "Address", options: CreateOptions, view: View):
        from .create import SysvRequest, create, request_key
        o = options
        return create(SysvRequest(request_key(address, o.key, o.ftok), o.size, o.mode, o.hugetlb, o.huge_size,
                                  o.lock, o.exist_ok, o.dry_run, o.fill, owner=o.owner, larger_ok=o.larger_ok), view)

    def open_segment(self, address: "Address", view: View, writable: bool) -> "Handle":
        return open_segment(address, view, writable)

    def check_growth(self, where, address, view, size, end, grow, overcommit) -> str:
        raise Conflict(where, f"{end - size} bytes would pass the end ({size} bytes)",
                       "a SysV segment cannot grow: the kernel fixes its size at shmget")

    def in_use(self, segment: Segment, users: List[int]) -> int:
        return segment.nattch

    def remove(self, segment: Segment, view: View) -> None:
        remove(segment, view)

    def in_use_refusal(self, segment: Segment, users: List[int], view: View) -> Conflict:
        """Names every attached process seen, wherever it is now (one that attached here and
        moved to another IPC namespace still holds it), `?` where the namespace is uncertain;
        the rest of nattch are processes not visible (other users', other PID namespaces)."""
        unsure = {a.pid for a in segment.attachments or () if a.unsure}
        names = [f"{pid} ({view.comm(pid)}){'?' if pid in unsure else ''}" for pid in users[:8]]
        who = f"pid{'s' if len(users) > 1 else ''} {', '.join(names)}{' ...' if len(users) > 8 else ''}"
        vmas = len(segment.attachments or ())
        hidden = max(segment.nattch - vmas, 0) if segment.nattch else 0
        if not users:
            who = "processes not visible to you"
        elif hidden:
            who += f" and {hidden} more not visible to you"
        if unsure:
            who += " (?: maybe another IPC namespace's segment with the same shmid)"
        return Conflict(segment.address, f"still in use by {plural(segment.nattch, 'process')}: {who}",
                        self.force_hint)

    def removed_note(self, segment: Segment, in_use: int) -> str:
        return (f"{segment.address} marked for removal: the kernel frees it when the last of "
                f"{plural(in_use, 'attached process')} detaches")

    def last_used(self, segment: Segment) -> Optional[int]:
        """The last shmat or shmdt (shm_atime, shm_dtime); the creation (shm_ctime, which
        IPC_SET also moves) for a segment never attached."""
        return max(segment.atime, segment.dtime) or segment.ctime or None

    def glob_subject(self, segment: Segment, glob: str) -> Optional[str]:
        return None  # SysV segments have a key, no name


KIND = SysvKind()
