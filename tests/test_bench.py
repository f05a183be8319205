"""bench/run's harness: the pure parts (ratio of medians and spread, the linear fit and marginal cost,
goals and verdicts, the RESULTS.md writer and parser, README's "How shmctl compares" block) on
fixed numbers, and one real `bench/run --quick` in its private namespaces."""
from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time

import pytest
from conftest import SECOND_UID, needs_isolation, python_as

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import results as R  # noqa: E402
from runner import Cmd, CommandFailed, run  # noqa: E402

RUN = os.path.join(ROOT, "bench", "run")


# -- figures ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("ours, theirs, ratio, low, high", [
    ([1.0, 2.0, 3.0], [2.0, 2.0, 2.0], 1.0, 0.5, 1.5),
    ([0.5, 0.5, 9.0], [1.0, 1.0, 1.0], 0.5, 0.5, 9.0),      # one disturbed run moves the spread, not the median
    ([2.0, 4.0], [1.0, 4.0], 1.2, 1.0, 2.0),                # even count: medians are means of the middle two
])
def test_ratio_of_medians_and_spread_of_the_pairs(ours, theirs, ratio, low, high):
    assert R.ratio_of_medians(ours, theirs) == pytest.approx(ratio)
    assert R.spread(ours, theirs) == pytest.approx((low, high))
    figure = R.Figure.of(ours, theirs, 10.0, 2.0)
    assert (figure.ratio, figure.low, figure.high, figure.rss_ours) == pytest.approx((ratio, low, high, 10.0))


def test_linear_fit_finds_fixed_cost_and_marginal_cost():
    sizes = [1000, 4000, 16000, 32000]
    assert R.linear_fit(sizes, [0.1 + 2e-6 * n for n in sizes]) == pytest.approx((0.1, 2e-6))
    # run i at each size: run 0 costs 1 µs a segment, run 1 costs 3 µs
    runs = [[0.05 + 1e-6 * n, 0.02 + 3e-6 * n] for n in sizes]
    assert R.marginal_costs(sizes, runs) == pytest.approx([1e-6, 3e-6])
    fit = R.Fit.of(1, "ipcs -m", {n: 0.01 + 5e-6 * n for n in sizes})
    assert (fit.fixed, fit.slope) == pytest.approx((0.01, 5e-6))


# -- goals and verdicts ---------------------------------------------------------------------------

GOALS = [R.Goal(1.0, rss_mib=64, throughput=True), R.Goal(0.8, every_run=True), R.Goal(0.35),
         R.Goal(1.0, keep=True), R.Goal(1.0, rss_mib=60)]


@pytest.mark.parametrize("goal", GOALS)
def test_goal_text_parses_back(goal):
    assert R.Goal.parse(goal.text()) == goal


def test_goal_texts_say_what_the_issue_says():
    assert GOALS[0].text() == "≤ 1.0× time (≥ 1.0× throughput), peak RSS ≤ 64 MiB"
    assert GOALS[1].text() == "≤ 0.8× in every run"
    assert GOALS[2].text() == "≤ 0.35×"


def fig(ratio, low=None, high=None, rss=None):
    return R.Figure(ratio, 1.0, ratio, ratio if low is None else low, ratio if high is None else high, rss, 1.0)


@pytest.mark.parametrize("goal, figures, verdict", [
    (R.Goal(1.0), [fig(0.9, 0.8, 0.95)], "met"),
    (R.Goal(1.0), [fig(1.2, 1.1, 1.3)], "not met"),
    (R.Goal(1.0), [fig(0.95, 0.9, 1.05)], "inside the noise: needs 3 runs (--repeat 3)"),
    (R.Goal(1.0), [fig(0.95, 0.9, 1.05)] * 3, "met (3 runs)"),
    (R.Goal(1.0), [fig(0.95, 0.9, 1.05), fig(1.01, 0.9, 1.1), fig(0.9)], "not met"),  # one run of three fails
    (R.Goal(0.8, every_run=True), [fig(0.7, 0.6, 0.85)], "not met"),   # the worst pair counts
    (R.Goal(0.8, every_run=True), [fig(0.7, 0.6, 0.79)], "met"),
    (R.Goal(1.0, rss_mib=64), [fig(0.5, rss=70.0)], "not met"),
    (R.Goal(1.0, rss_mib=64), [fig(0.5, rss=None)], "not met"),       # an unmeasured peak is no proof
    (R.Goal(1.0, rss_mib=64), [fig(0.5, rss=30.0)], "met"),
])
def test_verdicts(goal, figures, verdict):
    assert R.Row("m", "v", goal, figures).verdict() == verdict


