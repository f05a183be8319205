"""shmctl watch: the segments as they change, on a live screen or as JSON lines (--events)."""
from __future__ import annotations

import os
import sys
import time
from typing import List, Optional

import click

from .. import KINDS
from ..errors import Exit
from .output import is_terminal, note
from .params import DURATION, FILE, complete_columns

EVENTS_HELP = """\b
--events prints one JSON object per line, flushed at once, for each change:
  {"time", "event": created|removed|resized|attached|detached|marked,
   "address", "kind", "name", "size", "old_size" (resized only), "owner",
   "uid", "nattch", "pids", "by": {"pid", "comm", "source"} or null}
What exists when watch starts is the baseline: it makes no events.

\b
Who did it ("by"), and what can be known:
  posix  root: fanotify on /dev/shm names the process that created, removed
         or resized an object ("source": "fanotify"; comm read at once, null
         if it was gone). Others: inotify only wakes the view, "by" is null.
  sysv   attach/detach: lpid, the pid of the last shmat/shmdt ("lpid");
         created: the creator pid ("cpid"). A removal or IPC_RMID ("marked")
         names nobody: the kernel keeps no such pid.
  mmap   created, removed, attach/detach (posix's too) from the maps scan,
         one scan per refresh ("scan")."""


@click.command("watch", epilog=EVENTS_HELP, short_help="Watch segments change, live or as JSON events.")
@click.option("-k", "--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind (repeatable). Default: all three.")
@click.option("-n", "--interval", type=DURATION, default="2s", show_default=True, metavar="DURATION",
              help="Seconds between two looks (500ms, 2s, 1m); /dev/shm changes show at once.")
@click.option("--sort", "sort_column", metavar="COL", shell_complete=complete_columns,
              help="Sort the screen by a column (numbers largest first); `s` cycles it. Default: SIZE.")
@click.option("-A", "--all-namespaces", "everywhere", is_flag=True,
              help="Every IPC namespace and /dev/shm on the host (containers); only the own /dev/shm "
                   "wakes the view at once, the others are looked at each interval.")
@click.option("--events", is_flag=True, help="JSON lines on stdout instead of the screen (for scripts and logs).")
@click.option("--log", "log_file", type=FILE, metavar="FILE",
              help="Also append the JSON lines to FILE (created 0600; never through a symlink).")
@click.option("-W", "--notruncate", is_flag=True,
              help="Never cut or drop a column (as list -W); the screen crops what is wider than itself, as "
                   "watch(1) does. Without it, names are cut with '…' and the least important columns "
                   "dropped to fit; the address is never cut.")
def watch_command(kinds, interval, sort_column, everywhere, events, log_file, notruncate):
    """A live view of the shared-memory segments: new ones green, grown yellow, shrunk cyan,
    removed red, attach and detach bold; `q` quits, `s` changes the sort, Ctrl-C stops (130).

    Each interval (and at once when /dev/shm changes) the segments are looked at anew: one
    read of /proc/sysvipc/shm, one scan of the processes' maps. Only the last look is kept,
    so a watch may run for days.
    """
    from ..errors import UsageError
    from ..fields import COLUMNS
    if interval <= 0:
        raise UsageError(f"invalid interval {interval:g}", "it must be more than 0", "e.g. -n 2s or -n 500ms")
    if sort_column and sort_column.upper() not in COLUMNS:
        raise UsageError(f"unknown sort column '{sort_column}'", "", "columns: " + ",".join(COLUMNS))
    if not events and not is_terminal():
        raise UsageError("watch", "stdout is not a terminal", "use --events for JSON lines")
    chosen = list(dict.fromkeys(kinds)) or list(KINDS)
    log_fd = _open_log(log_file) if log_file else None
    from ..watch.loop import LineSink, Watcher, run
    watcher = Watcher(chosen, everywhere)
    try:
        watcher.baseline()
        sinks = [LineSink(log_fd)] if log_fd is not None else []
        if events:
            note(f"watching {', '.join(chosen)} every {interval:g}s; /dev/shm changes: {_method(watcher)}")
            return run(watcher, interval, [LineSink(sys.stdout.fileno())] + sinks, watch_out=sys.stdout.fileno())
        return _on_screen(watcher, interval, chosen, sort_column.upper() if sort_column else "SIZE", sinks,
                          notruncate)
    finally:
        watcher.close()
        if log_fd is not None:
            os.close(log_fd)


