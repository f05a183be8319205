"""The measures of bench/run, in the order of issue 13's table: each suite makes what it measures
(in the private namespace), runs shmctl and the classic tool interleaved, and removes what it made."""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple, Union

import fixtures
from results import INTERPRETER, KERNEL_TEXT, STARTUP, Figure, Fit, Floor, Goal, Row, marginal_costs
from runner import Cmd, CommandFailed, Samples, compare, median_time, progress


@dataclass
class Sizes:
    segments: Tuple[int, ...] = (1000, 4000, 16000, 32000)
    removed: int = 4000
    posix: int = 16000
    processes: int = 400
    data: int = 1 << 30
    completed: int = 4000
    pairs: int = 5
    warmup: int = 1


QUICK = Sizes(segments=(50, 100, 200, 400), removed=100, posix=200, processes=10, data=8 << 20, completed=100,
              pairs=2, warmup=1)


@dataclass
class Context:
    shmctl: List[str]
    sizes: Sizes
    workdir: str              # a private tmpfs: the data file and the tmpfs target
    lsipc: Optional[str]
    lsipc_why: str
    reader: Optional[str]
    reader_why: str
    splicer: Optional[str] = None  # fixtures.build_splicer's pipe reader
    run: int = 0
    floors: List[Floor] = field(default_factory=list)  # every run's, as measured

    def floor(self, name: str, seconds: float) -> None:
        self.floors.append(Floor(self.run, name, seconds))

    def sh(self, *args: str) -> List[str]:
        return [*self.shmctl, *args]

    def compare(self, a: Cmd, b: Cmd, what: str, setup: Optional[Callable[[], None]] = None) -> Samples:
        return compare(a, b, self.sizes.pairs, setup=setup, warmup=self.sizes.warmup, what=what)


def human(size: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size} B"


def rows(sizes: Sizes) -> Dict[str, Row]:
    """Every row, unmeasured, in the order of the issue's table (several tools: one row each)."""
    data, top = human(sizes.data), sizes.segments[-1]
    procs = f"`list -p` with {sizes.processes} processes"
    posix = f"`list --kind posix` at {sizes.posix} objects"
    lo, hi = sizes.segments[0], sizes.segments[-1]
    kernel = f"{KERNEL_TEXT} at {top}"
    return {
        "write-stdin": Row(f"`cat FILE | shmctl write posix:/big -` ({data})", "`cat FILE > /dev/shm/big`",
                           Goal(1.0, rss_mib=64, throughput=True), floor=PIPE_FLOOR),
        "write-file": Row(f"`shmctl write posix:/big FILE` ({data})", "`dd bs=1M conv=notrunc`",
                          Goal(1.0, throughput=True)),
        "write-sysv": Row(f"`shmctl write sysv:ID FILE` ({data})", "a C program read()ing into the shmat mapping",
                          Goal(1.1)),
        "list-json": Row(f"`list --kind sysv --json` at {top} segments", "`lsipc -m --json`",
                         Goal(1.0, rss_mib=60), floor=kernel),
        "list-sysv": Row(f"`list --kind sysv` at {top} segments", "`ipcs -m`", Goal(0.8, every_run=True),
                         floor=kernel),
        "marginal": Row(f"marginal cost per SysV segment ({lo}→{hi}, linear fit)", "`ipcs -m`", Goal(0.6),
                        per_segment=True, floor=KERNEL_TEXT),
        "procs-lsfd": Row(procs, "`lsfd`", Goal(0.35)),
        "procs-maps": Row(procs, "`cat /proc/*/maps` (the floor)", Goal(3.0), floor=MAPS_FLOOR),
        "rm-posix": Row(f"`rm --all --kind posix` of {sizes.removed} objects", "`rm -f /dev/shm/*`", Goal(3.0)),
        "rm-sysv": Row(f"`rm --all --kind sysv` of {sizes.removed} segments", "`ipcrm --all=shm`", Goal(2.0)),
        "stat": Row(f"`stat sysv:ID` at {top} segments", "`ipcs -m -i ID`", Goal(1.5)),
        "posix-lsipc": Row(posix, "`lsipc -M` (util-linux 2.41)", Goal(1.0)),
        "posix-ls": Row(posix, "`ls -l /dev/shm`", Goal(1.2)),
        "read-null": Row(f"`read` {data} to /dev/null", "`cat`", Goal(1.0, keep=True)),
        "read-pipe": Row(f"`read` {data} to a pipe", "`cat`", Goal(1.0, keep=True)),
        "read-file": Row(f"`read` {data} to a tmpfs file", "`cat`", Goal(1.0, keep=True)),
        "completion": Row(f"`stat <Tab>` (bash completion) at {sizes.completed} POSIX objects", STARTUP, Goal(1.5)),
    }


