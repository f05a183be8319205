"""`read -o FILE` on a shared host: the attacker plants symlinks, FIFOs, sockets and files of
their own at FILE, or swaps FILE during the copy; the segment shrinks under the copy; a signal
or a full disk stops it. Checked on the real files: the victim's bytes, what is left in the
directory, the exit code and the one-line message."""
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time

import pytest

from conftest import ATTACKERS, HERE, SECOND_UID, attacker_python, needs_isolation, needs_root, run, run_as, shmctl_cmd

pytestmark = [needs_isolation, needs_root]

VICTIM = b"root:secret-configuration\n"
REFUSE_KIND = "(shmctl only replaces regular files; write to a pipe or device through stdout (-o -))"


def uid_of(user) -> int:
    import pwd
    return pwd.getpwnam(user).pw_uid if isinstance(user, str) else user


@pytest.fixture
def reachable():
    """A 0755 directory of this test that every uid can reach (tmp_path is closed to them)."""
    top = tempfile.mkdtemp(prefix="shmctl-sec-output-")
    os.chmod(top, 0o755)
    yield top
    shutil.rmtree(top)


@pytest.fixture
def public(reachable):
    """A sticky 1777 directory, like /tmp."""
    pub = os.path.join(reachable, "pub")
    os.mkdir(pub)
    os.chmod(pub, 0o1777)
    return pub


