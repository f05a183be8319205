"""Issue 8, "Locks that nobody else can poison": shmctl's write lock is an flock on a file
named after the segment, in a directory of the writer's own uid (kinds/lock.py).

Every attack runs as `nobody` and as a second uid against root's writes, on real objects.
The session points SHMCTL_LOCK_DIR at directories of its own (conftest.lock_dir_env): no test
touches the host's /run/shmctl or /tmp/shmctl-UID.
"""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import ATTACKERS, ENV, ROOT, SECOND_UID, needs_isolation, python_as, run, run_as
from kernel import created, held_lock, lock_path

pytestmark = needs_isolation
OLD_SEM_KEY = 0x73686D63
BUSY = "held its lock throughout 1s (try again when it is done; SHMCTL_LOCK_TIMEOUT=SECONDS waits longer)"


def lock_holders(path: str) -> list:
    st = os.stat(path)
    wanted = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        return [int(line.split()[4]) for line in f if line.split()[1] == "FLOCK" and line.split()[5] == wanted]


def lock_files() -> list:
    return sorted(os.listdir(os.environ["SHMCTL_LOCK_DIR"]))


@pytest.fixture
def segment(request, unique, cleanup_shm):
    """(address, path or None, shmid or None) of a fresh 4 KiB segment of the kind asked,
    mode 0644 so that other users may open (and flock) it."""
    names, shmids = cleanup_shm
    if request.param == "sysv":
        address = created("sysv", "--size", "4K", "--mode", "0644")
        shmids.append(int(address.split(":")[1]))
        return address, None, shmids[0]
    names.append(unique.name)
    created(f"/{unique.name}", "--size", "4K", "--mode", "0644")
    return f"posix:/{unique.name}", f"/dev/shm/{unique.name}", None


@pytest.fixture
def public():
    """A directory that other uids can reach (tmp_path's parents are root's 0700), with a
    sticky world-writable `pub` inside like /tmp; removed with all it holds at the end."""
    top = tempfile.mkdtemp(prefix="shmctl-sec-locks-")
    os.chmod(top, 0o755)
    pub = os.path.join(top, "pub")
    os.mkdir(pub)
    os.chmod(pub, 0o1777)
    yield pub
    shutil.rmtree(top)


def attacker(uid, script, *args) -> subprocess.Popen:
    """A Python process of `uid` that runs `script`; it prints one line when it is ready and
    then holds on until its stdin closes."""
    return subprocess.Popen([*python_as(uid), "-c", script, *map(str, args)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def ready(proc: subprocess.Popen) -> str:
    line = proc.stdout.readline().strip()
    assert line, proc.stderr.read()
    return line


def done(proc: subprocess.Popen) -> None:
    proc.stdin.close()
    proc.wait(30)


def as_attacker(uid, script, *args) -> str:
    proc = attacker(uid, script, *args)
    try:
        return ready(proc)
    finally:
        done(proc)


def read(address, length=4096) -> bytes:
    return run("read", address, "--length", str(length), binary=True).out


# --- contention: exit 5 naming the holder, never a wait without a bound ---

@pytest.mark.parametrize("segment", ["posix", "sysv"], indirect=True)
def test_contention_is_exit_5_naming_the_holder(segment):
    address, path, shmid = segment
    with held_lock(lock_path(path, shmid)):
        start = time.monotonic()
        r = run("write", address, "--data", "never", env={"SHMCTL_LOCK_TIMEOUT": "1"})
        waited = time.monotonic() - start
    assert r.code == 5, r
    assert r.err == f"shmctl: write {address}: another writer (pid {os.getpid()}) {BUSY}\n"
    assert waited >= 1 and read(address, 5) == b"\0" * 5
    assert lock_files() == []


def test_a_bad_lock_timeout_is_a_usage_error(segment_posix):
    address = segment_posix
    for value in ("soon", "-1", "nan", "inf"):
        r = run("write", address, "--data", "x", env={"SHMCTL_LOCK_TIMEOUT": value})
        assert r.code == 2 and r.err == (f"shmctl: SHMCTL_LOCK_TIMEOUT='{value}': expected seconds, 0 or more "
                                         "(e.g. SHMCTL_LOCK_TIMEOUT=5)\n"), r
    assert read(address, 1) == b"\0"


@pytest.fixture
def segment_posix(unique, cleanup_shm):
    cleanup_shm[0].append(unique.name)
    return created(f"/{unique.name}", "--size", "4K")


HOLD_WITH_SHMCTL = """
import sys
from shmctl_cli import kinds
from shmctl_cli.address import parse_address
with kinds.open_segment(parse_address(sys.argv[1]), kinds.View(), writable=True) as handle:
    with handle.write_lock():
        print("locked", flush=True)
        sys.stdin.read()
"""


@pytest.mark.parametrize("segment", ["posix", "sysv"], indirect=True)
def test_a_writer_killed_holding_the_lock_frees_it_at_once(segment):
    """The holder is shmctl's own lock code in a real process; after SIGKILL, a write that
    may not wait at all (timeout 0) gets the lock, and removes the file the dead one left."""
    address, path, shmid = segment
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WITH_SHMCTL, address], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=ENV)
    assert holder.stdout.readline() == "locked\n"
    try:
        assert lock_holders(lock_path(path, shmid)) == [holder.pid]
        r = run("write", address, "--data", "blocked", env={"SHMCTL_LOCK_TIMEOUT": "0"})
        assert r.code == 5 and f"another writer (pid {holder.pid}) held its lock throughout 0s" in r.err, r
    finally:
        holder.kill()
        holder.wait()
    assert lock_files() == [os.path.basename(lock_path(path, shmid))]  # SIGKILL left it behind
    r = run("write", address, "--data", "next", env={"SHMCTL_LOCK_TIMEOUT": "0"})
    assert r.code == 0, r
    assert read(address, 4) == b"next" and lock_files() == []


