"""The three kinds behind one interface: `collect` everything, `find` one address.
A View caches what every kind shares (one maps scan, one pid list, user names)."""
from __future__ import annotations

import os
import pwd
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

from .. import procfs
from ..model import Attachment, Inventory, Segment
from ..procfs import maps as maps_module
from ..procfs import process
from ..procfs.mountinfo import read_mountinfo

if TYPE_CHECKING:
    from ..address import Address
    from .base import CreateOptions, Kind


@lru_cache(maxsize=None)
def user_name(uid: Optional[int]) -> Optional[str]:
    if uid is None:
        return None
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


class View:
    """One look at the system: its roots (/proc, /dev/shm, /sys) and the caches of one run.
    Nothing is read until a kind asks for it, and nothing twice. A test (and later --ns)
    redirects the system here, never in the readers, which take their root from it."""

    def __init__(self, proc: str = procfs.PROC, shm_dir: str = procfs.SHM_DIR, sys_root: str = procfs.SYS):
        self.proc, self.shm_dir, self.sys_root = proc, shm_dir, sys_root
        self._comm: Dict[int, str] = {}
        self._uid: Dict[int, Optional[int]] = {}
        self._same_ipc: Dict[int, bool] = {}
        self._fstypes: Dict[int, str] = {}

    @cached_property
    def maps(self) -> maps_module.MapsScan:
        return maps_module.scan_shared_maps(self.proc)

    @cached_property
    def pids(self) -> set:
        if "maps" in self.__dict__:
            return self.maps.pids
        return set(maps_module.list_pids(self.proc))

    @cached_property
    def shm_dev(self) -> Optional[int]:
        try:
            return os.stat(self.shm_dir).st_dev
        except OSError:
            return None

    @cached_property
    def shmem_dev(self) -> Optional[int]:
        """The kernel's internal shmem mount, home of SysV, anonymous shared and memfd pages:
        a memfd of our own tells its device number."""
        try:
            fd = os.memfd_create("shmctl-probe", os.MFD_CLOEXEC)
        except (AttributeError, OSError):
            return None
        try:
            return os.fstat(fd).st_dev
        finally:
            os.close(fd)

    @cached_property
    def ipc_namespace(self) -> Optional[str]:
        return process.ipc_namespace("self", self.proc)

    def comm(self, pid: int) -> str:
        name = self._comm.get(pid)
        if name is None:
            name = self._comm[pid] = process.comm(pid, self.proc)
        return name

    def uid_of(self, pid: int) -> Optional[int]:
        if pid not in self._uid:
            self._uid[pid] = process.owner_uid(pid, self.proc)
        return self._uid[pid]

    def same_ipc_namespace(self, pid: int) -> bool:
        if pid not in self._same_ipc:
            theirs = process.ipc_namespace(pid, self.proc)
            self._same_ipc[pid] = theirs is None or theirs == self.ipc_namespace
        return self._same_ipc[pid]

    def fstype(self, dev: int, pid: int) -> Optional[str]:
        """Filesystem type of a device; a process in another mount namespace is asked itself."""
        if not self._fstypes:
            self._fstypes.update(_safe_mountinfo("self", self.proc))
        if dev not in self._fstypes:
            for d, kind in _safe_mountinfo(pid, self.proc).items():
                self._fstypes.setdefault(d, kind)
        return self._fstypes.get(dev)

    def attachment(self, pid: int, m) -> Attachment:
        uid = self.uid_of(pid)
        return Attachment(pid, comm=self.comm(pid), uid=uid, user=user_name(uid), start=m.start, end=m.end,
                          perms=m.perms, offset=m.offset)

    def mappings(self) -> Iterable[Tuple[int, maps_module.SharedMapping]]:
        for pid, mappings in self.maps.by_pid.items():
            for m in mappings:
                yield pid, m

    def holders(self, wanted: Dict[Tuple[int, int], Segment]) -> Dict[Tuple[int, int], List[int]]:
        """Pids holding an open fd on any of the (dev, inode) files; denied processes are
        already counted by the maps scan (the same ptrace check guards both)."""
        held: Dict[Tuple[int, int], List[int]] = {}
        for pid in self.pids:
            try:
                for _target, st in process.open_files(pid, self.proc):
                    key = (st.st_dev, st.st_ino)
                    if key in wanted:
                        held.setdefault(key, []).append(pid)
            except OSError:
                continue
        return held