@pytest.fixture
def victim(tmp_path):
    """A root file the attacker would like overwritten (an /etc/shadow of this test)."""
    path = tmp_path / "shadow"
    path.write_bytes(VICTIM)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def segment(unique, cleanup_shm):
    """make(size, data) -> (address, path) of a POSIX object made by this test."""
    def make(size=65536, data=b""):
        name = f"{unique.name}-{len(cleanup_shm[0])}"
        path = f"/dev/shm/{name}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        cleanup_shm[0].append(name)
        os.ftruncate(fd, size)
        os.pwrite(fd, data or bytes(range(256)) * (min(size, 65536) // 256), 0)
        os.close(fd)
        return f"/{name}", path
    return make


def contents(path) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write(path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def temps(directory):
    return [n for n in os.listdir(directory) if n.endswith(".shmctl-tmp")]


# --- what is at FILE before the copy ---

@pytest.mark.parametrize("user", ATTACKERS)
@pytest.mark.parametrize("force", [False, True])
def test_a_planted_symlink_is_never_followed(user, force, public, victim, segment):
    address, _ = segment()
    link = os.path.join(public, "out.bin")
    attacker_python(user, "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", victim, link)
    r = run("read", address, "-o", link, *(["--force"] if force else []))
    assert (r.code, r.err) == (5, f"shmctl: write {link}: it is a symbolic link {REFUSE_KIND}\n")
    assert contents(victim) == VICTIM and os.stat(victim).st_uid == 0
    assert os.readlink(link) == str(victim) and os.listdir(public) == ["out.bin"]


@pytest.mark.parametrize("user", ATTACKERS)
def test_a_dangling_symlink_does_not_create_its_target(user, public, tmp_path, segment):
    """O_CREAT through a dangling link would make a root file wherever the attacker points."""
    address, _ = segment()
    target, link = tmp_path / "cron.d-job", os.path.join(public, "out.bin")
    attacker_python(user, "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", target, link)
    r = run("read", address, "-o", link)
    assert (r.code, r.err) == (5, f"shmctl: write {link}: it is a symbolic link {REFUSE_KIND}\n")
    assert not target.exists() and os.listdir(public) == ["out.bin"]


@pytest.mark.parametrize("force", [False, True])
def test_a_planted_fifo_is_refused_without_hanging(force, public, segment):
    address, _ = segment()
    fifo = os.path.join(public, "out.bin")
    attacker_python("nobody", "import os, sys; os.mkfifo(sys.argv[1], 0o666)", fifo)
    r = run("read", address, "-o", fifo, *(["--force"] if force else []), timeout=30)
    assert (r.code, r.err) == (5, f"shmctl: write {fifo}: it is a FIFO {REFUSE_KIND}\n")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.listdir(public) == ["out.bin"]


def test_a_socket_or_device_at_file_is_refused(public, segment):
    address, _ = segment()
    path = os.path.join(public, "sock")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(path)
        r = run("read", address, "-o", path, "--force", timeout=30)
        assert (r.code, r.err) == (5, f"shmctl: write {path}: it is a socket {REFUSE_KIND}\n")
    r = run("read", address, "-o", "/dev/null", "--force")
    assert (r.code, r.err) == (5, f"shmctl: write /dev/null: it is a character device {REFUSE_KIND}\n")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert os.listdir(public) == ["sock"] and not temps("/dev")


@pytest.mark.parametrize("force", [False, True])
def test_a_file_of_another_user_is_never_replaced(force, public, segment):
    address, _ = segment()
    theirs = os.path.join(public, "out.bin")
    attacker_python(SECOND_UID, "import sys; open(sys.argv[1], 'wb').write(b'theirs')", theirs)
    before = os.stat(theirs)
    r = run("read", address, "-o", theirs, *(["--force"] if force else []))
    assert (r.code, r.err) == (4, f"shmctl: write {theirs}: it is owned by uid {SECOND_UID} (shmctl never "
                                  "replaces another user's file: remove it or choose another name)\n")
    after = os.stat(theirs)
    assert contents(theirs) == b"theirs" and (after.st_ino, after.st_uid) == (before.st_ino, SECOND_UID)
    assert os.listdir(public) == ["out.bin"]


def test_a_user_cannot_replace_roots_file_either(public, segment):
    address, _ = segment()
    os.chmod(address.replace("/", "/dev/shm/", 1), 0o644)
    mine = os.path.join(public, "report")
    with open(mine, "wb") as f:
        f.write(VICTIM)
    r = run_as("nobody", "read", address, "-o", mine, "--force")
    assert (r.code, r.err) == (4, f"shmctl: write {mine}: it is owned by uid 0 (shmctl never "
                                  "replaces another user's file: remove it or choose another name)\n")
    assert contents(mine) == VICTIM and os.listdir(public) == ["report"]


def test_a_hard_link_to_a_victim_is_replaced_not_written_through(public, segment):
    """With fs.protected_hardlinks=0 an attacker can link root's file into /tmp under FILE's
    name (made here by root, the effect is the same): FILE is then root's own regular file,
    and --force must replace the name, never write into the inode."""
    address, shm = segment()
    top = os.path.dirname(public)
    victim = os.path.join(top, "shadow")  # same filesystem as FILE, as a link needs
    write(victim, VICTIM)
    os.chmod(victim, 0o600)
    out = os.path.join(public, "out.bin")
    os.link(victim, out)
    assert run("read", address, "-o", out).code == 5 and contents(victim) == VICTIM
    r = run("read", address, "-o", out, "--force")
    assert (r.code, r.err) == (0, "")
    assert contents(victim) == VICTIM and os.stat(victim).st_nlink == 1
    assert contents(out) == contents(shm) and os.listdir(public) == ["out.bin"]


def test_an_existing_file_needs_force(public, segment):
    address, _ = segment()
    mine = os.path.join(public, "out.bin")
    with open(mine, "wb") as f:
        f.write(b"old")
    r = run("read", address, "-o", mine)
    assert (r.code, r.err) == (5, f"shmctl: write {mine}: it exists (--force replaces it)\n")
    assert contents(mine) == b"old" and os.listdir(public) == ["out.bin"]


def test_force_replaces_atomically_with_mode_0600(public, segment):
    address, shm = segment()
    mine = os.path.join(public, "out.bin")
    with open(mine, "wb") as f:
        f.write(b"old")
    os.chmod(mine, 0o644)
    old_ino = os.stat(mine).st_ino
    with open(mine, "rb") as reader:  # a reader of the old file keeps a whole old file
        r = run("read", address, "-o", mine, "--force")
        assert (r.code, r.err, r.out) == (0, "", "")
        assert reader.read() == b"old"
    st = os.stat(mine)
    assert contents(mine) == contents(shm) and stat.S_IMODE(st.st_mode) == 0o600
    assert st.st_ino != old_ino and os.listdir(public) == ["out.bin"]


@pytest.mark.parametrize("umask, mode, expected", [(0, None, 0o600), (0o077, "0640", 0o640), (0o022, "0666", 0o666)])
def test_mode_is_exact_whatever_the_umask(umask, mode, expected, public, segment):
    address, _ = segment()
    out = os.path.join(public, "out.bin")
    r = run("read", address, "-o", out, *(["--mode", mode] if mode else []),
            prefix=["sh", "-c", f'umask {umask:o}; exec "$@"', "sh"])
    assert r.code == 0, r
    assert stat.S_IMODE(os.stat(out).st_mode) == expected and os.stat(out).st_uid == 0


def test_bad_mode_is_a_usage_error(public, segment):
    address, _ = segment()
    r = run("read", address, "-o", os.path.join(public, "x"), "--mode", "0999")
    assert r.code == 2 and r.err.startswith("shmctl: invalid mode '0999'") and os.listdir(public) == []


def test_the_segment_itself_is_never_file(public, segment, tmp_path):
    address, shm = segment()
    before = contents(shm)
    for force in ([], ["--force"]):
        r = run("read", address, "-o", shm, *force)
        assert (r.code, r.err) == (5, f"shmctl: write {shm}: it is the segment being read "
                                      "(write the copy somewhere else)\n")
    mapped = tmp_path / "db.bin"
    mapped.write_bytes(os.urandom(8192))
    alias = tmp_path / "alias"  # the same inode under another name
    os.link(mapped, alias)
    for out in (mapped, alias):
        r = run("read", f"mmap:{mapped}", "-o", out, "--force")
        assert (r.code, r.err) == (5, f"shmctl: write {out}: it is the segment being read "
                                      "(write the copy somewhere else)\n")
    assert contents(shm) == before and os.stat(mapped).st_nlink == 2
    assert sorted(os.listdir(tmp_path)) == ["alias", "db.bin"]


def test_root_in_a_directory_of_another_user(reachable, segment):
    """A new file there is fine (created exclusively, ours, 0600); their files are not ours."""
    from pathlib import Path
    address, shm = segment()
    theirs = Path(reachable) / "victimdir"
    theirs.mkdir()
    os.chown(theirs, SECOND_UID, SECOND_UID)
    out = theirs / "copy.bin"
    r = run("read", address, "-o", out)
    assert r.code == 0 and contents(out) == contents(shm)
    st = os.stat(out)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (0, 0o600) and os.listdir(theirs) == ["copy.bin"]
    planted = theirs / "planted"
    attacker_python(SECOND_UID, "import sys; open(sys.argv[1], 'wb').write(b'x')", planted)
    assert run("read", address, "-o", planted, "--force").code == 4 and contents(planted) == b"x"


def test_dash_is_stdout_and_no_file_named_dash(public, segment):
    address, shm = segment()
    r = subprocess.run([*shmctl_cmd(), "read", address, "-o", "-"], capture_output=True, cwd=public,
                       env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)), timeout=60)
    assert r.returncode == 0 and r.stdout == contents(shm) and os.listdir(public) == []


def test_a_missing_directory_is_not_a_missing_segment(public, segment):
    address, _ = segment()
    out = os.path.join(public, "no", "such")
    r = run("read", address, "-o", out)
    assert (r.code, r.err) == (2, f"shmctl: open {os.path.dirname(out)}: no such file or directory\n")


def test_a_full_disk_leaves_the_old_file_and_no_temp(public, segment):
    """RLIMIT_FSIZE makes the write fail with EFBIG half-way (Python ignores SIGXFSZ)."""
    address, _ = segment(size=1 << 20)
    mine = os.path.join(public, "out.bin")
    with open(mine, "wb") as f:
        f.write(b"old")
    r = run("read", address, "-o", mine, "--force", prefix=["prlimit", "--fsize=65536"])
    assert (r.code, r.err) == (1, f"shmctl: write {mine}: file too large\n")
    assert contents(mine) == b"old" and os.listdir(public) == ["out.bin"]


# --- during the copy: a large segment, and an event (the temp file appearing) to act on ---

BIG = 1 << 30  # sparse: costs no memory in /dev/shm, and takes a while to copy


def start_and_wait_for_temp(args, directory):
    """Start shmctl; return (process, temp name) once its temp file is in `directory`, or
    (process, None) if it finished first."""
    proc = subprocess.Popen([*shmctl_cmd(), *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = temps(directory)
        if found:
            return proc, found[0]
        time.sleep(0.001)
    return proc, None


def during_copy(args, directory, act, attempts=3):
    """Run shmctl and act(proc, temp) while it copies; retried if the copy won the race.
    Returns (exit code, stderr)."""
    for _attempt in range(attempts):
        proc, temp = start_and_wait_for_temp(args, directory)
        acted = False
        if temp is not None:
            try:
                act(proc, temp)
                acted = True
            except OSError:  # shmctl had already published: FILE is not where the act expects
                pass
        out, err = proc.communicate(timeout=60)
        if acted and proc.returncode != 0:
            return proc.returncode, err.decode()
        getattr(act, "undo", lambda: None)()
    pytest.fail("shmctl finished every copy before the test could act")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_the_copy_leaves_the_old_file_and_no_temp(signum, public, segment):
    address, _ = segment(size=BIG)
    mine = os.path.join(public, "out.bin")
    with open(mine, "wb") as f:
        f.write(b"old")
    seen = []

    def stop(proc, temp):
        seen.append(contents(mine))  # FILE is still whole (the old one) while the copy runs
        proc.send_signal(signum)
    stop.undo = lambda: write(mine, b"old")
    code, err = during_copy(["read", address, "-o", mine, "--force"], public, stop)
    name = signal.Signals(signum).name
    assert code == 128 + signum
    assert err == ("shmctl: interrupted\n" if signum == signal.SIGINT else f"shmctl: stopped by {name}\n")
    assert seen[-1] == b"old" and contents(mine) == b"old" and os.listdir(public) == ["out.bin"]


def test_a_signal_during_a_new_file_leaves_nothing(public, segment):
    address, _ = segment(size=BIG)
    out = os.path.join(public, "new.bin")

    def stop(proc, temp):
        seen.append(os.path.lexists(out))  # nobody sees a half FILE: there is none yet
        proc.send_signal(signal.SIGTERM)
    seen = []
    stop.undo = lambda: os.unlink(out)
    assert during_copy(["read", address, "-o", out], public, stop)[0] == 143
    assert seen[-1] is False and os.listdir(public) == []


def test_a_segment_that_shrinks_during_the_copy_is_a_short_read(public, segment):
    address, shm = segment(size=BIG)
    mine = os.path.join(public, "out.bin")
    with open(mine, "wb") as f:
        f.write(b"old")

    def shrink(proc, temp):
        os.truncate(shm, 4096)
    shrink.undo = lambda: (os.truncate(shm, BIG), write(mine, b"old"))
    code, err = during_copy(["read", address, "-o", mine, "--force"], public, shrink)
    prefix = f"shmctl: read posix:{address}: only "
    suffix = (f" of {BIG} bytes could be read: the segment shrank or was removed during the copy "
              f"({mine} was left as it was)\n")
    assert code == 5 and err.startswith(prefix) and err.endswith(suffix), err
    got = int(err[len(prefix):-len(suffix)])
    assert 4096 <= got < BIG
    assert contents(mine) == b"old" and os.listdir(public) == ["out.bin"]


@pytest.mark.parametrize("plant", ["symlink", "file"])
def test_file_planted_during_the_copy_is_never_clobbered(plant, public, victim, segment):
    """No --force: FILE appears (the attacker's) while shmctl copies; publishing must not
    replace it or write through it."""
    address, _ = segment(size=BIG)
    out = os.path.join(public, "out.bin")
    nobody = uid_of("nobody")

    def squat(proc, temp):
        if plant == "symlink":
            os.symlink(victim, out)
        else:
            with open(out, "wb") as f:
                f.write(b"theirs")
        os.chown(out, nobody, -1, follow_symlinks=False)
    squat.undo = lambda: os.path.lexists(out) and os.unlink(out)
    code, err = during_copy(["read", address, "-o", out], public, squat)
    assert (code, err) == (5, f"shmctl: write {out}: it was created by someone else during the copy "
                              "(nothing was written; choose another name)\n")
    assert contents(victim) == VICTIM and os.listdir(public) == ["out.bin"]
    assert os.lstat(out).st_uid == nobody
    assert (os.readlink(out) == str(victim)) if plant == "symlink" else contents(out) == b"theirs"


def test_file_swapped_for_a_symlink_during_a_forced_copy(public, victim, segment):
    """--force checks FILE again just before the rename."""
    address, _ = segment(size=BIG)
    out = os.path.join(public, "out.bin")
    with open(out, "wb") as f:
        f.write(b"old")

    def swap(proc, temp):
        os.unlink(out)
        os.symlink(victim, out)
        os.chown(out, uid_of("nobody"), -1, follow_symlinks=False)

    def undo():
        os.unlink(out)
        with open(out, "wb") as f:
            f.write(b"old")
    swap.undo = undo
    code, err = during_copy(["read", address, "-o", out, "--force"], public, swap)
    assert (code, err) == (5, f"shmctl: write {out}: it is a symbolic link {REFUSE_KIND}\n")
    assert contents(victim) == VICTIM and os.readlink(out) == str(victim) and os.listdir(public) == ["out.bin"]


# --- short reads to stdout: the pipe holds shmctl back until the test has truncated ---

@pytest.mark.parametrize("form", [[], ["--hexdump"]])
def test_a_short_read_to_stdout_ends_non_zero(form, segment):
    size = 8 << 20
    address, shm = segment(size=size)
    proc = subprocess.Popen([*shmctl_cmd(), "read", address, *form], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    first = proc.stdout.read(4096)  # shmctl is copying, and blocks once the pipe is full
    os.truncate(shm, 4096)
    rest = proc.stdout.read()
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 5
    prefix = f"shmctl: read posix:{address}: only "
    suffix = (f" of {size} bytes could be read: the segment shrank or was removed during the copy "
              "(the output is incomplete)\n")
    assert err.startswith(prefix) and err.endswith(suffix), err
    got = int(err[len(prefix):-len(suffix)])
    assert 4096 <= got < size
    if not form:
        assert len(first + rest) == got  # every byte read was written, and no more


def test_a_short_read_to_a_terminal_ends_non_zero(segment):
    """A character device takes write() from a mapping: the truncated pages are EFAULT there."""
    import tty
    size = 8 << 20
    address, shm = segment(size=size)
    master, slave = os.openpty()
    tty.setraw(slave)
    proc = subprocess.Popen([*shmctl_cmd(), "read", address, "--binary"], stdout=slave, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    os.close(slave)
    data = os.read(master, 4096)  # shmctl is writing, and blocks once the terminal's buffer is full
    os.truncate(shm, 4096)
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: shmctl closed the terminal
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 5
    prefix = f"shmctl: read posix:{address}: only "
    assert err.startswith(prefix) and err.endswith(" (the output is incomplete)\n"), err
    got = int(err[len(prefix):].split(" ", 1)[0])
    assert 4096 <= got < size and len(data) >= 4096