STRESS = """
import os, sys
from shmctl_cli.kinds import lock
marker = sys.argv[1]
for _ in range(int(sys.argv[2])):
    with lock.write_lock("stress", "file-stress"):
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # EEXIST: two holders at once
        os.unlink(marker)
"""


def test_unlinking_the_lock_file_never_lets_two_writers_in(tmp_path):
    """Every release unlinks the file while waiters hold it open: each must start again on
    the new file, never believe it holds the lock of the unlinked one."""
    marker = tmp_path / "inside"
    procs = [subprocess.Popen([sys.executable, "-c", STRESS, str(marker), "300"], env=ENV, stderr=subprocess.PIPE,
                              text=True) for _ in range(4)]
    results = [(p.wait(120), p.stderr.read()) for p in procs]
    assert results == [(0, "")] * 4
    assert lock_files() == []


# --- other users cannot stall or poison root's writes ---

FLOCK_IT = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("uid", ATTACKERS)
@pytest.mark.parametrize("kind", ["posix", "mmap"])
def test_a_reader_flocking_the_object_does_not_stall_root(uid, kind, unique, cleanup_shm, public):
    if kind == "posix":
        cleanup_shm[0].append(unique.name)
        path, address = f"/dev/shm/{unique.name}", f"posix:/{unique.name}"
    else:
        path = os.path.join(os.path.dirname(public), "segment")
        address = f"mmap:{path}"
    created(address, "--size", "4K", "--mode", "0644")
    proc = attacker(uid, FLOCK_IT, path)
    try:
        assert ready(proc) == "locked"
        r = run("write", address, "--data", "root's", env={"SHMCTL_LOCK_TIMEOUT": "5"})
        assert r.code == 0, r
        assert lock_holders(path) == [proc.pid]  # written while the attacker still holds its flock
    finally:
        done(proc)
    assert read(address, 6) == b"root's"


SEMAPHORES_ON_THE_OLD_KEY = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.semget.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int]
key, count, mode = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3], 8)
semid = libc.semget(key, count, 0o1000 | 0o2000 | mode)
if semid < 0:
    sys.exit("semget: " + str(ctypes.get_errno()))
class SemBuf(ctypes.Structure):
    _fields_ = [("num", ctypes.c_ushort), ("op", ctypes.c_short), ("flg", ctypes.c_short)]
ops = (SemBuf * count)(*[SemBuf(i, 1, 0) for i in range(count)])  # every slot "held", no SEM_UNDO
if libc.semop(semid, ops, count) < 0:
    sys.exit("semop: " + str(ctypes.get_errno()))
