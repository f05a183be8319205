"""Test isolation and helpers.

As root, the whole test session moves into a private IPC namespace and a private mount
namespace with its own tmpfs on /dev/shm (the in-process equivalent of
`unshare --ipc --mount`), before any test runs: every segment a test makes lives and dies
there, and nothing of the machine's own shared memory is touched. Where namespaces are not
available the tests still run, in the machine's namespaces, with names of their own and
cleanup fixtures, and the session ends by checking that it left nothing behind.
"""
from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
CLONE_NEWNS, CLONE_NEWIPC = 0x00020000, 0x08000000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def _isolate() -> str:
    if os.geteuid() != 0:
        return "not root: tests run in this machine's IPC namespace"
    if os.environ.get("SHMCTL_TEST_NO_NAMESPACE"):
        return "SHMCTL_TEST_NO_NAMESPACE is set"
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    if libc.unshare(CLONE_NEWIPC | CLONE_NEWNS) != 0:
        return f"unshare: {os.strerror(ctypes.get_errno())}"
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return f"mount --make-rprivate /: {os.strerror(ctypes.get_errno())}"
    if libc.mount(b"shmctl-test", b"/dev/shm", b"tmpfs", 0, b"mode=1777,size=1g") != 0:
        return f"mount tmpfs /dev/shm: {os.strerror(ctypes.get_errno())}"
    return ""


ISOLATION_PROBLEM = _isolate()
ISOLATED = not ISOLATION_PROBLEM
ROOT = os.geteuid() == 0


def pytest_configure(config):
    config.addinivalue_line("markers", "machine_wide: changes state the whole machine shares, not only this "
                            "session's namespace (huge page pools, vm.* sysctls); put back afterwards, and "
                            "deselected with -m 'not machine_wide'")


def pytest_report_header(config):
    if ISOLATED:
        return "shmctl: isolated in a private IPC + mount namespace with its own /dev/shm"
    return f"shmctl: NOT isolated ({ISOLATION_PROBLEM})"


def _leftovers():
    with open("/proc/sysvipc/shm") as f:
        sysv = [line.split()[1] for line in f.readlines()[1:]]
    return sysv, sorted(os.listdir("/dev/shm"))


@pytest.fixture(scope="session", autouse=True)
def nothing_left_behind():
    before = _leftovers()
    os.mkdir(OWN_LOCK_DIR, 0o700)  # shmctl's write locks of this session (see lock_dir_env)
    _made_dirs.append(OWN_LOCK_DIR)
    yield
    for made in _made_dirs:  # only what this session made itself: never the checkout
        shutil.rmtree(made, ignore_errors=True)
    after = _leftovers()
    assert after[0] == [s for s in after[0] if s in before[0]], f"SysV segments left: {after[0]}"
    assert after[1] == [n for n in after[1] if n in before[1]], f"/dev/shm entries left: {after[1]}"


# --- running shmctl as a real process ---

def shmctl_cmd():
    return [sys.executable, "-m", "shmctl_cli"]


class Result:
    def __init__(self, proc: subprocess.CompletedProcess):
        self.code, self.out, self.err = proc.returncode, proc.stdout, proc.stderr

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return f"Result(code={self.code}, out={self.out[:400]!r}, err={self.err[:400]!r})"


def run(*args, env=None, input=None, prefix=(), timeout=60, binary=False, command=None) -> Result:
    """shmctl as a real process; `binary` keeps stdout as bytes (stderr is always text)."""
    if isinstance(prefix, nobody_prefix):
        return run_as_nobody(*args, wrappers=prefix, env=env, input=input, timeout=timeout, binary=binary)
    full_env = dict(os.environ, **(env or {}))
    full_env.setdefault("PYTHONPATH", os.path.dirname(HERE))
    if isinstance(input, str):
        input = input.encode()
    proc = subprocess.run([*prefix, *(command or shmctl_cmd()), *map(str, args)], capture_output=True,
                          env=full_env, input=input, timeout=timeout)
    proc.stderr = proc.stderr.decode("utf-8", "replace")
    if not binary:
        proc.stdout = proc.stdout.decode("utf-8", "replace")
    return Result(proc)


@pytest.fixture
def shmctl():
    return run


# --- shmctl in this process: for what needs no real process (usage errors, help, parsing) ---

