"""`shmctl read` and `write` throughput against cat, dd and a C program read()ing into the shmat
mapping (bench/sysv_read.c, compiled here with gcc or cc), with the peak RSS of each command, and
`create` + `rm` against `ipcmk` + `ipcrm`: ratios measured in one run.

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

TARGETS = ("targets: read >= 1.0x cat's throughput; write FILE >= 1.0x dd's; write - >= 1.0x cat > FILE's; "
           "write sysv FILE >= 1/1.1x the C reader's; peak RSS <= 64 MiB whatever the size; create+rm vs "
           "ipcmk+ipcrm: reported (Python's start-up is the floor)")
HERE = os.path.dirname(os.path.abspath(__file__))


def peak_rss(argv) -> str:
    """The peak RSS of a command and of the children it waited for (wait4's rusage)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0
    return f"{usage.ru_maxrss / 1024:7.1f} MiB"


def c_reader(directory: str):
    """bench/sysv_read.c compiled at run time; None without a C compiler."""
    import shutil
    compiler = shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        return None
    binary = os.path.join(directory, "sysv_read")
    subprocess.run([compiler, "-O2", "-o", binary, os.path.join(HERE, "sysv_read.c")], check=True)
    return binary


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
    os.environ["PYTHONPATH"] = os.path.dirname(HERE)  # this checkout's shmctl, not an installed copy
    size, runs, cmd = parse_size(args.size), args.runs, shmctl()
    with tempfile.NamedTemporaryFile(dir="/var/tmp", prefix="shmctl-bench-") as source:
        chunk = os.urandom(1 << 20)
        for _ in range(size >> 20):
            source.write(chunk)
        source.flush()
        subprocess.run(["cat", source.name], stdout=subprocess.DEVNULL, check=True)  # warm the page cache
        subprocess.run(cmd + ["create", "posix:/bench", "--size", str(size)], check=True, stdout=subprocess.DEVNULL)
        target = "/dev/shm/bench"

        piped = f"cat {source.name} | {' '.join(cmd)} write posix:/bench -"
        pipe_ours = timed(["sh", "-c", piped], runs)
        pipe_cat = timed(["sh", "-c", f"cat {source.name} > /dev/shm/bench-cat"], runs)
        print(f"write {size >> 20} MiB from a pipe: shmctl {ms(pipe_ours)} {throughput(size, pipe_ours)}   "
              f"cat > FILE {ms(pipe_cat)} {throughput(size, pipe_cat)}   throughput ratio "
              f"{pipe_cat / pipe_ours:.2f}x   peak RSS {peak_rss(['sh', '-c', piped])}")
        os.unlink("/dev/shm/bench-cat")

        write_ours = timed(cmd + ["write", "posix:/bench", source.name], runs)
        write_dd = timed(["dd", f"if={source.name}", f"of={target}", "bs=1M", "conv=notrunc", "status=none"], runs)
        print(f"write {size >> 20} MiB from a file: shmctl {ms(write_ours)} {throughput(size, write_ours)}   "
              f"dd bs=1M {ms(write_dd)} {throughput(size, write_dd)}   throughput ratio {write_dd / write_ours:.2f}x   "
              f"peak RSS {peak_rss(cmd + ['write', 'posix:/bench', source.name])}")
        write_sysv(cmd, source.name, size, runs)

        read_ours = timed(cmd + ["read", "posix:/bench"], runs)
        read_cat = timed(["cat", target], runs)
        print(f"read {size >> 20} MiB to /dev/null:   shmctl {ms(read_ours)} {throughput(size, read_ours)}   "
              f"cat {ms(read_cat)} {throughput(size, read_cat)}   throughput ratio {read_cat / read_ours:.2f}x   "
              f"peak RSS {peak_rss(cmd + ['read', 'posix:/bench'])}")
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


def write_sysv(cmd, source: str, size: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        reader = c_reader(directory)
        if reader is None:
            print("write sysv FILE: skipped (no C compiler)")
            return
        address = subprocess.run(cmd + ["create", "sysv", "--size", str(size)], check=True, capture_output=True,
                                 text=True).stdout.strip()
        try:
            ours = timed(cmd + ["write", address, source], runs)
            theirs = timed([reader, address.split(":")[1], source], runs)
            print(f"write {size >> 20} MiB into SysV:      shmctl {ms(ours)} {throughput(size, ours)}   "
                  f"C read() into shmat {ms(theirs)} {throughput(size, theirs)}   time ratio {ours / theirs:.2f}x   "
                  f"peak RSS {peak_rss(cmd + ['write', address, source])} (C: "
                  f"{peak_rss([reader, address.split(':')[1], source]).strip()})")
        finally:
            subprocess.run(cmd + ["rm", "-q", address], check=True)


if __name__ == "__main__":
    main()