print(semid, flush=True)
"""


@pytest.mark.parametrize("uid", ATTACKERS)
@pytest.mark.parametrize("count, mode", [(128, "0666"), (1, "0600")])
@pytest.mark.parametrize("segment", ["sysv"], indirect=True)
def test_semaphores_on_the_old_lock_key_mean_nothing(uid, count, mode, segment):
    """The old lock was a semaphore set of key 0x73686d63: a set of any shape there, every
    slot held, made the next SysV write wait or fail. Now no semaphore is looked at."""
    address, _, shmid = segment
    semid = int(as_attacker(uid, SEMAPHORES_ON_THE_OLD_KEY, OLD_SEM_KEY, count, mode))
    try:
        r = run("write", address, "--data", "root's", env={"SHMCTL_LOCK_TIMEOUT": "5"})
        assert r.code == 0, r
        assert read(address, 6) == b"root's"
    finally:
        subprocess.run(["ipcrm", "-s", str(semid)], check=True)


TOUCH_ROOTS_LOCK = """
import errno, fcntl, os, sys
for path in sys.argv[1:]:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        print("got " + path)
    except OSError as exc:
        print(errno.errorcode[exc.errno], end=" ")
print(flush=True)
"""


@pytest.mark.parametrize("uid", ATTACKERS)
@pytest.mark.parametrize("segment", ["posix"], indirect=True)
def test_other_users_cannot_reach_roots_lock(uid, segment):
    """Root's lock directory is 0700 root: no other uid can create, open or flock a lock
    file there, nor plant anything in it."""
    address, path, _ = segment
    lock = lock_path(path)
    assert os.stat(os.path.dirname(lock)).st_mode & 0o777 == 0o700
    with held_lock(lock):
        assert as_attacker(uid, TOUCH_ROOTS_LOCK, lock, os.path.dirname(lock) + "/planted") == "EACCES EACCES"
    assert run("write", address, "--data", "ok", env={"SHMCTL_LOCK_TIMEOUT": "1"}).code == 0


# --- lock directories that are not the writer's own are refused, never followed ---

PLANT = """
import os, sys
kind, path, target = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "symlink":
    os.symlink(target, path)
elif kind == "fifo":
    os.mkfifo(path, 0o666)
else:
    os.mkdir(path)
    os.chmod(path, int(kind, 8))
print("planted", flush=True)
"""
UNSAFE = "(remove it, or point SHMCTL_LOCK_DIR at a mode 0700 directory of your own)"


def _uid(name):
    import pwd
    return pwd.getpwnam(name).pw_uid if name == "nobody" else name


@pytest.mark.parametrize("uid", ATTACKERS)
@pytest.mark.parametrize("plant", ["symlink", "fifo", "0777", "0700"])
@pytest.mark.parametrize("segment", ["posix"], indirect=True)
def test_a_planted_lock_directory_is_refused(uid, plant, segment, public):
    """SHMCTL_LOCK_DIR naming something another user planted in a sticky directory (as
    /tmp/shmctl-UID could be): root's write is refused with exit 5, creates nothing there,
    follows nothing, and the segment is untouched."""
    address, _, _ = segment
    planted = os.path.join(public, "locks")
    target = os.path.join(os.path.dirname(public), "roots")  # a directory of root's, 0700
    os.mkdir(target, 0o700)
    assert as_attacker(uid, PLANT, plant, planted, target) == "planted"
    r = run("write", address, "--data", "x", env={"SHMCTL_LOCK_DIR": planted, "SHMCTL_LOCK_TIMEOUT": "1"})
    why = {"symlink": "is a symlink", "fifo": "is not a directory"}.get(plant, f"belongs to uid {_uid(uid)}, not 0")
    assert r.code == 5 and r.err == f"shmctl: write {address}: the lock directory {planted} {why} {UNSAFE}\n", r
    assert os.listdir(target) == [] and read(address, 1) == b"\0"
    if plant in ("0777", "0700"):
        assert os.listdir(planted) == []


@pytest.mark.parametrize("segment", ["posix"], indirect=True)
def test_roots_own_directory_open_to_others_is_refused(segment, public):
    address, _, _ = segment
    wide = os.path.join(public, "wide")
    os.mkdir(wide)
    os.chmod(wide, 0o1777)
    r = run("write", address, "--data", "x", env={"SHMCTL_LOCK_DIR": wide})
    assert r.code == 5 and r.err == (f"shmctl: write {address}: the lock directory {wide} is mode 1777, "
                                     f"open to others {UNSAFE}\n"), r
    assert os.listdir(wide) == []


@pytest.mark.parametrize("segment", ["posix"], indirect=True)
def test_a_symlink_in_place_of_the_lock_file_is_not_followed(segment, tmp_path):
    """Only root could plant it in root's 0700 directory, but even then: O_NOFOLLOW."""
    address, path, _ = segment
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    os.symlink(victim, lock_path(path))
    try:
        r = run("write", address, "--data", "x")
        assert r.code == 5 and f"the lock file {os.path.basename(lock_path(path))} is a symlink" in r.err, r
    finally:
        os.unlink(lock_path(path))
    assert victim.read_bytes() == b"precious" and read(address, 1) == b"\0"


