"""POSIX objects: regular files in /dev/shm (lstat, never followed); `sem.*` are semaphores."""
from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Dict, List, Optional, Tuple

from ..address import Address, posix_address
from ..errors import Conflict, NotFound, PermissionDenied, ShmctlError, UsageError
from ..model import Segment
from ..procfs import SEM_PREFIX
from ..system import View
from .base import DESCRIBED, CreateOptions, FileKind, completion_note
from .deleted import freed_when, held_links, posix_deleted
from .paths import file_type

if TYPE_CHECKING:
    from .base import Typed
    from .access import Handle
    from .files import Created



def from_stat(name: str, st: os.stat_result) -> Segment:
    return Segment("posix", posix_address(name), st.st_ino, name="/" + name, mode=st.st_mode & 0o7777,
                   uid=st.st_uid, gid=st.st_gid, size=st.st_size, rss=st.st_blocks * 512,
                   atime=int(st.st_atime), ctime=int(st.st_ctime), mtime=int(st.st_mtime),
                   device=st.st_dev, semaphore=name.startswith(SEM_PREFIX))


def from_stats(names: List[str], stats: List[os.stat_result], namespace: Optional[int]) -> List[Segment]:
    """from_stat for a whole directory of that mount namespace, column-wise through
    Segment.rows (the fast path)."""
    from itertools import repeat
    n = len(names)
    field = lambda attr: [getattr(st, attr) for st in stats]  # noqa: E731
    none, zero, false = repeat(None, n), repeat(0, n), repeat(False, n)
    return list(Segment.rows(  # in Segment.__init__'s order: kind, address, id, key, name, ...
        repeat("posix", n), [f"posix:/{name}" for name in names], field("st_ino"), repeat(None, n),
        ["/" + name for name in names], [m & 0o7777 for m in field("st_mode")], field("st_uid"), field("st_gid"),
        repeat(None, n), repeat(None, n), field("st_size"), [b * 512 for b in field("st_blocks")],  # cuid .. rss
        repeat(None, n), none, repeat(None, n), repeat(None, n),  # swap, nattch, cpid, lpid
        map(int, field("st_atime")), zero, map(int, field("st_ctime")), map(int, field("st_mtime")),
        false, repeat(False, n), repeat(False, n), [name.startswith(SEM_PREFIX) for name in names],  # .. semaphore
        repeat(None, n), field("st_dev"), repeat(None, n), repeat(None, n),  # orphan, device, backing, attachments
        repeat(False, n), repeat(namespace, n), repeat(None, n)))  # deleted, namespace, container


def attach_processes(segments: List[Segment], view: View) -> None:
    """Mappers from the maps by (device, inode): a process in another mount namespace maps
    its own /dev/shm, which has another device, so it is never confused with ours."""
    by_file: Dict[Tuple[int, int], Segment] = {(s.device, s.id): s for s in segments}
    for s in segments:
        s.attachments = []
    for pid, m in view.mappings():
        seg = by_file.get((m.dev, m.inode))
        if seg is not None:
            seg.attachments.append(view.attachment(pid, m))
    hidden = view.maps.hidden  # the number of processes not seen: nattch is "at least"
    for s in segments:
        s.nattch = len({a.pid for a in s.attachments}) if s.attachments else 0
        s.nattch_unsure = hidden


def mark_orphans(segments: List[Segment], view: View) -> None:
    """An orphan is mapped by no process and held open by none (a process may keep the fd
    without mapping it). When some processes are hidden from us, say so in the reason."""
    unmapped = {(s.device, s.id): s for s in segments if not s.nattch and not s.semaphore}
    if not unmapped:
        return
    held = view.holders(unmapped)
    hidden = view.maps.hidden
    for key, seg in unmapped.items():
        if key not in held:
            seg.orphan = "no process maps it or holds it open"
            seg.orphan_unsure = bool(hidden)
            if hidden:
                seg.orphan += f" (as far as visible: {hidden} process{'es' if hidden != 1 else ''} hidden)"


def named(name: str, view: View) -> str:
    """The address of the object NAME as this View shows it (qualified outside the home namespace)."""
    from ..address import namespace_prefix
    return f"{namespace_prefix('posix', view.qualifier('posix'))}:/{name}"


SEMAPHORE = "a POSIX semaphore (sem_open), not a shared-memory object"


