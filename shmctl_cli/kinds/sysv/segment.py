"""One SysV segment by address: its shmid, its shmid_ds, attaching it (a Handle) and removing
it; what both the Kind (__init__.py) and creating (create.py) use."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Optional

from ...errors import NotFound, ShmctlError
from ...model import Segment
from ...system import View
from ...units import format_key

if TYPE_CHECKING:
    from ...address import Address
    from ..access import Handle


def resolve_key(address: "Address") -> int:
    if address.ftok is not None:
        from ...syscalls import ftok
        return ftok(*address.ftok)
    return address.key


def address_of(shmid: int, view: View) -> str:
    """`sysv:ID`, or `sysv@ipc:NS:ID` when the View looks at another IPC namespace than the run's."""
    from ...address import namespace_prefix
    return f"{namespace_prefix('sysv', view.qualifier('sysv'))}:{shmid}"


def resolve_shmid(address: "Address", view: Optional[View] = None) -> int:
    """The shmid the address names, in the View's IPC namespace (joined first)."""
    from ... import syscalls
    if view is not None:
        view.enter_ipc()
    if address.shmid is not None:
        return address.shmid
    key = resolve_key(address)
    try:
        return syscalls.shmget(key, 0, 0)
    except ShmctlError as exc:
        if exc.errno == errno.ENOENT:
            raise NotFound(str(address), f"no SysV segment with key {format_key(key)}",
                           "a segment marked for removal loses its key; see shmctl list -m") from None
        raise


def _stat(shmid: int, address: str):
    from ... import syscalls
    try:
        return syscalls.shmctl_stat(shmid)
    except ShmctlError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM):
            raise NotFound(address, f"no SysV segment with shmid {shmid}", "see shmctl list -m") from None
        raise


def open_segment(address: "Address", view: View, writable: bool) -> "Handle":
    """shmat the segment (read-only unless writing): it counts in nattch while open."""
    from ... import syscalls
    from ..access import Handle
    shmid = resolve_shmid(address, view)  # joins the View's IPC namespace: shmat answers for it
    where = address_of(shmid, view)
    size = _stat(shmid, where).shm_segsz
    try:
        addr = syscalls.shmat(shmid, readonly=not writable)
    except ShmctlError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM):
            raise NotFound(where, "the segment went away") from None
        raise
    memory = syscalls.memory_at(addr, size)
    return Handle(where, size, view=memory if writable else memory.toreadonly(),
                  on_close=lambda: syscalls.shmdt(addr), shmid=shmid, base=addr,
                  ipc_namespace=view.ipc_namespace_inode)


def remove(segment: Segment, view: Optional[View] = None) -> None:
    if view is not None:
        view.enter_ipc()  # IPC_RMID acts on the caller's IPC namespace
    try:
        _syscalls().shmctl_rmid(segment.id)
    except ShmctlError as exc:
        if exc.errno in (errno.EINVAL, errno.EIDRM):
            raise NotFound(segment.address, "already gone") from None
        raise


def _syscalls():
    """shmctl_cli.syscalls, imported on first use (ctypes costs start-up time) and then
    looked up once per call rather than through the import machinery: rm --all calls it per
    segment."""
    global _SYSCALLS
    if _SYSCALLS is None:
        from ... import syscalls
        _SYSCALLS = syscalls
    return _SYSCALLS


_SYSCALLS = None