# --- a user's own lock directory: $XDG_RUNTIME_DIR/shmctl or $TMPDIR/shmctl-UID ---

@pytest.fixture
def victims_segment(unique, cleanup_shm):
    """A POSIX object of SECOND_UID's (the user whose writes an attacker tries to deny)."""
    cleanup_shm[0].append(unique.name)
    r = run_as(SECOND_UID, "create", f"/{unique.name}", "--size", "4K")
    assert r.code == 0, r
    return r.out.strip()


def test_a_users_writes_use_a_0700_directory_of_their_own(victims_segment, public):
    env = {"SHMCTL_LOCK_DIR": "", "XDG_RUNTIME_DIR": "", "TMPDIR": public}
    r = run_as(SECOND_UID, "write", victims_segment, "--data", "mine", env=env)
    assert r.code == 0, r
    made = os.lstat(os.path.join(public, f"shmctl-{SECOND_UID}"))
    assert stat.S_ISDIR(made.st_mode) and made.st_uid == SECOND_UID and made.st_mode & 0o777 == 0o700
    assert os.listdir(os.path.join(public, f"shmctl-{SECOND_UID}")) == []  # the lock file went with the lock
    runtime = os.path.join(public, "runtime")
    os.mkdir(runtime, 0o700)
    os.chown(runtime, SECOND_UID, SECOND_UID)
    r = run_as(SECOND_UID, "write", victims_segment, "--data", "xdg!", env=dict(env, XDG_RUNTIME_DIR=runtime))
    assert r.code == 0 and os.listdir(runtime) == ["shmctl"], r


@pytest.mark.parametrize("plant", ["symlink", "0777", "0700"])
def test_a_squatted_tmp_directory_is_refused_never_used(plant, victims_segment, public):
    """An attacker who plants TMPDIR/shmctl-UID first: the victim's write is refused with a
    message that says what to do; nothing is written through the attacker's directory, and
    the victim's own XDG_RUNTIME_DIR (or SHMCTL_LOCK_DIR) gets around it."""
    squat = os.path.join(public, f"shmctl-{SECOND_UID}")
    victims = os.path.join(os.path.dirname(public), "victims")  # a symlink may point at a 0700 dir of the victim's
    os.mkdir(victims, 0o700)
    os.chown(victims, SECOND_UID, SECOND_UID)
    assert as_attacker("nobody", PLANT, plant, squat, victims) == "planted"
    env = {"SHMCTL_LOCK_DIR": "", "XDG_RUNTIME_DIR": "", "TMPDIR": public}
    r = run_as(SECOND_UID, "write", victims_segment, "--data", "mine", env=env)
    why = "is a symlink" if plant == "symlink" else f"belongs to uid {_uid('nobody')}, not {SECOND_UID}"
    assert r.code == 5 and r.err == f"shmctl: write {victims_segment}: the lock directory {squat} {why} {UNSAFE}\n", r
    assert os.listdir(victims) == [] and (plant == "symlink" or os.listdir(squat) == [])
    runtime = os.path.join(os.path.dirname(public), "runtime")
    os.mkdir(runtime, 0o700)
    os.chown(runtime, SECOND_UID, SECOND_UID)
    r = run_as(SECOND_UID, "write", victims_segment, "--data", "mine", env=dict(env, XDG_RUNTIME_DIR=runtime))
    assert r.code == 0, r
    assert read(victims_segment, 4) == b"mine"


