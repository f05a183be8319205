"""What bench/run measures against and on: the private namespace, the shmctl launcher, SysV segments
and POSIX objects made in bulk, processes that map shared memory, the data file, the C reader and
lsipc 2.41 (built from source). Everything lives in the namespace or in a temporary directory."""
from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
from typing import List, Optional, Tuple

from runner import progress

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
GUARD = "SHMCTL_BENCH_RUN_ISOLATED"
LSIPC = "/tmp/lsipc-2.41/lsipc"
UTIL_LINUX_SRC = "/tmp/util-linux-2.41"
UTIL_LINUX_TAG = "v2.41.5"
BUILD_DEPS = ("flex", "bison", "autoconf", "automake", "libtool", "autopoint", "gettext", "pkg-config")
CONFIGURE = ["./configure", "--disable-shared", "--enable-static", "--disable-nls", "--disable-asciidoc",
             "--disable-poman", "--disable-bash-completion", "--without-python", "--without-systemd",
             "--without-udev", "--disable-liblastlog2"]


def isolate(argv: List[str], shm_size: str) -> None:
    """Re-run bench/run in private IPC, mount and PID namespaces with a tmpfs of its own on /dev/shm
    and its own /proc: no host segment is seen or touched, and what it makes dies with it."""
    if os.environ.get(GUARD):
        return
    if os.geteuid() != 0:
        sys.exit("bench/run: run as root (sudo bench/run): it works in private namespaces")
    env = dict(os.environ, **{GUARD: "1"})
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = f"mount -t tmpfs -o size={shm_size},mode=1777 bench-shm /dev/shm && exec \"$@\""
    os.execvpe("unshare", ["unshare", "--ipc", "--mount", "--propagation", "private", "--pid", "--fork",
                           "--mount-proc", "sh", "-c", script, "sh", sys.executable, *argv], env)


def shmctl_launcher(directory: str) -> List[str]:
    """A console script like pip's, for this checkout's shmctl_cli (the installed one may be older),
    with its bytecode compiled first as pip does on install."""
    import compileall
    compileall.compile_dir(os.path.join(ROOT, "shmctl_cli"), quiet=1)
    path = os.path.join(directory, "shmctl")
    with open(path, "w") as f:
        f.write(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {ROOT!r})\n"
                "from shmctl_cli.cli import run\nsys.exit(run())\n")
    os.chmod(path, 0o755)
    return [path]


_libc = ctypes.CDLL("libc.so.6", use_errno=True)
_libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]


def sysv_count() -> int:
    with open("/proc/sysvipc/shm") as f:
        return sum(1 for _ in f) - 1


def sysv_fill(total: int, size: int = 4096) -> None:
    """IPC_PRIVATE segments until the namespace holds `total`."""
    for _ in range(total - sysv_count()):
        if _libc.shmget(0, size, 0o1600) < 0:
            raise OSError(ctypes.get_errno(), "shmget")


def sysv_clear() -> None:
    subprocess.run(["ipcrm", "--all=shm"], check=True, stdout=subprocess.DEVNULL)


def sysv_raise_shmmni() -> None:
    with open("/proc/sys/kernel/shmmni", "w") as f:
        f.write("32768")


def posix_fill(count: int, size: int = 4096, prefix: str = "bench-") -> None:
    for i in range(count):
        fd = os.open(f"/dev/shm/{prefix}{i}", os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        os.ftruncate(fd, size)
        os.close(fd)


def posix_clear() -> None:
    """Empty /dev/shm: the namespace's own tmpfs, nothing of the host's."""
    for name in os.listdir("/dev/shm"):
        os.unlink(os.path.join("/dev/shm", name))


HOLDER = r"""
import ctypes, mmap, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
count = int(sys.argv[1])
shmid = libc.shmget(0, 1 << 20, 0o600)
libc.shmat(shmid, None, 0)
fd = os.open("/dev/shm/bench-held", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 1 << 20)
held = [mmap.mmap(fd, 1 << 20), mmap.mmap(-1, 1 << 20)]
for _ in range(count - 1):
    if os.fork() == 0:
        own = os.memfd_create("bench-own")
        os.ftruncate(own, 4096)
        held.append(mmap.mmap(own, 4096))
        sys.stdout.close()
        os.read(0, 1)
        os._exit(0)
print("ready", flush=True)
os.read(0, 1)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
"""


def start_holders(count: int) -> subprocess.Popen:
    """`count` processes that share a SysV segment, a POSIX object and an anonymous shared mapping,
    each with a memfd of its own; they end when their stdin closes."""
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(count)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)
    if proc.stdout.readline().strip() != "ready":
        raise RuntimeError("the holder processes did not start")
    return proc