Measured = Dict[str, Union[Figure, str]]  # a str: why the row has no figure


def _figure(samples: Samples, rss: bool = True) -> Figure:
    return Figure.of(samples.a, samples.b, samples.rss_a if rss else None, samples.rss_b if rss else None)


MAPS_FLOOR = "`cat /proc/*/maps`"
PIPE_FLOOR = "`cat FILE | pipe_splice /dev/shm/big`"


def floors(ctx: Context, run: int) -> List[Floor]:
    """The start-up floors of this run: the interpreter, with and without site, and shmctl's own."""
    runs = 2 * ctx.sizes.pairs + 1
    commands = {INTERPRETER: Cmd.of(sys.executable, "-c", "pass"),
                "`python3 -S -c pass`": Cmd.of(sys.executable, "-S", "-c", "pass"),
                STARTUP: Cmd.of(*ctx.sh("--version"))}
    found = [Floor(run, name, median_time(cmd, runs)) for name, cmd in commands.items()]
    progress("floors: " + ", ".join(f"{f.name} {f.seconds * 1000:.1f} ms" for f in found))
    return found


def suite_rm(ctx: Context, out: Measured, fits: List[Fit]) -> None:
    n = ctx.sizes.removed

    def posix_setup() -> None:
        fixtures.posix_clear()
        fixtures.posix_fill(n)
    samples = ctx.compare(Cmd.of(*ctx.sh("rm", "--all", "--kind", "posix", "--yes")),
                          Cmd.shell("rm -f /dev/shm/*"), f"rm {n} POSIX objects", setup=posix_setup)
    out["rm-posix"] = _figure(samples)
    samples = ctx.compare(Cmd.of(*ctx.sh("rm", "--all", "--kind", "sysv", "--yes")), Cmd.of("ipcrm", "--all=shm"),
                          f"rm {n} SysV segments", setup=lambda: fixtures.sysv_fill(n))
    out["rm-sysv"] = _figure(samples)
    fixtures.posix_clear()
    fixtures.sysv_clear()


