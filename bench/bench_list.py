"""`shmctl list --kind sysv` against `ipcs -m` and `lsipc -m`, at 4000 and 32000 SysV segments,
and shmctl's start-up against `python -c 'import click'`. Ratios, measured in one run.

    sudo python bench/bench_list.py [--runs 7]

Runs in a private IPC namespace (it re-executes itself under unshare), raises shmmni there,
and leaves nothing behind: the namespace dies with the script.
"""
from __future__ import annotations

import argparse
import ctypes
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import isolate, ms, shmctl, timed  # noqa: E402

TARGETS = "targets: list@32000 <= 1.0x ipcs -m and <= 0.5x lsipc -m; marginal <= 0.7x ipcs's; " \
          "--version <= 1.15x and empty list <= 1.2x import click"


def make_segments(total: int) -> None:
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
    have = sum(1 for _ in open("/proc/sysvipc/shm")) - 1
    for _ in range(total - have):
        if libc.shmget(0, 4096, 0o1600) < 0:
            raise OSError(ctypes.get_errno(), "shmget")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    isolate()
    with open("/proc/sys/kernel/shmmni", "w") as f:
        f.write("32768")
    cmd = shmctl()
    runs = args.runs

    click_t = timed([sys.executable, "-c", "import click"], runs)
    version_t = timed(cmd + ["--version"], runs)
    empty_t = timed(cmd + ["list", "--kind", "sysv"], runs)
    print(f"start-up: import click {ms(click_t)}  shmctl --version {ms(version_t)} "
          f"({version_t / click_t:.2f}x)  shmctl list --kind sysv, empty {ms(empty_t)} ({empty_t / click_t:.2f}x)")

    results = {}
    for n in (4000, 32000):
        make_segments(n)
        row = {name: timed(argv, runs) for name, argv in
               (("ipcs", ["ipcs", "-m"]), ("lsipc", ["lsipc", "-m"]),
                ("shmctl", cmd + ["list", "--kind", "sysv"]))}
        results[n] = row
        print(f"N={n:5d}: ipcs -m {ms(row['ipcs'])}  lsipc -m {ms(row['lsipc'])}  shmctl {ms(row['shmctl'])}  "
              f"shmctl/ipcs {row['shmctl'] / row['ipcs']:.2f}x  shmctl/lsipc {row['shmctl'] / row['lsipc']:.2f}x")
    marginal = {name: (results[32000][name] - results[4000][name]) / 28000 for name in results[4000]}
    print("marginal per segment: " + "  ".join(f"{k} {v * 1e6:.2f} us" for k, v in marginal.items())
          + f"  shmctl/ipcs {marginal['shmctl'] / marginal['ipcs']:.2f}x")
    print(TARGETS)


if __name__ == "__main__":
    main()
