"""shmctl attach ADDRESS: hold a segment mapped until a signal, a time, or a command ends."""
from __future__ import annotations

import signal
import subprocess
import time

import click

from .params import ADDRESS, DURATION


class _Stop(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _raise_stop(signum, frame):
    raise _Stop(signum)


def _wait(duration, command) -> int:
    """Exit status: the command's, 0 when the time is up, 128+N for signal N."""
    if command:
        try:
            child = subprocess.Popen(list(command))
        except OSError as exc:  # the shell's convention: 127 not found, 126 not runnable
            import sys
            sys.stderr.write(f"shmctl: run {command[0]}: {exc.strerror}\n")
            return 127 if isinstance(exc, FileNotFoundError) else 126
        while True:
            try:
                status = child.wait()
                return status if status >= 0 else 128 - status
            except _Stop as stop:  # pass it on (a terminal's Ctrl-C reached the child already)
                if child.poll() is None:
                    child.send_signal(stop.signum)
    try:
        if duration is not None:
            deadline = time.monotonic() + duration
            while time.monotonic() < deadline:
                time.sleep(min(1.0, deadline - time.monotonic()))
            return 0
        while True:
            signal.pause()
    except _Stop as stop:
        return 128 + stop.signum


@click.command("attach")
@click.argument("address", type=ADDRESS)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND [ARGS]...]")
@click.option("--readonly", is_flag=True, help="Map it read-only.")
@click.option("--lock", is_flag=True, help="mlock the mapping: its pages stay in RAM while held.")
@click.option("--for", "duration", type=DURATION, metavar="DURATION", help="Hold it this long (30, 1.5s, 10m, 2h).")
def attach_command(address, command, readonly, lock, duration):
    """Hold a segment mapped: it shows in nattch and in /proc/PID/maps.

    Until SIGINT/SIGTERM (exit 130/143), --for DURATION (exit 0), or until
    `-- COMMAND ARGS...` exits (then with its status; it runs with SHMCTL_ADDRESS set, and no
    shell). Where it attached goes to stderr. It always detaches, and leaves nothing behind.
    """
    import os

    from .. import kinds, syscalls
    from .output import note

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise_stop)
    view = kinds.View()
    with kinds.open_segment(address, view, writable=not readonly) as handle:
        if handle.size == 0:
            from ..errors import Conflict
            raise Conflict(f"attach {handle.address}", "it is empty: 0 bytes cannot be mapped")
        start, detach = _map(handle, readonly)
        try:
            if lock:
                syscalls.mlock(start, handle.size)
            mode = "read-only" if readonly else "read-write"
            note(f"attached {handle.address} at 0x{start:x} ({handle.size} bytes, {mode}{', locked' if lock else ''}) "
                 f"in pid {os.getpid()}")
            os.environ["SHMCTL_ADDRESS"] = handle.address
            status = _wait(duration, command)
        finally:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # detach whatever comes next
            detach()
    note(f"detached {handle.address}")
    return status


def _map(handle, readonly: bool):
    """(address, detach) of the segment in this process: SysV is attached already (shmat),
    a file is mapped MAP_SHARED here."""
    from .. import syscalls
    if handle.base is not None:
        return handle.base, lambda: None
    start = syscalls.mmap_shared(handle.fd, handle.size, writable=not readonly)
    return start, lambda: syscalls.munmap(start, handle.size)