def test_a_missing_row_says_why():
    assert R.Row("m", "v", R.Goal(1.0), missing="skipped: no lsipc").verdict() == "skipped: no lsipc"


# -- RESULTS.md ---------------------------------------------------------------------------------------

def sample() -> R.Results:
    rows = [
        R.Row("`cat FILE | shmctl write posix:/big -` (1 GiB)", "`cat FILE > /dev/shm/big`",
              R.Goal(1.0, rss_mib=64, throughput=True), [R.Figure(0.512, 0.4, 1.28, 1.2, 1.35, 30.5, 1.6)]),
        R.Row("`list --kind sysv` at 32000 segments", "`ipcs -m`", R.Goal(0.8, every_run=True),
              [R.Figure(0.1, 0.2, 0.5, 0.45, 0.55, 20.0, 2.0)] * 3),
        R.Row("marginal cost per SysV segment (1000→32000, linear fit)", "`ipcs -m`", R.Goal(0.6),
              [R.Figure(2.5e-6, 5e-6, 0.5, -0.2, 0.55)], per_segment=True),
        R.Row("`list --kind posix` at 16000 objects", "`lsipc -M` (util-linux 2.41)", R.Goal(1.0),
              missing="skipped: /tmp/lsipc-2.41/lsipc is missing"),
        R.Row("`rm --all --kind sysv` of 4000 segments", "`ipcrm --all=shm`", R.Goal(2.0),
              [R.Figure(0.1, 0.008, 12.5, 11.0, 13.0, 20.0, 1.6)]),
    ]
    fits = [R.Fit.of(1, "ipcs -m", {1000: 0.01, 4000: 0.04, 16000: 0.13, 32000: 0.26}),
            R.Fit.of(1, R.KERNEL_TEXT, {1000: 0.002, 4000: 0.008, 16000: 0.032, 32000: 0.064})]
    rows[0].floor = "`cat FILE | cat > /dev/shm/big`"
    floors = [R.Floor(1, R.INTERPRETER, 0.026), R.Floor(1, R.STARTUP, 0.04),
              R.Floor(1, "`cat FILE | cat > /dev/shm/big`", 0.38)]
    return R.Results({"date": "2026-01-02 03:04 UTC", "machine": "2 CPUs", "runs": "3"}, rows, fits, floors)


def test_results_round_trip_through_the_file():
    text = R.write(sample())
    parsed = R.parse(text)
    assert R.write(parsed) == text
    assert [r.verdict() for r in parsed.rows] == ["not met", "met", "met", "skipped: /tmp/lsipc-2.41/lsipc is missing",
                                                   "not met"]
    assert parsed.rows[0].measure == "`cat FILE | shmctl write posix:/big -` (1 GiB)"  # the escaped | comes back
    assert "cat FILE \\| shmctl" in text
    assert parsed.rows[0].figures[0].rss_ours == 30.5 and parsed.rows[2].figures[0].rss_ours is None
    assert parsed.rows[2].per_segment and parsed.rows[2].figures[0].low == -0.2
    assert parsed.meta["runs"] == "3" and parsed.fits[0].times[16000] == pytest.approx(0.13)
    assert [(f.name, f.seconds) for f in parsed.floors] == [(f.name, pytest.approx(f.seconds)) for f in sample().floors]


def test_budgets_of_the_goals_not_met_against_the_floors():
    """Each goal not met: its whole budget, shmctl's start-up and the row's own floor, measured in the run."""
    lines = R.budgets(sample())
    assert [line[0] for line in lines] == ["`cat FILE | shmctl write posix:/big -` (1 GiB)",
                                           "`rm --all --kind sysv` of 4000 segments"]
    pipe, rm = lines
    assert pipe[1:] == ["400.0 ms", "40.0 ms", "380.0 ms (`cat FILE | cat > /dev/shm/big`)", "-20.0 ms"]
    assert rm[1:] == ["16.0 ms", "40.0 ms", "—", "-24.0 ms"]  # below shmctl's start-up: out of reach
    text = R.write(sample())
    assert "## Floors" in text and "| 1 | `python3 -c pass` |" in text and "## Budgets of the goals not met" in text


