"""Containers for the tests, made for real: cgroups named the way each runtime names them, and
a real podman container built from a root filesystem made here (no image, no registry).

Fixtures (import them into a test module: `from containers import cgroup_tree, podman_container`):

- `cgroup_tree`: a CgroupTree under the writable cgroup2 mount. `tree.spawn("system.slice/
  docker-<64hex>.scope")` creates those directories below a unique test directory, starts a
  child process and moves it there (its pid in cgroup.procs), returning the pid;
  `tree.move(pid, path)` moves a process of yours. Afterwards every moved process is moved
  back where it came from, the children are ended, and the directories made are removed,
  deepest first. Skips when no cgroup2 mount is visible and writable in this mount namespace.
- `podman_container`: a running podman container whose one process holds a SysV segment
  (IPC_PRIVATE, in the container's own IPC namespace) and a POSIX object mapped from the
  container's own /dev/shm. Yields a PodmanContainer: `pid, id = podman_container`
  (the host pid of that process, the full 64-hex container id), plus `.shmid`, `.posix_name`,
  `.size` and `.name`. The container is removed afterwards. Skips, saying why, when podman,
  an OCI runtime or a static C toolchain is missing, or podman cannot run here.

How podman runs here (Debian 12, podman 4.3, hybrid cgroup host, root without
CAP_SYS_RESOURCE): `podman run --rootfs DIR` with a root filesystem of one static binary;
storage, run and tmp dirs of its own (`--root/--runroot/--tmpdir`, vfs driver); a
containers.conf with cgroup_manager=cgroupfs, events_logger=none, lock_type=file (the default
shm lock would leave /dev/shm/libpod_lock), netns=none, rlimits no higher than ours (crun and
runc cannot raise a hard limit without CAP_SYS_RESOURCE) and the runc runtime: crun refuses a
hybrid host whose cgroup2 root still has a controller ("cgroups in hybrid mode not supported").
"""
from __future__ import annotations

import contextlib
import errno
import os
import resource
import select
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from typing import List, Optional, Tuple

import pytest

DEADLINE = 60.0  # seconds any wait here may take on a busy 2-core machine


# --- cgroup v2 directories -------------------------------------------------------------------

