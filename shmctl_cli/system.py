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
from .procfs import namespaces, process
from .procfs.mountinfo import read_mountinfo

SYSCTL_D = "/etc/sysctl.d"


@lru_cache(maxsize=None)
def user_name(uid: Optional[int]) -> Optional[str]:
    """The account's name; the number as text where the uid has no account."""
    return _name_of(pwd.getpwuid, uid, str(uid))


@lru_cache(maxsize=None)
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


class Host:
    """What is the same from every namespace: the processes, their shared mappings, names and
    owners, the filesystems' types by device. One per run, shared by every View of it."""

    def __init__(self, proc: str):
        self.proc = proc
        self.comms: Dict[int, str] = {}
        self.uids: Dict[int, Optional[int]] = {}
        self.namespaces: Dict[Tuple[str, int], Optional[int]] = {}
        self.fstypes: Dict[int, str] = {}
        self.shm_devices: set = set()  # every /dev/shm the posix kind listed in this run

    @cached_property
    def maps(self) -> maps_module.MapsScan:
        return maps_module.scan_shared_maps(self.proc)

    @property
    def scanned(self) -> bool:
        return "maps" in self.__dict__

    @cached_property
    def pids(self) -> set:
        if self.scanned:
            return self.maps.pids
        return set(maps_module.list_pids(self.proc))

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
    def open_files(self) -> Dict[Tuple[int, int], List[Tuple[int, str, str]]]:
        """Every process's open files by (dev, inode): [(pid, fd link, link target)]. One pass
        over /proc/*/fd a run, for holders and for deleted files held only by an fd."""
        table: Dict[Tuple[int, int], List[Tuple[int, str, str]]] = {}
        for pid in self.pids:
            try:
                for link, target, st in process.open_fds(pid, self.proc):
                    table.setdefault((st.st_dev, st.st_ino), []).append((pid, link, target))
            except OSError:
                continue
        return table

    def namespace_of(self, pid, ns_type: str) -> Optional[int]:
        key = (ns_type, pid)
        if key not in self.namespaces:
            self.namespaces[key] = namespaces.namespace_inode(pid, ns_type, self.proc)
        return self.namespaces[key]

    def members(self, ns_type: str) -> Dict[int, List[int]]:
        """Namespace inode -> the pids in it, ascending (processes we may not look at left out)."""
        found: Dict[int, List[int]] = {}
        for pid in sorted(self.pids):
            inode = self.namespace_of(pid, ns_type)
            if inode is not None:
                found.setdefault(inode, []).append(pid)
        return found

    def member(self, ns_type: str, inode: int) -> Optional[int]:
        """The lowest pid in that namespace, None if no process we can see is in it."""
        pids = self.members(ns_type).get(inode)
        return pids[0] if pids else None

    @property
    def own(self) -> Dict[str, Optional[int]]:
        """Our own namespaces as the process began (read before any setns, once per process:
        a View made after one must not take the joined namespace for its home)."""
        if self.proc not in _own:
            _own[self.proc] = {t: namespaces.namespace_inode("self", t, self.proc) for t in ("ipc", "mnt")}
        return _own[self.proc]


_own: Dict[str, Dict[str, Optional[int]]] = {}
# the IPC namespace this process has joined (None: its own), and an fd of its own to go back
_joined: Dict[str, Optional[int]] = {"ipc": None, "home_fd": None}
# the pid whose namespaces a View looks at when none is given (`shmctl --ns PID`)
_default_ns_pid: Dict[str, Optional[int]] = {"pid": None}


def look_from(pid: int, proc: str = procfs.PROC) -> None:
    """Every View made from now on looks from PID's IPC and mount namespaces (--ns PID).
    Another process's namespaces are root's to enter: a one-line refusal otherwise."""
    from .errors import PermissionDenied, UsageError
    if pid <= 0 or not os.path.isdir(f"{proc}/{pid}"):
        raise UsageError(f"--ns {pid}", "no such process")
    for ns_type in ("ipc", "mnt"):
        theirs = namespaces.namespace_inode(pid, ns_type, proc)
        if theirs != namespaces.namespace_inode("self", ns_type, proc) and os.geteuid() != 0:
            raise PermissionDenied(f"--ns {pid}", "looking from another process's namespaces needs root",
                                   "run as root")
        if theirs is None:
            raise UsageError(f"--ns {pid}", "its namespaces cannot be read (it is gone, or more privileged than this process)")
    _default_ns_pid["pid"] = pid


