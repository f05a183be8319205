"""Running commands for bench/run: one command (a pipeline) timed with its peak RSS from wait4,
interleaved pairs of two commands, and progress on stderr."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

STARTED = time.monotonic()


def progress(text: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {text}", file=sys.stderr, flush=True)


class CommandFailed(Exception):
    pass


@dataclass
class Cmd:
    """A pipeline: stages[0] | stages[1] | ...; stdin of the first stage from a file, stdout of the last
    to a file (truncated, as `>` does) or /dev/null. `ok`: the exit codes that are success."""
    stages: List[List[str]]
    stdin: Optional[str] = None
    stdout: Optional[str] = None
    ok: Tuple[int, ...] = (0,)

    @classmethod
    def of(cls, *argv: str, **kwargs) -> "Cmd":
        return cls([list(argv)], **kwargs)

    @classmethod
    def shell(cls, script: str, **kwargs) -> "Cmd":
        return cls([["sh", "-c", script]], **kwargs)

    def label(self) -> str:
        return " | ".join(" ".join(stage) for stage in self.stages)


def _status(status: int) -> int:
    return os.waitstatus_to_exitcode(status)


TIME = "/usr/bin/time"


def run(cmd: Cmd, rss: bool = False) -> Tuple[float, Optional[float]]:
    """Wall time in seconds and, with `rss`, the highest peak RSS (MiB) of the pipeline's processes
    (else None). The peak comes from /usr/bin/time, a small process that forks and execs the command:
    a command started straight from this Python would be charged Python's own RSS, because a process's
    peak survives exec. A stage's peak counts the children it waited for (a shell's)."""
    reports = [tempfile.NamedTemporaryFile() for _ in cmd.stages] if rss and os.access(TIME, os.X_OK) else []
    stages = [[TIME, "-f", "%M", "-o", report.name, *argv] for report, argv in zip(reports, cmd.stages)] \
        if reports else cmd.stages
    stdin = open(cmd.stdin, "rb") if cmd.stdin else subprocess.DEVNULL
    stdout = open(cmd.stdout, "wb") if cmd.stdout else subprocess.DEVNULL
    errors = tempfile.TemporaryFile()
    procs: List[subprocess.Popen] = []
    try:
        start = time.perf_counter()
        for i, argv in enumerate(stages):
            last = i == len(stages) - 1
            source = procs[-1].stdout if procs else stdin
            procs.append(subprocess.Popen(argv, stdin=source, stdout=stdout if last else subprocess.PIPE,
                                          stderr=errors))
            if i:
                procs[-2].stdout.close()  # only the next stage holds the pipe
        results = []
        for proc in procs:
            _, status, _ = os.wait4(proc.pid, 0)
            proc.returncode = _status(status)
            results.append(proc.returncode)
        elapsed = time.perf_counter() - start
    finally:
        for f in (stdin, stdout):
            if hasattr(f, "close"):
                f.close()
    bad = [code for code in results if code not in cmd.ok]
    if bad:
        errors.seek(0)
        why = errors.read().decode(errors="replace").strip().splitlines()
        raise CommandFailed(f"`{cmd.label()}` exited {bad[0]}" + (f": {why[-1]}" if why else ""))
    peaks = [_peak(report.read().decode()) for report in reports]
    return elapsed, (max(peaks) / 1024 if peaks and None not in peaks else None)


def _peak(report: str) -> Optional[int]:
    """The last line of time's report: KiB (earlier lines say how a command ended, if it did not exit 0)."""
    lines = report.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else None


@dataclass
class Samples:
    """Times (seconds) of interleaved runs of A and B, and the peak RSS (MiB) of each (None: unknown)."""
    a: List[float] = field(default_factory=list)
    b: List[float] = field(default_factory=list)
    rss_a: Optional[float] = None
    rss_b: Optional[float] = None


def compare(a: Cmd, b: Cmd, pairs: int, setup: Optional[Callable[[], None]] = None, warmup: int = 1,
            what: str = "") -> Samples:
    """A B A B ...: first one pair that measures peak RSS (and warms up), then `warmup` - 1 more
    untimed pairs, then `pairs` timed pairs; `setup` (untimed) before every run."""
    samples = Samples()
    for i in range(max(warmup, 1) + pairs):
        for cmd, times in ((a, samples.a), (b, samples.b)):
            if setup:
                setup()
            seconds, rss = run(cmd, rss=i == 0)
            if i == 0:
                samples.rss_a, samples.rss_b = (rss, samples.rss_b) if cmd is a else (samples.rss_a, rss)
            if i >= max(warmup, 1):
                times.append(seconds)
    if what:
        progress(f"{what}: {_median_ms(samples.a)} vs {_median_ms(samples.b)}")
    return samples


def _median_ms(times: Sequence[float]) -> str:
    ordered = sorted(times)
    return f"{ordered[len(ordered) // 2] * 1000:.1f} ms"


def median_time(cmd: Cmd, runs: int, setup: Optional[Callable[[], None]] = None) -> float:
    """The median wall time of `runs` runs of one command, after one untimed run."""
    times = []
    for i in range(runs + 1):
        if setup:
            setup()
        seconds, _ = run(cmd)
        if i:
            times.append(seconds)
    return sorted(times)[len(times) // 2]