def _method(watcher) -> str:
    return {"fanotify": "fanotify (who did it: yes)", "inotify": "inotify (who did it: unknown)"}.get(
        watcher.method, "polled")


def _open_log(path: str) -> int:
    from ..outfile import append_file
    return append_file(path)


class ScreenSink:
    """The live screen: a rich Live on the alternate screen, redrawn after each look and key."""

    def __init__(self, watcher, interval: float, kinds: List[str], sort: str, live, style):
        from ..fields import default_columns
        from collections import deque
        self.watcher, self.interval, self.kinds, self.sort = watcher, interval, kinds, sort
        self.live, self.style = live, style
        self.columns = default_columns(kinds, watcher.everywhere)
        if sort not in self.columns:
            self.columns.append(sort)
        self.marks: dict = {}  # address -> (Mark, until)
        self.removed = deque(maxlen=64)  # (Segment, until): shown struck for one refresh

    def update(self, events) -> None:
        from ..render.watch import marks_from
        now = time.monotonic()
        until = now + max(self.interval, 1.0) - 0.01
        self.marks = {a: m for a, m in self.marks.items() if m[1] > now}
        self.marks.update((a, (m, until)) for a, m in marks_from(events).items())
        gone = {e["address"] for e in events if e["event"] == "removed"}
        kept = [(s, u) for s, u in self.removed if u > now]
        self.removed.clear()
        self.removed.extend(kept + [(s, until) for s in self._last_of(gone)])
        self.draw()

    def _last_of(self, addresses) -> list:
        from ..address import printable
        return [s for s in self._previous if printable(s.address) in addresses]

    def remember(self) -> None:
        self._previous = list(self.watcher.segments)

    def key(self, char: str) -> Optional[int]:
        if char in "qQ":
            return Exit.OK
        if char in "sS":
            from ..render.watch import next_sort
            self.sort = next_sort(self.sort, self.columns)
        return None

    def draw(self) -> None:
        from ..render.watch import header_line, screen
        from .output import terminal_width
        self.style.width = terminal_width()
        height = self.live.console.size.height
        marks = {a: m for a, (m, _u) in self.marks.items()}
        removed = [s for s, _u in self.removed]
        about = f"every {self.interval:g}s, {self.watcher.method}"
        header = header_line(time.strftime("%H:%M:%S"), self.watcher.segments, self.kinds, self.style,
                             about)
        self.live.update(screen(self.watcher.segments, removed, marks, self.columns, self.style, self.sort, header,
                                height), refresh=True)
        self.remember()


def _on_screen(watcher, interval: float, kinds: List[str], sort: str, sinks, notruncate: bool = False) -> int:
    from rich.console import Console
    from rich.live import Live

    from ..watch.loop import run
    from .output import make_style
    style = make_style(False)
    style.notruncate = notruncate
    console = Console()
    with _keys_mode() as keys_fd, Live(console=console, screen=True, auto_refresh=False,
                                       redirect_stdout=False, redirect_stderr=False) as live:
        view = ScreenSink(watcher, interval, kinds, sort, live, style)
        view.draw()
        return run(watcher, interval, [view] + sinks, keys_fd=keys_fd, refresh=view.draw)


class _keys_mode:
    """stdin in cbreak mode without echo (keys arrive one by one, Ctrl-C still signals), put
    back as it was on every way out: q, an error, SIGINT, SIGTERM, SIGHUP."""

    def __enter__(self) -> Optional[int]:
        import termios
        self.saved = None
        if not sys.stdin.isatty():
            return None
        import tty
        self.fd = sys.stdin.fileno()
        self.saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd, termios.TCSANOW)
        attrs = termios.tcgetattr(self.fd)
        attrs[3] &= ~termios.ECHO
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)
        return self.fd

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)