class View:
    """One look at the system: its roots (/proc, /dev/shm, /sys, sysctl.d), the namespaces it
    looks from (its own, or those of `ns_pid`), and the caches of one run. Nothing is read
    until a kind asks for it, and nothing twice. A test or --ns redirects the system here,
    never in the readers, which take their root from it.

    Namespaces: the SysV calls and /proc/sysvipc/shm answer for the caller's IPC namespace,
    so a View of another one joins it (setns) before a kind touches SysV (enter_ipc). Paths
    of another mount namespace are reached beneath the process's root (/proc/PID/root, with
    no symlink followed), never by joining it: that would run our imports and glibc's NSS in
    a filesystem that the container's root controls."""

    def __init__(self, proc: str = procfs.PROC, shm_dir: str = procfs.SHM_DIR, sys_root: str = procfs.SYS,
                 sysctl_dir: Optional[str] = None, ns_pid: Optional[int] = None, host: Optional[Host] = None,
                 home: Optional[Dict[str, Optional[int]]] = None, etc: str = "/etc"):
        self.proc, self._shm_dir, self.sys_root = proc, shm_dir, sys_root
        self.etc = etc  # logind.conf, login.defs (doctor); /run and /usr/lib are its siblings
        # where --persist writes by default; SHMCTL_SYSCTL_DIR (read here once) overrides it
        self.sysctl_dir = sysctl_dir or os.environ.get("SHMCTL_SYSCTL_DIR") or SYSCTL_D
        self.ns_pid = ns_pid if ns_pid is not None else _default_ns_pid["pid"]
        self.host = host or Host(proc)
        self._home = home

    def sibling(self, ns_pid: Optional[int]) -> "View":
        """A View from PID's namespaces (ours: None) that shares this run's caches and prints
        addresses relative to the same home."""
        return View(self.proc, procfs.SHM_DIR, self.sys_root, self.sysctl_dir, ns_pid, self.host, self.home,
                    self.etc)

    # --- namespaces ---

    @cached_property
    def ipc_ns(self) -> Optional[int]:
        """The inode of the IPC namespace this View looks at."""
        return self.host.own["ipc"] if self.ns_pid is None else self.host.namespace_of(self.ns_pid, "ipc")

    @cached_property
    def mnt_ns(self) -> Optional[int]:
        return self.host.own["mnt"] if self.ns_pid is None else self.host.namespace_of(self.ns_pid, "mnt")

    def namespace(self, ns_type: str) -> Optional[int]:
        return self.ipc_ns if ns_type == "ipc" else self.mnt_ns

    @property
    def home(self) -> Dict[str, Optional[int]]:
        """The namespaces whose objects have short addresses: those the run looks from."""
        if self._home is None:
            self._home = {"ipc": self.ipc_ns, "mnt": self.mnt_ns}
        return self._home

    def qualifier(self, kind: str) -> Optional[int]:
        """The namespace an address of `kind` made in this View must carry (None: a short one)."""
        from . import REGISTRY
        ns_type = REGISTRY[kind]["namespace"]
        ns = self.namespace(ns_type)
        return None if ns == self.home[ns_type] or ns is None else ns

    @property
    def ipc_namespace(self) -> Optional[str]:
        """The IPC namespace as its /proc link reads, `ipc:[4026531839]`."""
        return None if self.ipc_ns is None else f"ipc:[{self.ipc_ns}]"

    @property
    def ipc_namespace_inode(self) -> int:
        """The inode of the IPC namespace (0 when it cannot be read): SysV write locks carry it."""
        return self.ipc_ns or 0

    def enter_ipc(self) -> None:
        """Make the SysV calls and /proc/sysvipc/shm of this process answer for this View's IPC
        namespace: setns into it when the process is in another one."""
        target = self.ipc_ns
        current = _joined["ipc"] or self.host.own["ipc"]
        if target is None or target == current:
            return
        from .syscalls import setns_ipc
        if target == self.host.own["ipc"]:
            fd = _joined["home_fd"]
        else:
            if _joined["home_fd"] is None:
                _joined["home_fd"] = os.open(f"{self.proc}/self/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
            fd = _open_namespace(self.proc, self.ns_pid, "ipc", target)
        try:
            setns_ipc(fd, f"enter IPC namespace {target}")
        finally:
            if fd != _joined["home_fd"]:
                os.close(fd)
        _joined["ipc"] = target

    @cached_property
    def root_fd(self) -> Optional[int]:
        """An O_PATH fd of the root directory of this View's mount namespace (the process's
        root, /proc/PID/root), or None for our own: paths are resolved beneath it."""
        if self.ns_pid is None or self.mnt_ns == self.host.own["mnt"]:
            return None
        try:
            fd = os.open(f"{self.proc}/{self.ns_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            from .errors import from_oserror
            raise from_oserror(exc, f"the root of pid {self.ns_pid}") from None
        if namespaces.namespace_inode(self.ns_pid, "mnt", self.proc) != self.mnt_ns:
            os.close(fd)  # the pid ended and was reused meanwhile
            from .errors import NotFound
            raise NotFound(f"mount namespace {self.mnt_ns}", f"pid {self.ns_pid} left it")
        return fd

    @cached_property
    def shm_dir(self) -> Optional[str]:
        """/dev/shm as this View's mount namespace has it: ours by path; another's reached beneath
        its root with no symlink followed and pinned as /proc/self/fd/N (None: it has none)."""
        if self.root_fd is None:
            return self._shm_dir
        from .kinds.paths import pin_directory
        return pin_directory("dev/shm", self.root_fd)

    @property
    def shm_name(self) -> str:
        """/dev/shm as messages name it."""
        if self.root_fd is None:
            return self._shm_dir
        return f"/dev/shm of mount namespace {self.mnt_ns}"

    @cached_property
    def shm_dev(self) -> Optional[int]:
        try:
            return os.stat(self.shm_dir).st_dev if self.shm_dir else None
        except OSError:
            return None

    # --- host-wide facts, shared by every View of the run ---

    @property
    def maps(self) -> maps_module.MapsScan:
        return self.host.maps

    @property
    def pids(self) -> set:
        return self.host.pids

    @property
    def shmem_dev(self) -> Optional[int]:
        return self.host.shmem_dev

    def comm(self, pid: int) -> str:
        name = self.host.comms.get(pid)
        if name is None:
            name = self.host.comms[pid] = process.comm(pid, self.proc)
        return name

    def uid_of(self, pid: int) -> Optional[int]:
        if pid not in self.host.uids:
            self.host.uids[pid] = process.owner_uid(pid, self.proc)
        return self.host.uids[pid]

    def same_ipc_namespace(self, pid: int) -> bool:
        theirs = self.host.namespace_of(pid, "ipc")
        return theirs is None or theirs == self.ipc_ns

    def fstype(self, dev: int, pid: int) -> Optional[str]:
        """Filesystem type of a device (device numbers are host-wide); a process in another
        mount namespace is asked itself."""
        fstypes = self.host.fstypes
        if not fstypes:
            fstypes.update(_safe_mountinfo("self", self.proc))
        if dev not in fstypes:
            for d, kind in _safe_mountinfo(pid, self.proc).items():
                fstypes.setdefault(d, kind)
        return fstypes.get(dev)

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
        table = self.host.open_files
        return {key: sorted({pid for pid, _link, _target in table[key]}) for key in wanted if key in table}

    def holder_pids(self, dev: int, ino: int) -> List[int]:
        """Pids holding an open fd on the file (dev, inode), ascending: a look-up in the run's one
        pass over /proc/*/fd (Host.open_files), however many files are asked about."""
        found = self.host.open_files.get((dev, ino))
        return sorted({pid for pid, _link, _target in found}) if found else []

    def file_users(self, dev: int, ino: int) -> List[int]:
        """Pids that map the file (dev, ino) or hold it open."""
        pids = {pid for pid, m in self.mappings() if (m.dev, m.inode) == (dev, ino)}
        pids.update(self.holders({(dev, ino): None}).get((dev, ino), ()))
        return sorted(pids)


def _open_namespace(proc: str, pid: Optional[int], ns_type: str, expected: int) -> int:
    """An fd of PID's namespace file, checked to be the namespace expected (pids are reused)."""
    from .errors import NotFound, from_oserror
    try:
        fd = os.open(f"{proc}/{pid}/ns/{ns_type}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise from_oserror(exc, f"{ns_type} namespace of pid {pid}") from None
    if os.fstat(fd).st_ino != expected:
        os.close(fd)
        raise NotFound(f"{ns_type} namespace {expected}", f"pid {pid} left it")
    return fd


System = View  # the name the design gives it


def _safe_mountinfo(pid, proc: str) -> Dict[int, str]:
    try:
        return read_mountinfo(pid, proc)
    except OSError:
        return {}