def test_the_default_directories(public):
    """Where each uid's locks go, without creating anything: root always /run/shmctl (which
    only root can create: /run is root's and closed to others); others XDG_RUNTIME_DIR/shmctl
    only when it is their own 0700 directory, else TMPDIR (or /tmp)/shmctl-UID."""
    from shmctl_cli.kinds.lock import lock_dir_path
    own = os.path.join(public, "own")
    os.mkdir(own, 0o700)
    os.chown(own, SECOND_UID, SECOND_UID)
    wide = os.path.join(public, "wide")
    os.mkdir(wide, 0o755)
    os.chown(wide, SECOND_UID, SECOND_UID)
    theirs = os.path.join(public, "theirs")
    os.mkdir(theirs, 0o700)
    link = os.path.join(public, "link")
    os.symlink(own, link)
    assert lock_dir_path(0, {}) == "/run/shmctl"
    assert lock_dir_path(0, {"XDG_RUNTIME_DIR": own, "TMPDIR": public}) == "/run/shmctl"
    assert lock_dir_path(0, {"SHMCTL_LOCK_DIR": own}) == own
    assert lock_dir_path(SECOND_UID, {}) == f"/tmp/shmctl-{SECOND_UID}"
    assert lock_dir_path(SECOND_UID, {"XDG_RUNTIME_DIR": own}) == f"{own}/shmctl"
    for bad in (wide, theirs, link, "relative/dir", os.path.join(public, "missing")):
        assert lock_dir_path(SECOND_UID, {"XDG_RUNTIME_DIR": bad}) == f"/tmp/shmctl-{SECOND_UID}", bad
    assert lock_dir_path(SECOND_UID, {"TMPDIR": public}) == f"{public}/shmctl-{SECOND_UID}"
    assert lock_dir_path(SECOND_UID, {"TMPDIR": "relative"}) == f"/tmp/shmctl-{SECOND_UID}"
    assert lock_dir_path(SECOND_UID, {"SHMCTL_LOCK_DIR": "", "TMPDIR": public}) == f"{public}/shmctl-{SECOND_UID}"
    run_dir = os.stat("/run")
    assert run_dir.st_uid == 0 and not run_dir.st_mode & 0o022
    assert sorted(os.listdir(public)) == ["link", "own", "theirs", "wide"]  # nothing made


def test_sysv_locks_are_per_ipc_namespace():
    """shmids repeat across IPC namespaces: the lock name carries the namespace's inode."""
    from shmctl_cli.kinds.lock import sysv_lock_name
    from shmctl_cli.system import System
    ours = sysv_lock_name(5, System().ipc_namespace_inode)
    assert ours == f"sysv-{os.stat('/proc/self/ns/ipc').st_ino:x}-5"
    if not ROOT:
        return
    code = ("from shmctl_cli.kinds.lock import sysv_lock_name; from shmctl_cli.system import System; "
            "print(sysv_lock_name(5, System().ipc_namespace_inode))")
    other = subprocess.run(["unshare", "--ipc", sys.executable, "-c", code], capture_output=True, text=True,
                           env=ENV, check=True).stdout.strip()
    assert other.startswith("sysv-") and other.endswith("-5") and other != ours


def test_no_semaphore_set_is_made():
    with open("/proc/sysvipc/sem") as f:
        before = f.read()
    address = created("sysv", "--size", "4K")
    try:
        assert run("write", address, "--data", "x").code == 0
    finally:
        run("rm", address)
    with open("/proc/sysvipc/sem") as f:
        assert f.read() == before


def _open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def _holds(pid: int, path: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == path for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


@pytest.mark.parametrize("segment", ["posix", "sysv"], indirect=True)
def test_a_stop_signal_at_any_moment_leaves_no_lock_file(segment):
    """SIGTERM landing anywhere in a writer's life, taking the lock included, leaves no lock file
    behind (a CI run once found one): each writer is stopped once it has N fds open, N from 3
    up, so the signal lands at a different point of its start, its lock and its wait on stdin."""
    address, path, shmid = segment
    lock = lock_path(path, shmid)
    for opened in list(range(3, 9)) * 3:
        writer = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "write", address, "-"], env=ENV,
                                  stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30
        while (writer.poll() is None and _open_fds(writer.pid) < opened and not _holds(writer.pid, lock)
               and time.monotonic() < deadline):
            pass  # spin on the events (its fd count, the lock file open), never a fixed sleep
        writer.terminate()
        writer.stdin.close()
        code = writer.wait(30)
        writer.stderr.close()
        assert code in (0, 143, -15), code  # 0: it had read the (empty) input and finished
        assert not os.path.exists(lock), (opened, code)
    assert lock_files() == []