def run_in_process(*args, env=None, input=None, binary=False) -> Result:
    """shmctl's main(argv) in this test's own process, through click's CliRunner isolation
    (stdin, stdout, stderr, environment; help at 80 columns as on a pipe), for usage errors,
    help texts and parse-only paths: the same exit code and the same bytes as `run` gives,
    without starting an interpreter. Arguments may be bytes (decoded as Python decodes argv).
    main() disables gc and installs signal handlers with a wakeup pipe: all of it is put back."""
    from click.testing import CliRunner
    from shmctl_cli import signals
    from shmctl_cli.cli import main
    argv = [os.fsdecode(a) if isinstance(a, bytes) else str(a) for a in args]
    gc_was = gc.isenabled()
    handlers = {signum: signal.getsignal(signum) for signum in signals.STOPS}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    read_end = signals._wakeup
    try:
        with CliRunner().isolation(input=input, env=env) as (stdout, stderr, _mixed):
            try:
                code = main(argv)
            except SystemExit as exc:  # as the interpreter would turn it into a status
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
            sys.stdout.flush()
            sys.stderr.flush()
            out, err = stdout.getvalue(), stderr.getvalue()
    finally:
        written = signal.set_wakeup_fd(wakeup)
        if written not in (-1, wakeup):
            os.close(written)
        if signals._wakeup != read_end:
            os.close(signals._wakeup)
            signals._wakeup = read_end
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        if gc_was:
            gc.enable()
    result = Result(subprocess.CompletedProcess(argv, code, out if binary else out.decode("utf-8", "replace"),
                                                err.decode("utf-8", "replace")))
    result.err_bytes = err  # every byte, undecoded
    return result


@pytest.fixture
def shmctl_in_process():
    return run_in_process


# --- real segments, made by another process ---

def stop_child(proc: subprocess.Popen, timeout: float = 10) -> None:
    """Close a child's stdin (its signal to exit), wait for it, and kill it if it will not go."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Holder:
    def __init__(self, specs):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "holder.py"), json.dumps(specs)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        self.objects = []
        for line in self.proc.stdout:
            if line.strip() == "ready":
                break
            self.objects.append(json.loads(line))
        else:
            raise RuntimeError(f"holder failed: {self.proc.stderr.read()}")
        self.pid = self.proc.pid

    def close(self):
        stop_child(self.proc)


@pytest.fixture
def hold():
    """hold(spec, ...) starts a holder process; it is stopped (and its objects removed)
    at the end of the test, whatever happened."""
    yield from closing_each(lambda *specs: Holder(list(specs)))


def closing_each(make):
    """A fixture's body: yields a factory (make's arguments) whose every product is closed at
    the end of the test, whatever happened."""
    made = []

    def start(*args, **kwargs):
        thing = make(*args, **kwargs)
        made.append(thing)
        return thing
    yield start
    for thing in made:
        thing.close()


@pytest.fixture
def unique():
    """A name/key no other test (or process on an unisolated machine) uses."""
    token = uuid.uuid4().hex[:10]

    class Unique:
        name = f"shmctl-test-{token}"
        key = int(token[:8], 16) | 0x10000000
    return Unique


@pytest.fixture
def cleanup_shm():
    """Remove the named /dev/shm entries and SysV ids at teardown, even after a failure."""
    names, shmids = [], []
    yield names, shmids
    for name in names:
        path = os.path.join("/dev/shm", name)
        with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
    for shmid in shmids:
        subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True)


# --- filesystems of a test's own (the session runs in a private mount namespace as root) ---

def mount_tmpfs(path, size: str = "4m") -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=1777", "shmctl-test", str(path)], check=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A 4 MiB tmpfs of the test's own, mode 1777; unmounted at teardown."""
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    mount_tmpfs(mnt)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


# --- other users: `nobody`, and a second, unprivileged uid ---

SECOND_UID = 4242  # a uid no account uses: an attacker who is not `nobody`
_made_dirs: list = []  # directories this session created (removed at its end, nothing else)


ATTACKERS = ["nobody", SECOND_UID]  # the other users a test plays against root


def own_group(uid):
    """The group an attacker runs with: nobody's, or for a bare uid the gid of that number."""
    return "nogroup" if uid == "nobody" else uid


def as_user(uid="nobody", gid=None) -> list:
    """setpriv argv: become uid/gid (default: own_group) with no supplementary groups and no
    capabilities."""
    return ["setpriv", f"--reuid={uid}", f"--regid={own_group(uid) if gid is None else gid}", "--clear-groups"]


NOBODY = as_user()
_nobody_python = None


