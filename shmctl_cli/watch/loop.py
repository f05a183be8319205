"""The poll loop of `shmctl watch`: a snapshot every interval, or at once when /dev/shm
changes; the events between two snapshots go to the sinks (the screen, JSON lines).

Bounded over days: the state is the last snapshot only (the screen keeps a bounded list of
what was removed lately); each snapshot is a fresh View (its caches and maps scan dropped
with it), the formatted-time cache is forgotten, and directory fds a collect pins are closed.
"""
from __future__ import annotations

import os
import select
import stat
import time
from typing import Callable, List, Optional, Sequence

from .. import signals
from ..model import Segment
from . import events as ev
from .notify import Actors, Notifier, open_notifier

MIN_GAP = 0.05  # seconds between two snapshots however fast /dev/shm changes


class Watcher:
    """Snapshots of the chosen kinds and the events between them."""

    def __init__(self, kinds: Sequence[str], everywhere: bool = False, notify: bool = True):
        from ..kinds import View
        self.kinds, self.everywhere = list(kinds), everywhere
        self.base = View()
        self.notifier = open_notifier(self.base.shm_dir) if notify and "posix" in self.kinds else Notifier()
        self.actors = Actors(self.comm)
        self.state: ev.Snapshot = {}
        self.segments: List[Segment] = []
        self.hidden: List[int] = []
        self.taken = 0.0  # time.monotonic() of the last snapshot

    @property
    def method(self) -> str:
        return self.notifier.method

    def comm(self, pid: int) -> Optional[str]:
        from ..procfs.process import comm
        name = comm(pid, self.base.proc)
        return None if name == "?" else name

    def collect(self) -> List[Segment]:
        from .. import kinds as backend
        from ..units import forget_times
        forget_times()
        before = _open_fds()
        from ..system import View
        base = self.base  # a fresh Host: the processes and their maps are looked at anew
        view = View(base.proc, base._shm_dir, base.sys_root, base.sysctl_dir, base.ns_pid, home=base.home)
        for cached in ("root_fd", "shm_dir"):  # the base View's: opened once for the run
            if cached in self.base.__dict__:
                view.__dict__[cached] = self.base.__dict__[cached]
        try:
            inv = backend.collect(self.kinds, view, processes=True, everywhere=self.everywhere)
        finally:
            _close_pinned_since(before)
        self.hidden = sorted(view.maps.hidden_pids) if view.host.scanned else []
        return inv.segments

    def baseline(self) -> None:
        """The first snapshot: what exists at the start makes no events."""
        self.notifier.drain()
        self.segments = self.collect()
        self.state = ev.snapshot(self.segments)
        self.taken = time.monotonic()

    def notified(self) -> None:
        self.actors.record(self.notifier.drain())

    def step(self) -> List[dict]:
        """A new snapshot, and the events since the last one."""
        self.notified()
        segments = self.collect()
        self.notified()  # touches that came during the collect may be what it saw
        new = ev.snapshot(segments)
        from ..system import user_name
        ctx = ev.Context(time.time(), user_name, self.comm, self._actor)
        found = ev.diff(self.state, new, ctx)
        self.state, self.segments, self.taken = new, segments, time.monotonic()
        self.actors.age()
        return found

    def _actor(self, change: str, seg: Segment) -> Optional[dict]:
        if seg.kind != "posix" or not seg.name or self.notifier.method != "fanotify":
            return None
        found = self.actors.find(change, seg.name.lstrip("/"))
        return None if found is None else ev.by_dict(found[0], found[1], "fanotify")

    def close(self) -> None:
        self.notifier.close()


def _open_fds() -> set:
    try:
        return set(map(int, os.listdir("/proc/self/fd")))
    except OSError:
        return set()


def _close_pinned_since(before: set) -> None:
    """The directories a collect pinned beneath other mount namespaces' roots (-A) stay open
    for a run; a watch runs for days: close those it opened, the IPC home fd excepted."""
    from ..kinds import paths
    from ..system import _joined
    for name, fd in list(paths._pinned.items()):
        if fd not in before:
            del paths._pinned[name]
            os.close(fd)
    for fd in _open_fds() - before:
        if fd != _joined["home_fd"] and _is_directory(fd):
            os.close(fd)


def _is_directory(fd: int) -> bool:
    try:
        return stat.S_ISDIR(os.fstat(fd).st_mode)
    except OSError:
        return False


class Sink:
    """Where a loop's results go: `update(events)` after each snapshot, `key(char)` for a key
    pressed (an exit status to stop with, or None), `hangup()` whether its reader left."""

    def update(self, events: List[dict]) -> None:
        pass

    def key(self, char: str) -> Optional[int]:
        return None


class LineSink(Sink):
    """JSON lines to an fd, one write and flush per line (stdout, or a --log file)."""

    def __init__(self, fd: int):
        self.fd = fd

    def update(self, events: List[dict]) -> None:
        import json
        for e in events:
            data = (json.dumps(e) + "\n").encode()
            while data:
                data = data[os.write(self.fd, data):]


def run(watcher: Watcher, interval: float, sinks: Sequence[Sink], keys_fd: Optional[int] = None,
        watch_out: Optional[int] = None, refresh: Optional[Callable[[], None]] = None) -> int:
    """Until a key says stop (its status), a signal (Signalled) or the reader of `watch_out`
    leaves (BrokenPipeError). `refresh` redraws without a new snapshot (a key changed the
    sort, the terminal its size)."""
    poller = select.poll()
    wakeup = signals.wakeup_fd()
    for fd in (watcher.notifier.fileno(), wakeup, keys_fd):
        if fd is not None and fd >= 0:
            poller.register(fd, select.POLLIN)
    if watch_out is not None and signals.is_pipe(watch_out):
        poller.register(watch_out, 0)  # POLLERR when the reader goes
    due = watcher.taken + interval
    while True:
        timeout = max(0.0, due - time.monotonic())
        for fd, mask in poller.poll(timeout * 1000):
            if fd == wakeup:
                os.read(wakeup, 512)  # the handler runs (and raises) as the loop turns
            elif fd == keys_fd:
                status = _keys(fd, sinks, refresh)
                if status is _CLOSED:
                    poller.unregister(fd)  # stdin ended: no more keys, the view goes on
                    keys_fd = None
                elif status is not None:
                    return status
            elif fd == watcher.notifier.fileno():
                watcher.notified()
                due = min(due, watcher.taken + MIN_GAP)
            elif fd == watch_out and mask & (select.POLLERR | select.POLLHUP):
                raise BrokenPipeError
        if time.monotonic() >= due:
            found = watcher.step()
            with signals.deferred():  # every sink gets the step's events, or none does
                for sink in sinks:
                    sink.update(found)
            due = watcher.taken + interval


_CLOSED = -1  # a status no key returns: stdin is done


def _keys(fd: int, sinks: Sequence[Sink], refresh) -> Optional[int]:
    try:
        data = os.read(fd, 64)
    except BlockingIOError:
        return None
    except OSError:  # EIO: the terminal hung up
        return _CLOSED
    if not data:
        return _CLOSED
    for char in data.decode("latin-1"):
        for sink in sinks:
            status = sink.key(char)
            if status is not None:
                return status
    if refresh is not None:
        refresh()
    return None