def lstat_object(name: str, view: View, semaphore: bool = False) -> os.stat_result:
    """The /dev/shm entry of a POSIX segment; NotFound where there is no regular file. A
    semaphore (`sem.*`, which `list -a` shows) exists: `semaphore` takes it (stat), else
    it is refused as a conflict (exit 5), never "no such segment"."""
    where = named(name, view)
    if view.shm_dir is None:
        raise NotFound(where, f"{view.shm_name} cannot be reached (absent, or a symlink)")
    try:
        st = os.lstat(os.path.join(view.shm_dir, name))
    except FileNotFoundError:
        raise NotFound(where, f"no such object in {view.shm_name}", "see shmctl list --kind posix") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(where, f"{view.shm_name}/{name} is a {file_type(st.st_mode)}, not a shared-memory object")
    if name.startswith(SEM_PREFIX) and not semaphore:
        raise Conflict(where, f"this is {SEMAPHORE}", "shmctl stat shows it; rm --force unlinks it")
    return st


def find_by_inode(address: "Address", view: View) -> Segment:
    """`posix:@INODE`: an object of our /dev/shm by its inode, deleted or not."""
    listed = {}
    try:
        for entry in os.scandir(view.shm_dir) if view.shm_dir is not None else ():
            st = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and st.st_ino == address.inode:
                listed[st.st_ino] = entry.name
    except OSError:
        pass
    if listed:
        return KIND.find(Address("posix", name=listed[address.inode]), view)
    found = posix_deleted(view, set(), all_mappings=True, inode=address.inode)
    if not found:
        hint = "run as root to see every process" if view.maps.hidden else "see shmctl list --kind posix"
        raise NotFound(str(address), f"no object of {view.shm_name} has that inode, and no process maps "
                       "or holds one", hint)
    return found[0]


def open_held(address: "Address", view: View, writable: bool) -> "Handle":
    """A deleted object's bytes, through a holder's map_files or fd link, only if it leads to
    that very file (a pid may have been reused)."""
    from .files import open_file
    segment = find_by_inode(address, view)
    if not segment.deleted:
        return KIND.open_segment(Address("posix", name=segment.name.lstrip("/")), view, writable)
    expect = (segment.device, segment.id)
    for link in held_links(segment, view):
        try:
            return open_file(str(address), link, writable, nofollow=False, expect=expect)
        except ShmctlError:
            continue  # the holder let go or was replaced meanwhile; try the next
    raise PermissionDenied(str(address), "a deleted object is reachable only through the links in /proc of "
                           "the processes holding it", "run as root")


def shm_directory_fd(view: View, where: str) -> int:
    """An O_PATH fd of the View's /dev/shm, reached with no symlink followed (kinds/paths),
    opened on first use and kept for the View's life (closed when the View goes)."""
    fd = view.__dict__.get("_shm_directory_fd")
    if fd is None:
        import weakref
        from .paths import open_directory
        if view.shm_dir is None:
            raise NotFound(where, f"{view.shm_name} cannot be reached (absent, or a symlink)")
        fd = view.__dict__["_shm_directory_fd"] = open_directory(view.shm_dir, where)
        weakref.finalize(view, os.close, fd)
    return fd


def _regular_files(directory: str, begins: set) -> List[str]:
    """The names of the regular files in `directory` that begin with one of `begins`: one look
    at it, with the file types when every name may ("" in begins), else the names alone and
    an lstat of those that begin so."""
    try:
        if "" in begins:
            with os.scandir(directory) as listing:
                return [e.name for e in listing if e.is_file(follow_symlinks=False)]
        return [n for n in os.listdir(directory) if n.startswith(tuple(begins)) and _is_regular(directory, n)]
    except OSError:
        return []


def _is_regular(directory: str, name: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(os.path.join(directory, name)).st_mode)
    except OSError:
        return False  # removed while we looked