def _world_readable_copy() -> str:
    """Our package and its dependencies copied where other users may read them: pyenv's
    site-packages under /root (or a venv in a closed directory) are closed to them."""
    import importlib
    target = tempfile.mkdtemp(prefix="shmctl-nobody-")
    _made_dirs.append(target)
    os.chmod(target, 0o755)
    for name in ("shmctl_cli", "click", "rich", "psutil", "markdown_it", "mdurl", "pygments"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        shutil.copytree(os.path.dirname(module.__file__), os.path.join(target, name),
                        ignore=shutil.ignore_patterns("__pycache__"))
    for root, dirs, files in os.walk(target):
        for entry in dirs + files:
            os.chmod(os.path.join(root, entry), 0o755 if entry in dirs else 0o644)
    return target


def _python_for_others():
    """(interpreter, PYTHONPATH) that another uid can run shmctl with."""
    global _nobody_python
    if _nobody_python is None:
        candidates = [(sys.executable, os.path.dirname(HERE))]
        system = shutil.which("python3", path="/usr/bin:/usr/local/bin:/bin")
        if system:
            candidates.append((system, None))
        for python, path in candidates:
            path = path or _world_readable_copy()
            # through env, as tests run it through prlimit: setpriv itself may exec what another
            # program, run as that user, may not (a venv's python linking into /root)
            probe = subprocess.run([*NOBODY, "env", python, "-c", "import click, rich, psutil, shmctl_cli"],
                                   capture_output=True, env=dict(os.environ, PYTHONPATH=path))
            if probe.returncode == 0:
                _nobody_python = (python, path)
                break
        else:
            pytest.skip("no Python interpreter that uid nobody may run")
    return _nobody_python


def nobody_command(uid="nobody", gid=None):
    """(argv prefix, env) that runs shmctl as `uid` with no capabilities at all."""
    python, path = _python_for_others()
    return [*as_user(uid, gid), python, "-m", "shmctl_cli"], {"PYTHONPATH": path}


def python_as(uid="nobody", gid=None) -> list:
    """argv prefix that runs a Python script as `uid` (an attacker's helper process)."""
    python, _path = _python_for_others()
    return [*as_user(uid, gid), python]


def attacker_runs(uid, *argv, cwd=None) -> str:
    """argv run as the attacker `uid` (no capabilities), which must succeed: its stdout, stripped."""
    done = subprocess.run([*as_user(uid), *map(str, argv)], cwd=cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def attacker_python(uid, script: str, *args) -> str:
    """A Python script run as the attacker `uid` (see attacker_runs)."""
    return attacker_runs(uid, _python_for_others()[0], "-c", script, *args)


class nobody_prefix(tuple):
    """`run(..., prefix=nobody_prefix())` runs shmctl as uid nobody; arguments go between
    setpriv and the interpreter (`nobody_prefix("prlimit", "--memlock=4096")`). A second
    uid: `nobody_prefix(uid=SECOND_UID)`."""

    def __new__(cls, *wrappers, uid="nobody", gid="nogroup"):
        self = super().__new__(cls, wrappers)
        self.uid, self.gid = uid, gid
        return self


def run_as_nobody(*args, wrappers=(), **kwargs) -> Result:
    uid, gid = getattr(wrappers, "uid", "nobody"), getattr(wrappers, "gid", "nogroup")
    argv, env = nobody_command(uid, gid)
    setpriv = len(as_user(uid, gid))
    return run(*args, prefix=(*argv[:setpriv], *wrappers), command=argv[setpriv:],
               env={**lock_dir_env(uid), **(kwargs.pop("env", None) or {}), **env}, **kwargs)


def run_as(uid, *args, **kwargs) -> Result:
    """shmctl as another uid (`run_as(SECOND_UID, "list")`; gid = uid)."""
    return run(*args, prefix=nobody_prefix(uid=uid, gid=own_group(uid)), **kwargs)


# --- shmctl's write locks: in directories of this session, never the host's /run/shmctl ---

_lock_root = None
# Our own lock directory: named now (so that ENV below carries it), made only when the test
# session starts (nothing_left_behind), so that importing this file creates nothing.
OWN_LOCK_DIR = os.path.join(tempfile.gettempdir(), f"shmctl-test-locks-{os.getpid()}")


def lock_dir_env(uid) -> dict:
    """SHMCTL_LOCK_DIR for shmctl run as `uid` (a name or a number): a 0700 directory of that
    uid made by this session; empty (shmctl's defaults) where this session cannot make one."""
    global _lock_root
    import pwd
    uid = int(uid) if str(uid).isdigit() else pwd.getpwnam(uid).pw_uid
    if uid == os.geteuid():
        return {"SHMCTL_LOCK_DIR": OWN_LOCK_DIR}
    if not ROOT:
        return {"SHMCTL_LOCK_DIR": ""}
    if _lock_root is None:
        _lock_root = tempfile.mkdtemp(prefix="shmctl-locks-")
        _made_dirs.append(_lock_root)
        os.chmod(_lock_root, 0o755)
    path = os.path.join(_lock_root, str(uid))
    if not os.path.isdir(path):
        os.mkdir(path, 0o700)
        os.chown(path, uid, -1)
    return {"SHMCTL_LOCK_DIR": path}


os.environ["SHMCTL_LOCK_DIR"] = OWN_LOCK_DIR
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))  # for shmctl started by hand (Popen)
SHMCTL = shmctl_cmd()


needs_root = pytest.mark.skipif(not ROOT, reason="needs root")
needs_isolation = pytest.mark.skipif(not ISOLATED, reason="needs a private IPC namespace")
