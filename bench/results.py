"""The pure parts of bench/run: figures from interleaved samples (ratio of medians, spread of the
per-pair ratios), the linear fit of time against segment count, goals and their verdicts, and
bench/RESULTS.md: its writer, its parser (tools/docgen.py builds README's "How shmctl compares"
table from it) and that README table. No process is run here.
"""
from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

TITLE = "# shmctl benchmark results"
NOISE_RUNS = 3  # a figure inside the noise counts only if it holds in this many runs


# -- figures ------------------------------------------------------------------------------------

def ratio_of_medians(ours: Sequence[float], theirs: Sequence[float]) -> float:
    """shmctl's median time over the other tool's median time: below 1.0 shmctl is faster."""
    return statistics.median(ours) / statistics.median(theirs)


def spread(ours: Sequence[float], theirs: Sequence[float]) -> Tuple[float, float]:
    """The lowest and highest ratio of the interleaved pairs (run i of shmctl against run i of the other)."""
    ratios = [a / b for a, b in zip(ours, theirs)]
    return min(ratios), max(ratios)


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> Tuple[float, float]:
    """Least squares y = fixed + slope * x: (fixed, slope)."""
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / sum((x - mean_x) ** 2 for x in xs)
    return mean_y - slope * mean_x, slope


def marginal_costs(sizes: Sequence[int], runs: Sequence[Sequence[float]]) -> List[float]:
    """The slope (seconds per segment) of each run index i: runs[s][i] is run i's time at sizes[s]."""
    count = min(len(r) for r in runs)
    return [linear_fit(sizes, [r[i] for r in runs])[1] for i in range(count)]


@dataclass
class Figure:
    """One run of bench/run for one row: medians (seconds, or seconds per segment), the ratio of the
    medians, the min-max of the per-pair ratios, peak RSS in MiB of each command (None: not measured)."""
    ours: float
    theirs: float
    ratio: float
    low: float
    high: float
    rss_ours: Optional[float] = None
    rss_theirs: Optional[float] = None

    @classmethod
    def of(cls, ours: Sequence[float], theirs: Sequence[float], rss_ours: Optional[float] = None,
           rss_theirs: Optional[float] = None) -> "Figure":
        low, high = spread(ours, theirs)
        return cls(statistics.median(ours), statistics.median(theirs), ratio_of_medians(ours, theirs), low, high,
                   rss_ours, rss_theirs)


@dataclass
class Goal:
    """shmctl's time over the other tool's must be at most `ratio` (and its peak RSS at most `rss_mib`).
    every_run: the highest pair ratio must hold too, not only the median."""
    ratio: float
    rss_mib: Optional[float] = None
    every_run: bool = False
    throughput: bool = False
    keep: bool = False

    def text(self) -> str:
        words = f"≤ {_num(self.ratio)}×"
        if self.throughput:
            words += f" time (≥ {_num(1 / self.ratio)}× throughput)"
        if self.every_run:
            words += " in every run"
        if self.keep:
            words += " (keep)"
        if self.rss_mib is not None:
            words += f", peak RSS ≤ {self.rss_mib:g} MiB"
        return words

    @classmethod
    def parse(cls, text: str) -> "Goal":
        ratio = re.match(r"≤ ([0-9.]+)×", text)
        rss = re.search(r"peak RSS ≤ ([0-9.]+) MiB", text)
        if not ratio:
            raise ValueError(f"not a goal: {text!r}")
        return cls(float(ratio[1]), float(rss[1]) if rss else None, "in every run" in text,
                   "throughput" in text, "(keep)" in text)

    # verdicts are taken on the figures as RESULTS.md prints them (ratios to 0.01, RSS to 0.1 MiB),
    # so the file read back gives the same verdicts
    def holds(self, figure: Figure) -> bool:
        worst = round(figure.high if self.every_run else figure.ratio, 2)
        memory_ok = self.rss_mib is None or (figure.rss_ours is not None and round(figure.rss_ours, 1) <= self.rss_mib)
        return worst <= self.ratio and memory_ok

    def noisy(self, figure: Figure) -> bool:
        """The pairs' spread straddles the goal: the median alone does not settle it."""
        return not self.every_run and round(figure.low, 2) <= self.ratio < round(figure.high, 2)


