"""POSIX objects: regular files in /dev/shm (lstat, never followed); `sem.*` are semaphores."""
from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Dict, List, Tuple

from ..address import Address, posix_address
from ..errors import NotFound, UsageError
from ..model import Segment
from ..procfs import SEM_PREFIX
from ..system import View
from .base import CreateOptions, FileKind
from .paths import file_type

if TYPE_CHECKING:
    from ..address import Address
    from .access import Handle
    from .files import Created



def from_stat(name: str, st: os.stat_result) -> Segment:
    return Segment("posix", posix_address(name), st.st_ino, name="/" + name, mode=st.st_mode & 0o7777,
                   uid=st.st_uid, gid=st.st_gid, size=st.st_size, rss=st.st_blocks * 512,
                   atime=int(st.st_atime), ctime=int(st.st_ctime), mtime=int(st.st_mtime),
                   device=st.st_dev, semaphore=name.startswith(SEM_PREFIX))


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
    for s in segments:
        s.nattch = len(s.pids)


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


def lstat_object(name: str, view: View) -> os.stat_result:
    """The /dev/shm entry of a POSIX segment; NotFound for anything that is not one."""
    where = f"posix:/{name}"
    try:
        st = os.lstat(os.path.join(view.shm_dir, name))
    except FileNotFoundError:
        raise NotFound(where, f"no such object in {view.shm_dir}", "see shmctl list --kind posix") from None
    if not stat.S_ISREG(st.st_mode):
        raise NotFound(where, f"{view.shm_dir}/{name} is a {file_type(st.st_mode)}, not a shared-memory object")
    if name.startswith(SEM_PREFIX):
        raise NotFound(where, "this is a POSIX semaphore, not a shared-memory object")
    return st


class PosixKind(FileKind):
    name = "posix"
    unsure_when_hidden = True  # a hidden process may hold it open: unseen users

    def collect(self, view: View, all_mappings: bool, processes: bool) -> Tuple[List[Segment], List[str]]:
        """Every object in /dev/shm, and notes on entries that are no objects; `all_mappings`
        adds the semaphores."""
        segments, skipped = [], []
        try:
            entries = list(os.scandir(view.shm_dir))
        except OSError as exc:
            return [], [f"{view.shm_dir}: {exc.strerror}"]
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except OSError:
                continue  # removed while we looked
            if not stat.S_ISREG(st.st_mode):
                skipped.append(f"{entry.name} ({file_type(st.st_mode)})")
            elif all_mappings or not entry.name.startswith(SEM_PREFIX):
                segments.append(from_stat(entry.name, st))
        attach_processes(segments, view)
        mark_orphans(segments, view)
        return segments, skipped

    def find(self, address: "Address", view: View) -> Segment:
        segment = from_stat(address.name, lstat_object(address.name, view))
        attach_processes([segment], view)
        mark_orphans([segment], view)
        return segment

    # --- lifecycle: create, open, remove ---

    def create(self, address: "Address", options: CreateOptions, view: View) -> "Created":
        """A new object in /dev/shm, as shm_open(O_CREAT|O_EXCL) would make it (glibc's
        shm_open is open() there), but published only when whole: see files.create_file."""
        from .files import Place, create_file, open_directory
        name = address.name
        where = posix_address(name)
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
        st = lstat_object(address.name, view)  # says what the entry is when it is not a segment
        return open_file(str(address), os.path.join(view.shm_dir, address.name), writable, expect=identity(st))

    def growth_directory(self, where: str, address: "Address", view: View, size: int, end: int) -> str:
        return view.shm_dir

    def users(self, segment: Segment, view: View) -> List[int]:
        """Pids that map the object or hold it open."""
        pids = set(segment.pids)
        if segment.device is not None:
            key = (segment.device, segment.id)
            pids.update(view.holders({key: segment}).get(key, ()))
        return sorted(pids)

    def remove(self, segment: Segment, view: View) -> None:
        """unlinkat on a /dev/shm directory fd, only while the name is the object that was found."""
        from .files import unlink_file
        unlink_file(segment.address, os.path.join(view.shm_dir, segment.name.lstrip("/")),
                    expect=(segment.device, segment.id))


KIND = PosixKind()