def _unescape_mountinfo(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal \\NNN."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def cgroup_mounts(fstype: str) -> List[Tuple[str, str]]:
    """(mount point, root of the mount) of every `fstype` mount in this mount namespace."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            if right.split()[:1] == [fstype] and len(fields) >= 5:
                found.append((_unescape_mountinfo(fields[4]), _unescape_mountinfo(fields[3])))
    return found


def writable_cgroup2() -> Tuple[Optional[str], str]:
    """The mount point of a cgroup2 mount we can make directories in, or (None, why not)."""
    mounts = [m for m, root in cgroup_mounts("cgroup2") if root == "/"]
    if not mounts:
        return None, "no cgroup2 mount (with its root at /) in this mount namespace"
    why = ""
    for mount in mounts:
        probe = os.path.join(mount, f"shmctl-probe-{uuid.uuid4().hex[:8]}")
        try:
            os.mkdir(probe)
        except OSError as e:
            why = f"cannot mkdir in {mount}: {e.strerror}"
            continue
        os.rmdir(probe)
        return mount, ""
    return None, why


def _v2_path(pid: int) -> Optional[str]:
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return line[3:].rstrip("\n")
    return None


def _write_pid(directory: str, pid: int) -> None:
    with open(os.path.join(directory, "cgroup.procs"), "w") as f:
        f.write(str(pid))


class CgroupTree:
    """Directories below `<cgroup2 mount>/shmctl-test-<random>` and the processes moved there."""

    def __init__(self, mount: str):
        self.mount = mount
        self.top = os.path.join(mount, f"shmctl-test-{uuid.uuid4().hex[:12]}")
        self._made: List[str] = []
        self._moved: List[Tuple[int, str]] = []
        self._children: List[subprocess.Popen] = []
        self._mkdir(self.top)

    def _mkdir(self, path: str) -> None:
        os.mkdir(path)
        self._made.append(path)

    def make(self, relative: str) -> str:
        """Create `relative` (a path such as `kubepods/burstable/pod<uid>/<64hex>`) below the
        test directory, parents included; returns its absolute directory."""
        path = self.top
        for part in relative.strip("/").split("/"):
            path = os.path.join(path, part)
            if not os.path.isdir(path):
                self._mkdir(path)
        return path

    def move(self, pid: int, relative: str) -> str:
        """Move process `pid` into `relative`; it is moved back afterwards. Returns the path
        /proc/PID/cgroup now shows for it."""
        origin = _v2_path(pid) or "/"
        _write_pid(self.make(relative), pid)
        self._moved.append((pid, origin))
        return _v2_path(pid)

    def spawn(self, relative: str) -> int:
        """A child process (waiting on its stdin) moved into `relative`; returns its pid."""
        child = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        self._children.append(child)
        self.move(child.pid, relative)
        return child.pid

    def close(self) -> None:
        for pid, origin in reversed(self._moved):
            back = os.path.join(self.mount, origin.lstrip("/"))
            with contextlib.suppress(OSError):  # ESRCH: gone already; its cgroup empties
                _write_pid(back if os.path.isdir(back) else self.mount, pid)
        for child in self._children:
            child.stdin.close()
            try:
                child.wait(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for path in sorted(self._made, key=lambda p: p.count("/"), reverse=True):
            _rmdir_when_empty(path)
        self._moved, self._children, self._made = [], [], []


def _rmdir_when_empty(path: str) -> None:
    """rmdir a cgroup; EBUSY lasts until the kernel has released the last task that left."""
    deadline = time.monotonic() + DEADLINE
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError as e:
            if e.errno != errno.EBUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


@pytest.fixture
def cgroup_tree():
    """A CgroupTree under the writable cgroup2 mount (see the module docstring)."""
    if os.geteuid() != 0:
        pytest.skip("moving processes between cgroups needs root")
    mount, why = writable_cgroup2()
    if mount is None:
        pytest.skip(why)
    tree = CgroupTree(mount)
    try:
        yield tree
    finally:
        tree.close()


# --- a real podman container -----------------------------------------------------------------

HOLDER_C = r"""
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <unistd.h>

/* holder NAME SIZE: a SysV segment and a POSIX object of SIZE bytes, both mapped and touched;
   prints "ready SHMID", holds them until stdin closes, then removes both. */
int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: holder NAME SIZE\n"); return 2; }
    size_t size = strtoul(argv[2], NULL, 0);
    int id = shmget(IPC_PRIVATE, size, IPC_CREAT | 0600);
    if (id < 0) { perror("shmget"); return 1; }
    char *sysv = shmat(id, NULL, 0);
    if (sysv == (void *)-1) { perror("shmat"); return 1; }
    sysv[0] = 1;
    int fd = shm_open(argv[1], O_CREAT | O_EXCL | O_RDWR, 0600);
    if (fd < 0) { perror("shm_open"); return 1; }
    if (ftruncate(fd, size) != 0) { perror("ftruncate"); return 1; }
    char *posix = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (posix == MAP_FAILED) { perror("mmap"); return 1; }
    posix[0] = 1;
    printf("ready %d\n", id);
    fflush(stdout);
    char c;
    while (read(0, &c, 1) > 0)
        ;
    shmdt(sysv);
    shmctl(id, IPC_RMID, NULL);
    shm_unlink(argv[1]);
    return 0;
}
"""

POSIX_NAME = "/shmctl-in-container"
SEGMENT_SIZE = 65536


class PodmanContainer(tuple):
    """(host pid, container id), with what the container holds as attributes."""

    def __new__(cls, pid: int, id: str, *, name: str, shmid: int):
        self = super().__new__(cls, (pid, id))
        self.name, self.shmid = name, shmid
        self.posix_name, self.size = POSIX_NAME, SEGMENT_SIZE
        return self

    pid = property(lambda self: self[0])
    id = property(lambda self: self[1])


def _podman_skip_reason() -> str:
    if os.geteuid() != 0:
        return "a rootful podman container needs root"
    for tool in ("podman", "conmon", "gcc"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install podman runc gcc libc6-dev)"
    if not (shutil.which("runc") or shutil.which("crun")):
        return "no OCI runtime (runc or crun) is installed"
    return ""


def _rlimit_flags() -> List[str]:
    """rlimits no higher than ours: raising a hard limit needs CAP_SYS_RESOURCE."""
    flags = []
    for name, limit in (("nofile", resource.RLIMIT_NOFILE), ("nproc", resource.RLIMIT_NPROC)):
        hard = resource.getrlimit(limit)[1]
        value = 1024 if hard == resource.RLIM_INFINITY else min(1024, hard)
        flags.append(f'"{name}={value}:{value}"')
    return flags


# Empty state directories podman 4.3 and runc make for root whatever --root/--runroot say.
_PODMAN_STATE_DIRS = ("/run/containers/networks", "/run/containers", "/run/runc", "/run/crun")


class _Podman:
    """One podman set-up per session: its own storage and config under a temporary directory,
    and the root filesystem with the holder binary."""

    def __init__(self):
        self.base = tempfile.mkdtemp(prefix="shmctl-podman-")
        self.rootfs = os.path.join(self.base, "rootfs")
        self._state_before = {d for d in _PODMAN_STATE_DIRS if os.path.exists(d)}
        # A cgroup parent of this session's own instead of the shared /libpod_parent, so that
        # sessions running at once never remove (or wait on) each other's cgroups.
        self.cgroup_parent = f"/shmctl-podman-{uuid.uuid4().hex[:12]}"
        for sub in ("rootfs/proc", "rootfs/sys", "rootfs/dev", "rootfs/tmp", "networks"):
            os.makedirs(os.path.join(self.base, sub))
        source = os.path.join(self.base, "holder.c")
        with open(source, "w") as f:
            f.write(HOLDER_C)
        built = subprocess.run(["gcc", "-static", "-O2", "-o", os.path.join(self.rootfs, "holder"), source],
                               capture_output=True, text=True)
        if built.returncode:
            raise _CannotRun(f"gcc -static failed (is libc6-dev installed?): {built.stderr.strip()[-300:]}")
        runtime = "runc" if shutil.which("runc") else "crun"
        with open(os.path.join(self.base, "containers.conf"), "w") as f:
            f.write(f"[containers]\ndefault_ulimits = [{', '.join(_rlimit_flags())}]\nnetns = \"none\"\n"
                    f"[network]\nnetwork_config_dir = \"{self.base}/networks\"\n"
                    f"[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n"
                    f"lock_type = \"file\"\nruntime = \"{runtime}\"\n")
        self.env = dict(os.environ, CONTAINERS_CONF=os.path.join(self.base, "containers.conf"))
        self.command = ["podman", "--root", f"{self.base}/root", "--runroot", f"{self.base}/run",
                        "--tmpdir", f"{self.base}/tmp", "--storage-driver", "vfs"]

    def podman(self, *args, timeout=DEADLINE) -> subprocess.CompletedProcess:
        return subprocess.run([*self.command, *args], env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def close(self) -> None:
        """Remove what this session's podman made: its directory tree, and the (empty) cgroups
        and state directories it created outside it; never one that was there before."""
        _wait_for_processes_using(self.base)  # conmon's exit command may still be cleaning up
        for fstype in ("cgroup", "cgroup2"):
            for mount, _ in cgroup_mounts(fstype):
                _remove_cgroup_tree(os.path.join(mount, self.cgroup_parent.lstrip("/")))
        for path in _PODMAN_STATE_DIRS:
            if path not in self._state_before:
                with contextlib.suppress(OSError):
                    os.rmdir(path)  # only if empty: never someone else's state
        for mount in reversed(_mounts_below(self.base)):  # none unless podman failed to clean up
            subprocess.run(["umount", "-l", mount], capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)


def _remove_cgroup_tree(top: str) -> None:
    """rmdir a cgroup of ours and the ones below it (conmon/, libpod-ID/), deepest first."""
    if not os.path.isdir(top):
        return
    for directory, _, _ in os.walk(top, topdown=False):
        with contextlib.suppress(OSError):
            _rmdir_when_empty(directory)


def _wait_for_processes_using(base: str) -> None:
    """Until no process has `base` in its command line (conmon, `podman container cleanup`)."""
    deadline = time.monotonic() + DEADLINE
    needle = base.encode()
    while time.monotonic() < deadline:
        busy = False
        for pid in filter(str.isdigit, os.listdir("/proc")):
            with contextlib.suppress(OSError):
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    busy = busy or needle in f.read()
        if not busy:
            return
        time.sleep(0.05)


def _mounts_below(base: str) -> List[str]:
    with open("/proc/self/mountinfo") as f:
        points = [_unescape_mountinfo(line.split()[4]) for line in f]
    return [p for p in points if p.startswith(base + "/")]


class _CannotRun(Exception):
    pass


_SESSION: dict = {}  # "setup": the one _Podman of this session, or "skip": why there is none


def _podman_setup(config) -> _Podman:
    """The session's podman set-up, made on first use and removed when pytest ends (not a
    fixture of its own, so that test modules import only podman_container)."""
    if not _SESSION:
        reason = _podman_skip_reason()
        if not reason:
            try:
                _SESSION["setup"] = _Podman()
                config.add_cleanup(_SESSION["setup"].close)
            except _CannotRun as e:
                reason = str(e)
        if reason:
            _SESSION["skip"] = reason
    if "skip" in _SESSION:
        pytest.skip(_SESSION["skip"])
    return _SESSION["setup"]


def _read_line(stream, deadline: float) -> str:
    """One line from a pipe, waiting no longer than `deadline`; '' at EOF or timeout."""
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([stream], [], [], left)[0]:
            return ""
        chunk = os.read(stream.fileno(), 1)
        if not chunk:
            break
        line += chunk
    return line.decode(errors="replace")


@pytest.fixture
def podman_container(request):
    """A running podman container holding a SysV segment and a POSIX object; yields
    PodmanContainer (pid, id) — see the module docstring."""
    setup = _podman_setup(request.config)
    name = f"shmctl-test-{uuid.uuid4().hex[:12]}"
    proc = subprocess.Popen([*setup.command, "run", "--rm", "-i", "--name", name,
                             "--cgroup-parent", setup.cgroup_parent, "--rootfs", setup.rootfs,
                             "/holder", POSIX_NAME, str(SEGMENT_SIZE)],
                            env=setup.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        line = _read_line(proc.stdout, time.monotonic() + DEADLINE)
        if not line.startswith("ready "):
            proc.stdin.close()
            try:
                _, err = proc.communicate(timeout=DEADLINE)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
            pytest.skip(f"podman cannot run a container here: {(line + err.decode(errors='replace')).strip()[-400:]}")
        shmid = int(line.split()[1])
        inspected = setup.podman("inspect", "--format", "{{.State.Pid}} {{.Id}}", name)
        assert inspected.returncode == 0, inspected.stderr
        pid, container_id = inspected.stdout.split()
        yield PodmanContainer(int(pid), container_id, name=name, shmid=shmid)
    finally:
        _stop(proc, setup, name)


def _stop(proc: subprocess.Popen, setup: _Podman, name: str) -> None:
    """Close the holder's stdin (it removes its segments and exits; `run --rm` removes the
    container); if that does not happen in time, kill the container and remove it."""
    with contextlib.suppress(OSError):
        proc.stdin.close()
    try:
        proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        setup.podman("rm", "--force", "--time", "0", "--ignore", name)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    setup.podman("rm", "--force", "--time", "0", "--ignore", name)
    proc.stdout.close()
    proc.stderr.close()
