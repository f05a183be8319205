"""The one view of the system: the roots of one run (/proc, /dev/shm, /sys, the sysctl.d
directory, the IPC namespace) and the caches every kind shares (one maps scan, one pid list,
user names). Tests, and later --ns, redirect the system here and nowhere else: the readers
in procfs/ take their root from it."""
from __future__ import annotations

import os
import pwd
from functools import cached_property, lru_cache
from typing import Dict, Iterable, List, Optional, Tuple

from . import procfs
from .model import Attachment, Segment
from .procfs import maps as maps_module
from .procfs import process
from .procfs.mountinfo import read_mountinfo

SYSCTL_D = "/etc/sysctl.d"


@lru_cache(maxsize=None)
def user_name(uid: Optional[int]) -> Optional[str]:
    """The account's name; the number as text where the uid has no account."""
    return _name_of(pwd.getpwuid, uid, str(uid))


def group_name(gid: Optional[int]) -> Optional[str]:
    """The group's name; None where the gid has no group."""
    import grp
    return _name_of(grp.getgrgid, gid, None)


def _name_of(lookup, number: Optional[int], unknown: Optional[str]) -> Optional[str]:
    if number is None:
        return None
    try:
        return lookup(number)[0]
    except KeyError:
        return unknown


class View:
    """One look at the system: its roots (/proc, /dev/shm, /sys, sysctl.d) and the caches of one run.
    Nothing is read until a kind asks for it, and nothing twice. A test (and later --ns)
    redirects the system here, never in the readers, which take their root from it."""

    def __init__(self, proc: str = procfs.PROC, shm_dir: str = procfs.SHM_DIR, sys_root: str = procfs.SYS,
                 sysctl_dir: Optional[str] = None):
        self.proc, self.shm_dir, self.sys_root = proc, shm_dir, sys_root
        # where --persist writes by default; SHMCTL_SYSCTL_DIR (read here once) overrides it
        self.sysctl_dir = sysctl_dir or os.environ.get("SHMCTL_SYSCTL_DIR") or SYSCTL_D
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

    @cached_property
    def ipc_namespace_inode(self) -> int:
        """The inode of our IPC namespace (0 when it cannot be read): SysV write locks carry it."""
        return process.ipc_namespace_inode("self", self.proc)

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

    def file_users(self, dev: int, ino: int) -> List[int]:
        """Pids that map the file (dev, ino) or hold it open."""
        pids = {pid for pid, m in self.mappings() if (m.dev, m.inode) == (dev, ino)}
        pids.update(self.holders({(dev, ino): None}).get((dev, ino), ()))
        return sorted(pids)


System = View  # the name the design gives it


def _safe_mountinfo(pid, proc: str) -> Dict[int, str]:
    try:
        return read_mountinfo(pid, proc)
    except OSError:
        return {}