def stop_holders(proc: subprocess.Popen) -> None:
    """Close their stdin: each child exits, and the first process waits for them all before it does."""
    proc.stdin.close()
    proc.wait()


def data_file(path: str, size: int) -> None:
    chunk = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for _ in range(size >> 20):
            f.write(chunk)
        f.write(chunk[:size & ((1 << 20) - 1)])


READER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/shm.h>
#include <unistd.h>
/* read() a file straight into a SysV segment's mapping: the floor for `shmctl write sysv:ID FILE` */
int main(int argc, char **argv) {
    int shmid = atoi(argv[1]);
    struct shmid_ds ds;
    if (argc != 3 || shmctl(shmid, IPC_STAT, &ds) < 0) { perror("shmctl"); return 1; }
    char *p = shmat(shmid, NULL, 0);
    int fd = open(argv[2], O_RDONLY);
    if (p == (void *) -1 || fd < 0) { perror("shmat/open"); return 1; }
    size_t done = 0;
    while (done < ds.shm_segsz) {
        ssize_t n = read(fd, p + done, ds.shm_segsz - done);
        if (n < 0) { perror("read"); return 1; }
        if (n == 0) break;
        done += (size_t) n;
    }
    return 0;
}
"""


def build_reader(directory: str) -> Tuple[Optional[str], str]:
    """The C reader (argv: SHMID FILE), compiled with cc: (path, "") or (None, why not)."""
    source = os.path.join(BENCH, "sysv_read.c")
    if not os.path.exists(source):  # bench_io.py's reader (1 MiB reads), shared; else the one above
        source = os.path.join(directory, "readinto.c")
        with open(source, "w") as f:
            f.write(READER_C)
    return compile_c(source, os.path.join(directory, "sysv_read"))


def build_splicer(directory: str) -> Tuple[Optional[str], str]:
    """The C pipe reader (argv: FILE; stdin a pipe) with `write -`'s data path: (path, "") or (None, why not)."""
    return compile_c(os.path.join(BENCH, "pipe_splice.c"), os.path.join(directory, "pipe_splice"))


def compile_c(source: str, binary: str) -> Tuple[Optional[str], str]:
    compiler = shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        return None, f"no C compiler (cc) to build {os.path.basename(source)}"
    done = subprocess.run([compiler, "-O2", "-o", binary, source], capture_output=True, text=True)
    return (binary, "") if done.returncode == 0 else (None, f"cc failed: {done.stderr.strip()[-200:]}")


def lsipc_241(build: bool) -> Tuple[Optional[str], str]:
    """lsipc of util-linux 2.41 (its -M lists POSIX objects): (path, "") or (None, why not). Built
    from the source in /tmp/util-linux-2.41 when it is missing and `build` is set."""
    if os.access(LSIPC, os.X_OK):
        return LSIPC, ""
    if not build:
        return None, f"{LSIPC} is missing (bench/run builds it when not --quick)"
    if not os.path.isfile(os.path.join(UTIL_LINUX_SRC, "autogen.sh")):
        got = subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", UTIL_LINUX_TAG,
                              "https://github.com/util-linux/util-linux", UTIL_LINUX_SRC], capture_output=True)
        if got.returncode:
            return None, f"no util-linux source in {UTIL_LINUX_SRC} (git clone of {UTIL_LINUX_TAG} failed)"
    missing = [tool for tool in ("flex", "bison", "autoconf", "automake", "libtool", "autopoint", "pkg-config")
               if not shutil.which(tool) and not shutil.which(tool + "ize")]
    if missing:
        return None, f"cannot build lsipc 2.41: missing {', '.join(missing)} (apt-get install {' '.join(BUILD_DEPS)})"
    progress(f"building lsipc 2.41 in {UTIL_LINUX_SRC} (once; a few minutes)")
    version = os.path.join(UTIL_LINUX_SRC, ".tarball-version")
    if not os.path.exists(version) and not os.path.exists(os.path.join(UTIL_LINUX_SRC, ".git")):
        with open(version, "w") as f:
            f.write(UTIL_LINUX_TAG[1:] + "\n")
    script = f"./autogen.sh && {' '.join(CONFIGURE)} && make -j{os.cpu_count() or 1} lsipc"
    built = subprocess.run(["sh", "-c", script], cwd=UTIL_LINUX_SRC, capture_output=True, text=True)
    if built.returncode:
        return None, f"building lsipc 2.41 failed: {built.stderr.strip().splitlines()[-1:]}"
    os.makedirs(os.path.dirname(LSIPC), exist_ok=True)
    shutil.copy2(os.path.join(UTIL_LINUX_SRC, "lsipc"), LSIPC)
    return LSIPC, ""