def test_a_verdict_edited_by_hand_is_refused():
    text = R.write(sample()).replace("| not met |", "| met |", 1)
    with pytest.raises(ValueError, match="says 'met', its figures say 'not met'"):
        R.parse(text)


def test_a_file_not_written_by_bench_run_is_refused():
    with pytest.raises(ValueError, match="not written by bench/run"):
        R.parse("| measure |\n")


def test_readme_block_is_built_from_the_results():
    block = R.compares_block(sample())
    assert block[0].startswith("| measure | against | shmctl's time / theirs")
    assert "| `cat FILE \\| shmctl write posix:/big -` (1 GiB) | `cat FILE > /dev/shm/big` | 1.28× | 30.5 |" in block[2]
    assert block[3].count("0.50×") == 3 and block[3].endswith("| ≤ 0.8× in every run | met |")
    assert block[-1].startswith("From bench/RESULTS.md (date 2026-01-02 03:04 UTC, machine 2 CPUs, runs 3)")
    assert R.compares_block(None) == ["No results yet: run `sudo bench/run` (it writes bench/RESULTS.md)."]


def test_readme_carries_the_block_of_the_checked_in_results():
    spec = importlib.util.spec_from_file_location("docgen", os.path.join(ROOT, "tools", "docgen.py"))
    docgen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(docgen)
    readme = open(os.path.join(ROOT, "README.md")).read()
    assert "<!-- generated: compares -->\n" + "\n".join(docgen.compares()) + "\n<!-- end -->" in readme


# -- running ----------------------------------------------------------------------------------------

def test_run_reports_time_and_peak_rss_of_the_command_not_of_python():
    seconds, rss = run(Cmd([["cat", "/proc/self/status"], ["cat"]]), rss=True)
    assert seconds > 0 and rss is not None and rss < 10  # a forked Python child would be charged ≥ 10 MiB
    assert run(Cmd.of("true"))[1] is None
    with pytest.raises(CommandFailed, match="`sh -c echo oops >&2; exit 3` exited 3: oops"):
        run(Cmd.shell("echo oops >&2; exit 3"))


def test_bench_run_refuses_an_unknown_suite():
    done = subprocess.run([sys.executable, RUN, "--only", "bogus"], capture_output=True, text=True)
    assert done.returncode == 2 and "unknown suite bogus" in done.stderr


def test_bench_run_needs_root():
    done = subprocess.run([*python_as(SECOND_UID), RUN, "--quick"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().endswith("bench/run: run as root (sudo bench/run): it works in private namespaces")


@needs_isolation
def test_quick_run_measures_every_row_in_its_own_namespace(tmp_path):
    def state():
        with open("/proc/sysvipc/shm") as f:
            return sorted(os.listdir("/dev/shm")), f.read()
    before = state()
    output = tmp_path / "RESULTS.md"
    start = time.monotonic()
    done = subprocess.run([sys.executable, RUN, "--quick", "--pairs", "1", "--output", str(output)],
                          capture_output=True, text=True, timeout=120)
    took = time.monotonic() - start
    assert done.returncode == 0, done.stderr
    assert took < 20, f"bench/run --quick took {took:.1f}s"
    assert "run 1: data" in done.stderr  # progress on stderr
    parsed = R.parse(output.read_text())
    assert len(parsed.rows) == 17 and parsed.meta["runs"] == "1"
    measured = [r for r in parsed.rows if r.figures]
    assert len(measured) >= 14, [(r.measure, r.verdict()) for r in parsed.rows if not r.figures]
    assert "completion" in parsed.rows[-1].measure and parsed.rows[-1].figures  # against `shmctl --version`
    for row in measured:
        if not row.per_segment:  # a slope at tiny sizes may come out below zero
            assert row.figures[0].ours > 0 and row.figures[0].theirs > 0
            assert row.figures[0].rss_ours and row.figures[0].rss_ours < 200
    assert {fit.tool for fit in parsed.fits} == {"shmctl list --kind sysv", "ipcs -m", "lsipc -m --json",
                                                 "shmctl list --kind sysv --json", R.KERNEL_TEXT}
    assert {f.name for f in parsed.floors} >= {R.INTERPRETER, R.STARTUP, "`cat /proc/*/maps`",
                                               "`cat FILE | pipe_splice /dev/shm/big`"}
    assert state() == before  # nothing made or removed outside its namespaces
