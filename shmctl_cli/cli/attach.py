"""shmctl attach ADDRESS: hold a segment mapped until a signal, a time, or a command ends."""
from __future__ import annotations

import signal
import subprocess
import time

import click

from ..errors import Exit
from ..signals import STOPS
from .params import ADDRESS, DURATION, complete_attach_command


def _child_unblock() -> None:
    # every signal attach blocked, SIGCHLD too: a blocked mask is inherited through exec
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {*STOPS, signal.SIGCHLD})


def _run_command(command) -> int:
    """The command's exit status (128+N if a signal N killed it). A stop signal sent to us
    is passed on to it (a terminal's Ctrl-C reached it already), and we go on waiting; a
    second one kills it (SIGKILL, as `timeout --kill-after`): no wait without a bound, even
    for a command that ignores signals."""
    try:
        child = subprocess.Popen(list(command), preexec_fn=_child_unblock)
    except OSError as exc:  # the shell's convention: 127 not found, 126 not runnable
        import sys
        sys.stderr.write(f"shmctl: run {command[0]}: {exc.strerror}\n")
        return Exit.COMMAND_NOT_FOUND if isinstance(exc, FileNotFoundError) else Exit.COMMAND_NOT_RUNNABLE
    stops = 0
    while True:
        info = signal.sigwaitinfo({*STOPS, signal.SIGCHLD})
        if info.si_signo != signal.SIGCHLD and child.poll() is None:
            stops += 1
            child.send_signal(info.si_signo if stops == 1 else signal.SIGKILL)
        status = child.poll()
        if status is not None:
            return status if status >= 0 else 128 - status


def _wait(duration, command) -> int:
    """Exit status: the command's, 0 when the time is up, 128+N for signal N. The stop
    signals are blocked for the whole of attach and taken here with sigwaitinfo: one that
    arrives at any moment, before or after the "attached" line, ends the wait the same way."""
    if command:
        return _run_command(command)
    if duration is None:
        return Exit.stopped_by(signal.sigwaitinfo(STOPS).si_signo)
    deadline = time.monotonic() + duration
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return Exit.OK
        info = signal.sigtimedwait(STOPS, left)
        if info is not None:
            return Exit.stopped_by(info.si_signo)


@click.command("attach", short_help="Hold a segment mapped, so that it shows as attached.")
@click.argument("address", type=ADDRESS)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="[-- COMMAND [ARGS]...]",
                shell_complete=complete_attach_command)
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

    from .. import kinds
    from ..address import printable
    from .output import note

    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)  # taken by _wait, never mid-step
    if command:
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
    view = kinds.View()
    with kinds.open_segment(address, view, writable=not readonly) as handle:
        if handle.size == 0:
            from ..errors import Conflict
            raise Conflict(f"attach {handle.address}", "it is empty: 0 bytes cannot be mapped")
        start, detach = handle.attach(readonly)
        try:
            if lock:
                handle.lock_pages(start, f"attach {handle.address} --lock")
            mode = "read-only" if readonly else "read-write"
            from ..units import format_size
            note(f"attached {handle.address} at 0x{start:x} ({format_size(handle.size)}, {mode}{', locked' if lock else ''}) "
                 f"in pid {os.getpid()}")
            # the printed form, which every command reads back as this object (raw, a name
            # holding `\x41` would reach another one)
            os.environ["SHMCTL_ADDRESS"] = printable(handle.address)
            status = _wait(duration, command)
        finally:
            detach()
    note(f"detached {handle.address}")
    return status
