"""Namespaces of processes, from /proc/PID/ns: which IPC and mount namespace each process is
in, by the namespace's inode (what lsns prints, what readlink shows as `ipc:[4026531839]`,
and what addresses carry)."""
from __future__ import annotations

import os
from typing import Dict, Iterable, List, Optional


def namespace_inode(pid, ns_type: str, proc: str) -> Optional[int]:
    """The inode of the process's `ns_type` ("ipc", "mnt") namespace, read from the link's
    text `ipc:[N]`; None if it cannot be read (the process is gone, or not ours to see)."""
    try:
        text = os.readlink(f"{proc}/{pid}/ns/{ns_type}")
    except OSError:
        return None
    number = text.rpartition("[")[2].rstrip("]")
    return int(number) if number.isdigit() else None


def members(pids: Iterable[int], ns_type: str, proc: str) -> Dict[int, List[int]]:
    """Namespace inode -> the pids in it, in ascending order; processes whose namespace
    cannot be read are left out."""
    found: Dict[int, List[int]] = {}
    for pid in sorted(pids):
        inode = namespace_inode(pid, ns_type, proc)
        if inode is not None:
            found.setdefault(inode, []).append(pid)
    return found
