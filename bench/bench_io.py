"""`shmctl read` and `write` throughput against cat and dd, and `create` + `rm` against
`ipcmk` + `ipcrm`: ratios measured in one run.

    sudo python bench/bench_io.py [--size 1G] [--runs 5]

Runs in a private IPC + mount namespace with its own 4 GiB tmpfs on /dev/shm (it
re-executes itself under unshare), so nothing is left behind.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import isolate, ms, shmctl, timed  # noqa: E402

TARGETS = ("targets: read >= 1.0x cat's throughput; write >= 1.0x dd's; create+rm vs ipcmk+ipcrm: "
           "reported (Python's start-up is the floor)")


def parse_size(text: str) -> int:
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from shmctl_cli.units import parse_size as parse
    return parse(text)


def throughput(size: int, seconds: float) -> str:
    return f"{size / seconds / (1 << 30):6.2f} GiB/s"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="1G")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    isolate()
    size, runs, cmd = parse_size(args.size), args.runs, shmctl()
    with tempfile.NamedTemporaryFile(dir="/var/tmp", prefix="shmctl-bench-") as source:
        chunk = os.urandom(1 << 20)
        for _ in range(size >> 20):
            source.write(chunk)
        source.flush()
        subprocess.run(["cat", source.name], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        subprocess.run(cmd + ["create", "posix:/bench", "--size", str(size)], check=True, stdout=subprocess.DEVNULL)
        target = "/dev/shm/bench"

        write_ours = timed(cmd + ["write", "posix:/bench", source.name], runs)
        write_dd = timed(["dd", f"if={source.name}", f"of={target}", "bs=1M", "conv=notrunc", "status=none"], runs)
        print(f"write {size >> 20} MiB from a file: shmctl {ms(write_ours)} {throughput(size, write_ours)}   "
              f"dd bs=1M {ms(write_dd)} {throughput(size, write_dd)}   throughput ratio {write_dd / write_ours:.2f}x")

        read_ours = timed(cmd + ["read", "posix:/bench"], runs)
        read_cat = timed(["cat", target], runs)
        print(f"read {size >> 20} MiB to /dev/null:   shmctl {ms(read_ours)} {throughput(size, read_ours)}   "
              f"cat {ms(read_cat)} {throughput(size, read_cat)}   throughput ratio {read_cat / read_ours:.2f}x")
        read_pipe = timed(["sh", "-c", f"{' '.join(cmd)} read posix:/bench | cat > /dev/null"], runs)
        cat_pipe = timed(["sh", "-c", f"cat {target} | cat > /dev/null"], runs)
        print(f"read {size >> 20} MiB into a pipe:    shmctl {ms(read_pipe)} {throughput(size, read_pipe)}   "
              f"cat {ms(cat_pipe)} {throughput(size, cat_pipe)}   throughput ratio {cat_pipe / read_pipe:.2f}x")
        subprocess.run(cmd + ["rm", "posix:/bench"], check=True, stdout=subprocess.DEVNULL)

    ours = timed(["sh", "-c", f"rm_id=$({' '.join(cmd)} create sysv --size 4096) && "
                              f"{' '.join(cmd)} rm -q \"$rm_id\""], runs)
    theirs = timed(["sh", "-c", "id=$(ipcmk -M 4096 | awk '{print $NF}') && ipcrm -m \"$id\""], runs)
    print(f"create + rm of one 4 KiB SysV segment: shmctl {ms(ours)}   ipcmk + ipcrm {ms(theirs)}   "
          f"ratio {ours / theirs:.2f}x")
    print(TARGETS)


if __name__ == "__main__":
    main()
