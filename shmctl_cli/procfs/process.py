"""Facts about one process, from /proc: command name, owner, IPC namespace, open files."""
from __future__ import annotations

import os
from typing import Iterator, Optional, Tuple



def comm(pid: int, proc: str) -> str:
    try:
        with open(f"{proc}/{pid}/comm", "rb") as f:
            return os.fsdecode(f.read().rstrip(b"\n"))
    except OSError:
        return "?"


def owner_uid(pid: int, proc: str) -> Optional[int]:
    try:
        return os.stat(f"{proc}/{pid}").st_uid
    except OSError:
        return None


def ipc_namespace(pid, proc: str) -> Optional[str]:
    try:
        return os.readlink(f"{proc}/{pid}/ns/ipc")
    except OSError:
        return None


def ipc_namespace_inode(pid, proc: str) -> int:
    """The inode of the process's IPC namespace, 0 when it cannot be read."""
    try:
        return os.stat(f"{proc}/{pid}/ns/ipc").st_ino
    except OSError:
        return 0


def open_files(pid: int, proc: str) -> Iterator[Tuple[str, os.stat_result]]:
    """(link target, stat of the open file) for each regular file fd of a process. Raises
    PermissionError when the fds are not ours to see."""
    fd_dir = f"{proc}/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
            if target.startswith("/"):
                yield target, os.stat(f"{fd_dir}/{fd}")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue


def open_fds(pid: int, proc: str) -> Iterator[Tuple[str, str, os.stat_result]]:
    """(fd link path, link target, stat of the open file) for each fd of a process whose target
    is a path, " (deleted)" included when the file has lost its name. Raises PermissionError
    when the fds are not ours to see."""
    fd_dir = f"{proc}/{pid}/fd"
    for fd in os.listdir(fd_dir):
        link = f"{fd_dir}/{fd}"
        try:
            target = os.readlink(link)
            if target.startswith("/"):
                yield link, target, os.stat(link)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