@dataclass
class Row:
    """One line of the table: a measure of shmctl against another tool, one Figure per run of
    bench/run, or `missing` ("skipped: why" / "failed: why")."""
    measure: str
    versus: str
    goal: Goal
    figures: List[Figure] = field(default_factory=list)
    missing: str = ""
    per_segment: bool = False  # the figures are seconds per segment (the linear fit's slope)
    floor: str = ""  # the floor (FLOORS, or a tool of the fit) that a budget of this row cannot go below

    def verdict(self) -> str:
        if self.missing or not self.figures:
            return self.missing or "skipped: not measured"
        if not all(self.goal.holds(f) for f in self.figures):
            return "not met"
        if any(self.goal.noisy(f) for f in self.figures):
            if len(self.figures) < NOISE_RUNS:
                return f"inside the noise: needs {NOISE_RUNS} runs (--repeat {NOISE_RUNS})"
            return f"met ({len(self.figures)} runs)"
        return "met"


@dataclass
class Fit:
    """Run `run`'s median time of one tool at each segment count, and the linear fit through them."""
    run: int
    tool: str
    times: Dict[int, float]
    fixed: float
    slope: float

    @classmethod
    def of(cls, run: int, tool: str, times: Dict[int, float]) -> "Fit":
        fixed, slope = linear_fit(list(times), list(times.values()))
        return cls(run, tool, times, fixed, slope)


@dataclass
class Floor:
    """Run `run`'s median time of a command that bounds what shmctl can reach from below."""
    run: int
    name: str
    seconds: float


INTERPRETER = "`python3 -c pass`"
STARTUP = "`shmctl --version`"
KERNEL_TEXT = "cat /proc/sysvipc/shm"  # a tool of the fit: the kernel's own text, that every lister reads
FLOORS = {  # name (or its start): what it is
    INTERPRETER: "the interpreter starting and stopping, with this machine's site-packages (.pth files)",
    "`python3 -S -c pass`": "the interpreter alone, without site",
    STARTUP: "shmctl's start-up: the interpreter, click and shmctl's own imports",
    KERNEL_TEXT: "the kernel writing the table's text, which ipcs, lsipc and shmctl all read",
    "`cat /proc/*/maps`": "the kernel writing every process's maps, which lsfd and shmctl -p read",
    "`cat FILE | pipe_splice": "a C reader of cat's pipe with `write -`'s data path (splice, 1 MiB pipe), "
                               "without start-up (bench/pipe_splice.c)",
}


def floor_meaning(name: str) -> str:
    return next((what for start, what in FLOORS.items() if name.startswith(start)), "")


@dataclass
class Results:
    meta: Dict[str, str]
    rows: List[Row]
    fits: List[Fit] = field(default_factory=list)
    floors: List[Floor] = field(default_factory=list)


# -- text -----------------------------------------------------------------------------------------

def _num(value: float) -> str:
    text = f"{value:.2f}"
    return text[:-1] if text.endswith("0") else text


def format_time(seconds: float) -> str:
    """Signed: a fit's fixed cost may come out below zero."""
    size = abs(seconds)
    if size < 1e-3:
        return f"{seconds * 1e6:.3f} µs"
    if size < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3f} s"


def parse_time(text: str) -> float:
    number, unit = text.split()
    return float(number) * {"µs": 1e-6, "ms": 1e-3, "s": 1.0}[unit]


def _rss(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f}"


def _parse_rss(text: str) -> Optional[float]:
    return None if text == "—" else float(text)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _uncell(text: str) -> str:
    return text.strip().replace("\\|", "|")


