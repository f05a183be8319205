"""Shared helpers for the benchmarks: isolation, the shmctl executable, timing by min-of-N."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from typing import List, Sequence

GUARD = "SHMCTL_BENCH_ISOLATED"


def isolate() -> None:
    """Re-run this script in a private IPC + mount namespace with its own /dev/shm (root)."""
    if os.environ.get(GUARD) or os.geteuid() != 0 or not shutil.which("unshare"):
        if os.geteuid() != 0:
            sys.exit("bench: run as root (it needs a private IPC namespace to create many segments)")
        return
    env = dict(os.environ, **{GUARD: "1"})
    script = "mount --make-rprivate / && mount -t tmpfs -o size=4g bench /dev/shm && exec \"$@\""
    os.execvpe("unshare", ["unshare", "--ipc", "--mount", "sh", "-c", script, "sh", sys.executable,
                           *sys.argv], env)


def shmctl() -> List[str]:
    """The console script of this interpreter's environment: not a pyenv shim, which would
    add a bash start-up to every run. Bytecode is compiled first, as pip does on install
    (a shell with PYTHONDONTWRITEBYTECODE=1 would otherwise recompile shmctl on every run)."""
    import compileall

    import shmctl_cli
    compileall.compile_dir(os.path.dirname(shmctl_cli.__file__), quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    script = os.path.join(sysconfig.get_path("scripts"), "shmctl")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "shmctl_cli"]


def timed(argv: Sequence[str], runs: int = 7, stdout=subprocess.DEVNULL, stdin=None) -> float:
    """Best of `runs` wall times in seconds (the least disturbed run on a shared machine)."""
    times = []
    for _ in range(runs):
        if stdin is not None:
            stdin.seek(0)
        start = time.perf_counter()
        subprocess.run(argv, stdout=stdout, stdin=stdin, check=True)
        times.append(time.perf_counter() - start)
    return min(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"