System = View  # the name the design gives it


def _safe_mountinfo(pid, proc: str) -> Dict[int, str]:
    try:
        return read_mountinfo(pid, proc)
    except OSError:
        return {}


# The registry: kind name -> module of this package whose KIND implements it (kinds/base.py).
# Adding a kind is one module and one line here; the order is the order of `list`.
REGISTRY = {"sysv": "sysv", "posix": "posix", "mmap": "mmap"}


_loaded: Dict[str, "Kind"] = {}


def kind(name: str) -> "Kind":
    """The Kind registered under `name`, its module imported on first use."""
    found = _loaded.get(name)
    if found is None:
        found = _loaded[name] = kind_module(name).KIND
    return found


def kind_module(name: str):
    from importlib import import_module
    return import_module(f"{__name__}.{REGISTRY[name]}")


def bulk_kinds() -> List[str]:
    """The kinds `rm --orphans/--all` takes when no --kind is given."""
    return [name for name in REGISTRY if kind(name).removed_in_bulk]


def collect(kinds: Iterable[str], view: View, all_mappings: bool = False,
            processes: bool = False) -> Inventory:
    inventory = Inventory()
    wanted = set(kinds)
    for name in REGISTRY:
        if name in wanted:
            segments, skipped = kind(name).collect(view, all_mappings, processes)
            inventory.segments += segments
            inventory.skipped += skipped
    if "maps" in view.__dict__:
        inventory.hidden_processes = view.maps.hidden
    return inventory


def resolve(address: "Address", view: View) -> "Address":
    """The address as its kind handles it: `mmap:/dev/shm/NAME` is the POSIX object NAME."""
    return kind(address.kind).resolve(address, view)


def find(address: "Address", view: View) -> Segment:
    address = resolve(address, view)
    return kind(address.kind).find(address, view)


def open_segment(address: "Address", view: View, writable: bool):
    """A Handle on the segment's bytes (kinds/access.py); close it, or use it in a with."""
    address = resolve(address, view)
    return kind(address.kind).open_segment(address, view, writable)


def create(address: "Address", options: "CreateOptions", view: View):
    """A new segment at the address (resolved first); a Created (kinds/files)."""
    address = resolve(address, view)
    return kind(address.kind).create(address, options, view)


def file_users(view: View, dev: int, ino: int) -> List[int]:
    """Pids that map the file (dev, ino) or hold it open."""
    pids = {pid for pid, m in view.mappings() if (m.dev, m.inode) == (dev, ino)}
    pids.update(view.holders({(dev, ino): None}).get((dev, ino), ()))
    return sorted(pids)


def remove(segment: Segment, view: View) -> None:
    kind(segment.kind).remove(segment, view)


def meminfo(view: View) -> Dict[str, int]:
    from ..procfs.meminfo import read_meminfo
    try:
        return read_meminfo(view.proc)
    except OSError:
        return {}


def describe_processes(segment: Segment) -> None:
    """Full command lines of the attached processes, for `stat` (psutil knows the corners:
    zombies, kernel threads, NUL-separated and rewritten argv)."""
    import psutil
    commands: Dict[int, str] = {}
    for a in segment.attachments or ():
        if a.pid not in commands:
            try:
                argv = psutil.Process(a.pid).cmdline()
                commands[a.pid] = " ".join(argv) or f"[{a.comm}]"  # escaped when printed
            except (psutil.Error, OSError):
                commands[a.pid] = a.comm
        a.command = commands[a.pid]


def users(segment: Segment, view: View) -> List[int]:
    """Pids that keep a segment in use: attached, mapping it, or (POSIX) holding it open."""
    return kind(segment.kind).users(segment, view)