def _middle_shmid() -> str:
    with open("/proc/sysvipc/shm") as f:
        lines = f.read().splitlines()[1:]
    return lines[len(lines) // 2].split()[1]


def suite_sysv(ctx: Context, out: Measured, fits: List[Fit], run: int) -> None:
    fixtures.sysv_raise_shmmni()
    tools = {"shmctl list --kind sysv": [], "ipcs -m": [], "shmctl list --kind sysv --json": [],
             "lsipc -m --json": [], KERNEL_TEXT: []}
    kernel = Cmd.of("cat", "/proc/sysvipc/shm")
    for n in ctx.sizes.segments:
        fixtures.sysv_fill(n)
        text = ctx.compare(Cmd.of(*ctx.sh("list", "--kind", "sysv")), Cmd.of("ipcs", "-m"), f"list {n} SysV")
        json = ctx.compare(Cmd.of(*ctx.sh("list", "--kind", "sysv", "--json")), Cmd.of("lsipc", "-m", "--json"),
                           f"list --json {n} SysV")
        text_alone = [median_time(kernel, 2 * ctx.sizes.pairs + 1)]
        for name, times in zip(tools, (text.a, text.b, json.a, json.b, text_alone)):
            tools[name].append(times)
    out["list-sysv"] = _figure(text)
    out["list-json"] = _figure(json)
    sizes = ctx.sizes.segments
    ctx.floor(f"{KERNEL_TEXT} at {sizes[-1]}", text_alone[0])
    for name, runs in tools.items():
        fits.append(Fit.of(run, name, {n: statistics.median(t) for n, t in zip(sizes, runs)}))
    ours, theirs = fits[-5], fits[-4]
    per_run = [a / b for a, b in zip(marginal_costs(sizes, tools["shmctl list --kind sysv"]),
                                      marginal_costs(sizes, tools["ipcs -m"]))]
    if theirs.slope <= 0:  # ipcs's cost did not grow with the count: noise swamps it (tiny sizes)
        out["marginal"] = "failed: ipcs's marginal cost came out ≤ 0 (inside the noise): rerun or use larger sizes"
    else:
        out["marginal"] = Figure(ours.slope, theirs.slope, ours.slope / theirs.slope, min(per_run), max(per_run))
    shmid = _middle_shmid()
    samples = ctx.compare(Cmd.of(*ctx.sh("stat", f"sysv:{shmid}")), Cmd.of("ipcs", "-m", "-i", shmid),
                          f"stat at {sizes[-1]} SysV")
    out["stat"] = _figure(samples)
    fixtures.sysv_clear()


def suite_posix(ctx: Context, out: Measured, fits: List[Fit]) -> None:
    fixtures.posix_fill(ctx.sizes.posix)
    ours = Cmd.of(*ctx.sh("list", "--kind", "posix"))
    if ctx.lsipc:
        out["posix-lsipc"] = _figure(ctx.compare(ours, Cmd.of(ctx.lsipc, "-M"), f"list {ctx.sizes.posix} POSIX"))
    out["posix-ls"] = _figure(ctx.compare(ours, Cmd.of("ls", "-l", "/dev/shm"), f"list {ctx.sizes.posix} POSIX"))
    fixtures.posix_clear()


def suite_processes(ctx: Context, out: Measured, fits: List[Fit]) -> None:
    holders = fixtures.start_holders(ctx.sizes.processes)
    try:
        ours = Cmd.of(*ctx.sh("list", "-p"))
        what = f"list -p, {ctx.sizes.processes} processes"
        out["procs-lsfd"] = _figure(ctx.compare(ours, Cmd.of("lsfd"), what))
        out["procs-maps"] = _figure(ctx.compare(ours, Cmd.shell("cat /proc/*/maps", ok=(0, 1)), what))
        ctx.floor(MAPS_FLOOR, out["procs-maps"].theirs)
    finally:
        fixtures.stop_holders(holders)
    fixtures.posix_clear()
    fixtures.sysv_clear()


def suite_data(ctx: Context, out: Measured, fits: List[Fit]) -> None:
    size, source, target = ctx.sizes.data, os.path.join(ctx.workdir, "source"), os.path.join(ctx.workdir, "out")
    fixtures.data_file(source, size)
    big = "/dev/shm/big"
    subprocess.run(ctx.sh("create", "posix:/big", "--size", str(size)), check=True, stdout=subprocess.DEVNULL)
    what = f"{human(size)}"
    out["write-stdin"] = _figure(ctx.compare(Cmd([["cat", source], ctx.sh("write", "posix:/big", "-")]),
                                             Cmd.of("cat", source, stdout=big), f"write - {what}"))
    if ctx.splicer:
        ctx.floor(PIPE_FLOOR, median_time(Cmd([["cat", source], [ctx.splicer, big]]), 2 * ctx.sizes.pairs + 1))
    out["write-file"] = _figure(ctx.compare(Cmd.of(*ctx.sh("write", "posix:/big", source)),
                                            Cmd.of("dd", f"if={source}", f"of={big}", "bs=1M", "conv=notrunc",
                                                   "status=none"), f"write FILE {what}"))
    out["read-null"] = _figure(ctx.compare(Cmd.of(*ctx.sh("read", "posix:/big")), Cmd.of("cat", big),
                                           f"read {what} to /dev/null"))
    out["read-pipe"] = _figure(ctx.compare(Cmd([ctx.sh("read", "posix:/big"), ["cat"]]), Cmd([["cat", big], ["cat"]]),
                                           f"read {what} to a pipe"))
    out["read-file"] = _figure(ctx.compare(Cmd.of(*ctx.sh("read", "posix:/big"), stdout=target),
                                           Cmd.of("cat", big, stdout=target), f"read {what} to a tmpfs file"))
    os.unlink(target)
    fixtures.posix_clear()
    if ctx.reader:
        address = subprocess.run(ctx.sh("create", "sysv", "--size", str(size)), check=True, capture_output=True,
                                 text=True).stdout.strip()
        shmid = address.split(":", 1)[1]
        out["write-sysv"] = _figure(ctx.compare(Cmd.of(*ctx.sh("write", address, source)),
                                                Cmd.of(ctx.reader, shmid, source), f"write sysv FILE {what}"))
        fixtures.sysv_clear()
    os.unlink(source)


def suite_completion(ctx: Context, out: Measured, fits: List[Fit]) -> None:
    """Live completion as the bash script asks for it (the line, COMP_CWORD empty): every
    object's address, read, escaped and quoted, against shmctl starting and stopping."""
    fixtures.posix_fill(ctx.sizes.completed)
    asked = ["_SHMCTL_COMPLETE=bash_complete", "COMP_WORDS=shmctl stat ", "COMP_CWORD=",
             "COMP_WORDBREAKS= \t\n\"'><=;|&(:"]
    ours, startup = Cmd.of("env", *asked, *ctx.shmctl), Cmd.of("env", *ctx.sh("--version"))
    out["completion"] = _figure(ctx.compare(ours, startup, f"completion of {ctx.sizes.completed} POSIX objects"))
    fixtures.posix_clear()


SUITES = {"rm": suite_rm, "sysv": suite_sysv, "posix": suite_posix, "processes": suite_processes,
          "data": suite_data, "completion": suite_completion}
KEYS = {"rm": ("rm-posix", "rm-sysv"), "sysv": ("list-sysv", "list-json", "marginal", "stat"),
        "posix": ("posix-lsipc", "posix-ls"), "processes": ("procs-lsfd", "procs-maps"),
        "data": ("write-stdin", "write-file", "read-null", "read-pipe", "read-file", "write-sysv"),
        "completion": ("completion",)}


def measure(ctx: Context, only: List[str], run: int) -> Tuple[Measured, Dict[str, str], List[Fit]]:
    """One run of the chosen suites: the figures by row key, why a row is missing, the linear fits."""
    out: Measured = {}
    missing: Dict[str, str] = {}
    fits: List[Fit] = []
    ctx.run = run
    ctx.floors += floors(ctx, run)
    for name in only:
        progress(f"run {run}: {name}")
        try:
            if name == "sysv":
                suite_sysv(ctx, out, fits, run)
            else:
                SUITES[name](ctx, out, fits)
        except CommandFailed as e:
            for key in KEYS[name]:
                if key not in out:
                    missing.setdefault(key, f"failed: {e}")
            fixtures.posix_clear()
            fixtures.sysv_clear()
            progress(f"{name} failed: {e}")
    for key, value in list(out.items()):
        if isinstance(value, str):
            missing[key] = out.pop(key)
    if not ctx.lsipc:
        missing["posix-lsipc"] = f"skipped: {ctx.lsipc_why}"
    if not ctx.reader:
        missing["write-sysv"] = f"skipped: {ctx.reader_why}"
    for name in SUITES:
        if name not in only:
            for key in KEYS[name]:
                missing.setdefault(key, "skipped: not run (--only)")
    return out, missing, fits