def _split(line: str) -> List[str]:
    return [_uncell(c) for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


ROW_HEADER = ("measure", "against", "shmctl", "other", "ratio (min–max)", "peak RSS MiB shmctl / other",
              "goal", "met")
FIT_HEADER = ("run", "tool", "fixed", "per segment")


def _figure_cells(row: Row) -> List[str]:
    if not row.figures:
        return ["—", "—", "—", "—"]
    unit = "/segment" if row.per_segment else ""
    return ["; ".join(format_time(f.ours) + unit for f in row.figures),
            "; ".join(format_time(f.theirs) + unit for f in row.figures),
            "; ".join(f"{f.ratio:.2f}× ({f.low:.2f}–{f.high:.2f})" for f in row.figures),
            "; ".join(f"{_rss(f.rss_ours)} / {_rss(f.rss_theirs)}" for f in row.figures)]


def _table(header: Sequence[str], lines: List[List[str]]) -> List[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(_cell(c) for c in cells) + " |" for cells in lines]


def write(results: Results) -> str:
    out = [TITLE, "", "Written by `sudo bench/run`; do not edit (README's \"How shmctl compares\" is built from "
                      "this file by `python tools/docgen.py`).", ""]
    out += [f"- {key}: {value}" for key, value in results.meta.items()]
    out += ["", "Each figure is shmctl's time over the other tool's, as the ratio of the medians of interleaved "
                "runs (shmctl, other, shmctl, other, ...), with the lowest and highest ratio of the pairs in "
                "brackets: below 1.0× shmctl is faster. Several runs of bench/run (--repeat) are separated by "
                f"`;`. A goal whose pairs straddle it is inside the noise and counts only if it holds in "
                f"{NOISE_RUNS} runs. Peak RSS is each command's ru_maxrss (wait4).", "", "## Figures", ""]
    lines = [[r.measure, r.versus, *_figure_cells(r), r.goal.text(), r.verdict()] for r in results.rows]
    out += _table(ROW_HEADER, lines)
    if results.fits:
        sizes = sorted({n for fit in results.fits for n in fit.times})
        out += ["", "## Linear fit: time against the number of SysV segments", "",
                "Median time of each tool at each count, and the least-squares line through them: the fixed "
                "cost and the marginal cost per segment.", ""]
        lines = [[str(f.run), f.tool, *(format_time(f.times[n]) for n in sizes), format_time(f.fixed),
                  format_time(f.slope)] for f in results.fits]
        out += _table((*FIT_HEADER[:2], *map(str, sizes), *FIT_HEADER[2:]), lines)
    if results.floors:
        out += ["", "## Floors", "", "What no program can skip: measured in the same runs, as medians. A goal "
                "whose whole budget (its ratio times the other tool's time) is below a floor is out of reach "
                "for any program that pays that floor.", ""]
        out += _table(FLOOR_HEADER, [[str(f.run), f.name, floor_meaning(f.name), format_time(f.seconds)]
                                     for f in results.floors])
        out += ["", "## Budgets of the goals not met", ""]
        out += _table(BUDGET_HEADER, budgets(results))
    return "\n".join(out) + "\n"


FLOOR_HEADER = ("run", "floor", "what it is", "median")
BUDGET_HEADER = ("not met", "budget (goal × other's median)", "shmctl's start-up", "floor of its own",
                 "left for the work")


def _median_floor(results: Results, name: str) -> Optional[float]:
    times = [f.seconds for f in results.floors if f.name == name]
    times += [fit.slope for fit in results.fits if fit.tool == name]
    return statistics.median(times) if times else None


def budgets(results: Results) -> List[List[str]]:
    """Each row not met: what the goal allows, against shmctl's start-up and the row's own floor
    (medians over the runs); per-segment rows against the kernel's own text per segment."""
    lines = []
    startup = _median_floor(results, STARTUP)
    for row in results.rows:
        if not row.figures or row.verdict() != "not met":
            continue
        budget = row.goal.ratio * statistics.median(f.theirs for f in row.figures)
        unit = "/segment" if row.per_segment else ""
        own = _median_floor(results, row.floor) if row.floor else None
        paid = (0 if row.per_segment else startup or 0) + (own or 0)
        lines.append([row.measure, format_time(budget) + unit, "—" if row.per_segment else _maybe_time(startup),
                      f"{format_time(own)}{unit} ({row.floor})" if own is not None else "—",
                      format_time(budget - paid) + unit])
    return lines


def _maybe_time(seconds: Optional[float]) -> str:
    return "—" if seconds is None else format_time(seconds)


def _parse_figures(cells: List[str]) -> List[Figure]:
    if cells[0] == "—":
        return []
    parts = [c.split("; ") for c in cells]
    figures = []
    for ours, theirs, ratio, rss in zip(*parts):
        match = re.fullmatch(r"(-?[0-9.]+)× \((-?[0-9.]+)–(-?[0-9.]+)\)", ratio)
        if not match:
            raise ValueError(f"not a ratio: {ratio!r}")
        rss_ours, rss_theirs = rss.split(" / ")
        figures.append(Figure(parse_time(ours.replace("/segment", "")), parse_time(theirs.replace("/segment", "")),
                              float(match[1]), float(match[2]), float(match[3]), _parse_rss(rss_ours),
                              _parse_rss(rss_theirs)))
    return figures


def _parse_row(cells: List[str]) -> Row:
    measure, versus, *figure_cells, goal, verdict = cells
    figures = _parse_figures(figure_cells)
    row = Row(measure, versus, Goal.parse(goal), figures, per_segment="/segment" in figure_cells[0])
    if not figures:
        row.missing = verdict
    if row.verdict() != verdict:  # a hand-edited claim: the figures say otherwise
        raise ValueError(f"RESULTS.md: '{measure}' says {verdict!r}, its figures say {row.verdict()!r}")
    return row


def _parse_fit(cells: List[str], sizes: List[int]) -> Fit:
    run, tool, *times, fixed, slope = cells
    return Fit(int(run), tool, {n: parse_time(t) for n, t in zip(sizes, times)}, parse_time(fixed), parse_time(slope))


def parse(text: str) -> Results:
    """RESULTS.md as bench/run wrote it; ValueError if it is not (or a verdict was edited by hand)."""
    lines = text.splitlines()
    if not lines or lines[0] != TITLE:
        raise ValueError("RESULTS.md: not written by bench/run")
    meta = dict(line[2:].split(": ", 1) for line in lines if line.startswith("- ") and ": " in line)
    rows: List[Row] = []
    fits: List[Fit] = []
    floors: List[Floor] = []
    header: List[str] = []
    for line in lines:
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = _split(line)
        if cells[0] in ("measure", "run", BUDGET_HEADER[0]):  # a table's header (data rows start otherwise)
            header = cells
        elif header[0] == "measure":
            rows.append(_parse_row(cells))
        elif tuple(header) == FLOOR_HEADER:
            floors.append(Floor(int(cells[0]), cells[1], parse_time(cells[3])))
        elif header[0] == "run":
            fits.append(_parse_fit(cells, [int(n) for n in header[2:-2]]))
        elif header[0] == BUDGET_HEADER[0]:  # derived, but for the floor each row names
            floor = re.search(r"\((.+)\)$", cells[3])
            for row in rows:
                if row.measure == cells[0] and floor:
                    row.floor = floor[1]
    return Results(meta, rows, fits, floors)


def compares_block(results: Optional[Results]) -> List[str]:
    """README's "How shmctl compares" table: each measure, shmctl's ratio, the goal and the verdict."""
    if results is None:
        return ["No results yet: run `sudo bench/run` (it writes bench/RESULTS.md)."]
    out = ["| measure | against | shmctl's time / theirs | peak RSS MiB (shmctl) | goal | met |",
           "|---|---|---|---|---|---|"]
    for row in results.rows:
        ratio = "; ".join(f"{f.ratio:.2f}×" for f in row.figures) or "—"
        rss = "; ".join(_rss(f.rss_ours) for f in row.figures) or "—"
        out.append("| " + " | ".join(_cell(c) for c in (row.measure, row.versus, ratio, rss, row.goal.text(),
                                                          row.verdict())) + " |")
    when = ", ".join(f"{k} {results.meta[k]}" for k in ("date", "machine", "runs") if k in results.meta)
    return out + ["", f"From bench/RESULTS.md ({when}): ratios of the medians of interleaved runs; below 1.0× "
                      "shmctl is faster."]