class PosixKind(FileKind):
    name = "posix"

    def place(self, view: View):
        return view.shm_dev

    def complete(self, typed: "Typed", view: View) -> List[Tuple[str, str, int]]:
        """`posix:/NAME` (and `/NAME` once the word starts with `/`) of each regular file in
        /dev/shm that is no semaphore, nothing followed or opened; an lstat for the
        description of a match."""
        heads = [head for head in ("posix:/", "/") if typed.may_become(head)
                 and (head == "posix:/" or typed.starts("/"))]
        # what a matching name begins with, up to the first escape (`\xHH`: printable)
        begins = {form[len(head):].partition("\\")[0] if form.startswith(head) else ""
                  for form in typed.forms for head in heads if form.startswith(head) or head.startswith(form)}
        shm = view.shm_dir
        names = _regular_files(shm, begins) if shm is not None and begins else []
        taken = {a.name for a in typed.taken if a.kind == "posix" and a.name is not None and a.namespace is None}
        names = [n for n in names if not n.startswith(SEM_PREFIX) and n not in taken]
        chosen = typed.choose([head + name for head in heads for name in names])
        if not (typed.describe and len(chosen) <= DESCRIBED):
            return [(candidate, "", form) for candidate, form, _ in chosen]
        found = []
        for candidate, form, i in chosen:
            try:
                st = os.lstat(os.path.join(shm, names[i % len(names)]))
            except OSError:
                continue  # removed while we looked
            found.append((candidate, completion_note("POSIX", st.st_size, st.st_uid), form))
        return found

    unsure_when_hidden = True  # a hidden process may hold it open: unseen users

    def collect(self, view: View, all_mappings: bool, processes: bool) -> Tuple[List[Segment], List[str]]:
        """Every object in /dev/shm, and notes on entries that are no objects; `all_mappings`
        adds the semaphores."""
        segments, skipped = [], []
        if view.shm_dir is None:
            return [], [f"/dev/shm of mount namespace {view.mnt_ns} (absent, or reached through a symlink)"]
        view.host.shm_devices.add(view.shm_dev)
        try:
            entries = list(os.scandir(view.shm_dir))
        except OSError as exc:
            return [], [f"{view.shm_name}: {exc.strerror}"]
        names, stats = [], []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed while we looked
            if not stat.S_ISREG(st.st_mode):
                skipped.append(f"{entry.name} ({file_type(st.st_mode)})")
            elif all_mappings or not entry.name.startswith(SEM_PREFIX):
                names.append(entry.name)
                stats.append(st)
        segments = from_stats(names, stats, view.mnt_ns)
        attach_processes(segments, view)
        mark_orphans(segments, view)
        return segments + posix_deleted(view, {s.id for s in segments}, all_mappings), skipped

    def find(self, address: "Address", view: View) -> Segment:
        if address.inode is not None:
            return find_by_inode(address, view)
        segment = from_stat(address.name, lstat_object(address.name, view, semaphore=True))
        attach_processes([segment], view)
        mark_orphans([segment], view)
        return segment

    # --- lifecycle: create, open, remove ---

    def create(self, address: "Address", options: CreateOptions, view: View) -> "Created":
        """A new object in /dev/shm, as shm_open(O_CREAT|O_EXCL) would make it (glibc's
        shm_open is open() there), but published only when whole: see files.create_file."""
        from .files import Place, create_file, open_directory
        name = address.name
        where = named(name, view)
        if name.startswith(SEM_PREFIX):
            raise UsageError(f"invalid POSIX name /{name}", "sem.* names belong to POSIX semaphores")
        req = self.request(options)
        req.users = lambda st: view.file_users(st.st_dev, st.st_ino)
        with Place(where, view.shm_dir, open_directory(view.shm_dir, where), name) as place:
            return create_file(place, req)

    def open_segment(self, address: "Address", view: View, writable: bool) -> "Handle":
        """The object opened relative to a /dev/shm directory fd: no symlink, FIFO or device
        at the name is ever opened, and it must still be the entry that lstat_object saw."""
        from .files import open_file
        from .paths import identity
        if address.inode is not None:
            return open_held(address, view, writable)
        st = lstat_object(address.name, view)  # says what the entry is when it is not a segment
        return open_file(str(address), os.path.join(view.shm_dir, address.name), writable, expect=identity(st))

    def growth_directory(self, where: str, address: "Address", view: View, size: int, end: int) -> str:
        return view.shm_dir

    def users(self, segment: Segment, view: View) -> List[int]:
        """Pids that map the object or hold it open."""
        holders = view.holder_pids(segment.device, segment.id) if segment.device is not None else ()
        if not holders and not segment.attachments:
            return []
        return sorted(set(segment.pids).union(holders))

    def not_shared_memory(self, segment: Segment, view: View) -> Optional[str]:
        """A semaphore: rm refuses it (exit 5) unless --force, which unlinks it as sem_unlink does."""
        return SEMAPHORE if segment.semaphore else None

    def check_removable(self, segment: Segment) -> None:
        if segment.deleted:
            raise Conflict(segment.address, f"the object {segment.name} was unlinked and has no name left to "
                           f"remove: {freed_when(segment)}", "end those processes, or have them unmap and close it")

    def glob_subject(self, segment: Segment, glob: str) -> Optional[str]:
        """The name without its leading slash, unless the glob starts with one."""
        if segment.name is None:
            return None
        return segment.name if glob.startswith("/") else segment.name.lstrip("/")

    def remove(self, segment: Segment, view: View) -> None:
        """unlinkat on a /dev/shm directory fd, only while the name is the object that was found.
        The directory is opened once per View (rm --all unlinks thousands through it)."""
        from .paths import unlink_checked
        unlink_checked(shm_directory_fd(view, segment.address), segment.name.lstrip("/"), segment.device,
                       segment.id, segment.address)


KIND = PosixKind()
