"""Issue 8, as an attacker or a fault would try it on `create` (and on signals generally):
squatted names and keys, segments given away, hard links, lost races, half-made objects,
signals mid-fill, a stdout that cannot take the address."""
import os
import signal
import subprocess
import sys

import pytest

from conftest import ENV, ROOT, SECOND_UID, SHMCTL, attacker_python, needs_isolation, run
from kernel import fd_links, wait_for

pytestmark = [needs_isolation, pytest.mark.skipif(not ROOT, reason="needs root to play other users")]

ATTACKER_SYSV = """
import ctypes, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
key, size, give_to = (int(a, 0) for a in sys.argv[1:4])
mode = 0o600
shmid = libc.shmget(key - (1 << 32) if key > 0x7fffffff else key, size, 0o1000 | 0o2000 | mode)
assert shmid >= 0, ctypes.get_errno()
if give_to >= 0:  # IPC_SET: the owner may hand the segment to anyone; its cuid stays ours
    buf = (ctypes.c_char * 128)()
    assert libc.shmctl(shmid, 2, buf) == 0
    ctypes.c_uint32.from_buffer(buf, 4).value = give_to
    assert libc.shmctl(shmid, 1, buf) == 0
print(shmid)
"""

ATTACKER_POSIX = """
import os, sys
fd = os.open("/dev/shm/" + sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
os.fchmod(fd, int(sys.argv[3], 8))
os.ftruncate(fd, int(sys.argv[2]))
os.write(fd, b"attacker")
"""


@pytest.fixture
def sysv_ids():
    made = []
    yield made
    for shmid in made:
        subprocess.run(["ipcrm", "-m", str(shmid)], capture_output=True)


@pytest.fixture
def shm_names(cleanup_shm):
    return cleanup_shm[0]


def sysv_row(key):
    with open("/proc/sysvipc/shm") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if int(fields[0]) & 0xFFFFFFFF == key:
                return {"shmid": int(fields[1]), "perms": int(fields[2], 8), "uid": int(fields[7]),
                        "cuid": int(fields[9])}
    return None


# --- adopting what someone else made ---

def test_a_squatted_posix_name_is_not_adopted(unique, shm_names):
    shm_names.append(unique.name)
    attacker_python(SECOND_UID, ATTACKER_POSIX, unique.name, 4096, "666")
    r = run("create", f"/{unique.name}", "--size", "4K", "--exist-ok")
    assert r.code == 5 and r.out == ""
    assert r.err == (f"shmctl: posix:/{unique.name}: exists but is not what was asked: owned by uid {SECOND_UID}, "
                     "not root (uid 0); mode 0666 is wider than the 0600 asked (shmctl adopts only an object of "
                     "the expected owner, mode and size; remove it, or give --owner/--mode to match)\n")
    st = os.stat(f"/dev/shm/{unique.name}")
    assert (st.st_uid, st.st_mode & 0o777) == (SECOND_UID, 0o666)
    assert open(f"/dev/shm/{unique.name}", "rb").read(8) == b"attacker"
    # --resize is adoption too: never resize a stranger's object
    r = run("create", f"/{unique.name}", "--size", "8K", "--resize")
    assert r.code == 5 and "owned by uid 4242" in r.err and os.stat(f"/dev/shm/{unique.name}").st_size == 4096
    # the owner it must have can be named: then it is adopted (the mode is still checked)
    r = run("create", f"/{unique.name}", "--size", "4K", "--exist-ok", "--owner", str(SECOND_UID), "--mode", "0666")
    assert r.code == 0 and r.out == f"posix:/{unique.name}\n"


def test_a_squatted_sysv_key_is_not_adopted_even_when_given_away(unique, sysv_ids):
    sysv_ids.append(int(attacker_python(SECOND_UID, ATTACKER_SYSV, hex(unique.key), 4096, -1)))
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--exist-ok")
    assert r.code == 5 and f"owned by uid {SECOND_UID}, not root (uid 0)" in r.err
    given = unique.key + 1
    sysv_ids.append(int(attacker_python(SECOND_UID, ATTACKER_SYSV, hex(given), 4096, 0)))
    assert sysv_row(given)["uid"] == 0 and sysv_row(given)["cuid"] == SECOND_UID
    r = run("create", f"sysv:key={given:#x}", "--size", "4K", "--exist-ok")
    assert r.code == 5 and r.err.startswith(f"shmctl: create sysv:key={given:#010x}: sysv:")
    assert f"created by uid {SECOND_UID}, not root (uid 0)" in r.err


def test_mode_owner_and_size_must_match(unique, shm_names, sysv_ids):
    shm_names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K", "--mode", "0640").code == 0
    r = run("create", f"/{unique.name}", "--size", "4K", "--exist-ok")
    assert r.code == 5 and "mode 0640 is wider than the 0600 asked" in r.err
    assert run("create", f"/{unique.name}", "--size", "4K", "--exist-ok", "--mode", "0644").code == 0
    r = run("create", f"/{unique.name}", "--size", "2K", "--exist-ok", "--mode", "0640")
    assert r.code == 5 and "exists with 4096 bytes, not the 2048 asked (--larger-ok uses a larger one" in r.err
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--mode", "0640")
    sysv_ids.append(int(r.out.strip().split(":")[1]))
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--exist-ok")
    assert r.code == 5 and "mode 0640 is wider than the 0600 asked" in r.err
    ok = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--exist-ok", "--mode", "0660")
    assert ok.out == f"sysv:{sysv_ids[0]}\n"


def test_a_hard_link_is_not_adopted(unique, shm_names):
    shm_names += [unique.name, unique.name + "-link"]
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    os.link(f"/dev/shm/{unique.name}", f"/dev/shm/{unique.name}-link")
    r = run("create", f"/{unique.name}-link", "--size", "4K", "--exist-ok")
    assert r.code == 5 and "it has 2 hard links, so another object may answer to this name" in r.err


def test_owner_of_new_segments(unique, shm_names, sysv_ids):
    shm_names.append(unique.name)
    r = run("create", f"/{unique.name}", "--size", "4K", "--owner", str(SECOND_UID))
    assert r.code == 0 and os.stat(f"/dev/shm/{unique.name}").st_uid == SECOND_UID
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--owner", str(SECOND_UID), "--mode", "0640")
    sysv_ids.append(int(r.out.strip().split(":")[1]))
    row = sysv_row(unique.key)
    assert (row["uid"], row["perms"] & 0o777) == (SECOND_UID, 0o640)
    r = run("create", f"/{unique.name}", "--size", "4K", "--owner", "no-such-user-xyz")
    assert r.code == 2 and "unknown user 'no-such-user-xyz'" in r.err


def test_exist_ok_with_from_never_exits_0_having_written_nothing(unique, shm_names, sysv_ids, tmp_path):
    shm_names.append(unique.name)
    seed = tmp_path / "seed"
    seed.write_bytes(b"seed data")
    r = run("create", f"/{unique.name}", "--size", "4K", "--exist-ok", "--from", str(seed))
    assert r.code == 0 and open(f"/dev/shm/{unique.name}", "rb").read(9) == b"seed data"
    run("write", f"/{unique.name}", "--data", "live data")
    r = run("create", f"/{unique.name}", "--size", "4K", "--exist-ok", "--from", str(seed))
    assert r.code == 5 and r.out == ""
    assert r.err == (f"shmctl: posix:/{unique.name}: already exists (4096 bytes): --from is not written into an "
                     f"existing object (shmctl write posix:/{unique.name} FILE writes into it)\n")
    assert open(f"/dev/shm/{unique.name}", "rb").read(9) == b"live data"
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--from", str(seed))
    sysv_ids.append(int(r.out.strip().split(":")[1]))
    r = run("create", f"sysv:key={unique.key:#x}", "--size", "4K", "--exist-ok", "--from", str(seed))
    assert r.code == 5 and "--from is not written into an existing segment" in r.err


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_losing_the_race_under_exist_ok_adopts_the_winner(kind, unique, shm_names, sysv_ids):
    address = f"/{unique.name}" if kind == "posix" else f"sysv:key={unique.key:#x}"
    shm_names.append(unique.name)
    procs = [subprocess.Popen([*SHMCTL, "create", address, "--size", "64K", "--exist-ok"], env=ENV,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(16)]
    results = [(p.wait(60), p.stdout.read(), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close(), p.stderr.close()
    if kind == "sysv" and sysv_row(unique.key):
        sysv_ids.append(sysv_row(unique.key)["shmid"])
    assert {code for code, _, _ in results} == {0}, results
    assert len({out for _, out, _ in results}) == 1


# --- half-made objects and signals ---

def unnamed_file_open(pid):
    """The O_TMPFILE file a create is filling shows in its fds as /dev/shm/#INODE (deleted)."""
    return any(link.startswith("/dev/shm/#") for link in fd_links(pid))


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "fifo"
    os.mkfifo(path)
    return path


def start_create(address, fifo, *extra):
    proc = subprocess.Popen([*SHMCTL, "create", address, "--size", "1M", "--from", str(fifo), *extra], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    writer = open(fifo, "wb")  # shmctl opened its end
    writer.write(b"x" * 4096)
    writer.flush()
    return proc, writer


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT, signal.SIGKILL])
def test_a_posix_object_is_published_only_when_whole(signum, unique, shm_names, fifo):
    shm_names.append(unique.name)
    proc, writer = start_create(f"/{unique.name}", fifo)
    wait_for(lambda: unnamed_file_open(proc.pid), "the unnamed file being filled")
    assert unique.name not in os.listdir("/dev/shm")  # nobody can see it half-filled
    proc.send_signal(signum)
    code = proc.wait(30)
    writer.close()
    assert code == (-signum if signum == signal.SIGKILL else 128 + signum)
    assert unique.name not in os.listdir("/dev/shm")
    if signum != signal.SIGKILL:
        stop = {signal.SIGINT: "interrupted"}.get(signum, f"stopped by {signal.Signals(signum).name}")
        assert proc.stderr.read() == f"shmctl: {stop}\n"
    proc.stdout.close(), proc.stderr.close()


def test_a_whole_posix_object_appears_at_once(unique, shm_names, fifo):
    shm_names.append(unique.name)
    proc, writer = start_create(f"/{unique.name}", fifo)
    wait_for(lambda: unnamed_file_open(proc.pid), "the unnamed file being filled")
    writer.write(b"y" * ((1 << 20) - 4096))
    writer.close()
    assert proc.wait(30) == 0 and proc.stdout.read() == f"posix:/{unique.name}\n"
    data = open(f"/dev/shm/{unique.name}", "rb").read()
    assert data == b"x" * 4096 + b"y" * ((1 << 20) - 4096)
    assert os.stat(f"/dev/shm/{unique.name}").st_mode & 0o777 == 0o600
    proc.stdout.close(), proc.stderr.close()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_sysv_segment_being_filled_is_private_and_removed_on_a_signal(signum, unique, fifo, sysv_ids):
    proc, writer = start_create(f"sysv:key={unique.key:#x}", fifo, "--mode", "0644")
    row = wait_for(lambda: sysv_row(unique.key), "the segment")
    sysv_ids.append(row["shmid"])
    assert row["perms"] & 0o777 == 0o600  # the mode asked for comes only when it is whole
    proc.send_signal(signum)
    assert proc.wait(30) == 128 + signum
    writer.close()
    assert sysv_row(unique.key) is None
    proc.stdout.close(), proc.stderr.close()


def test_sigkill_leaves_a_private_sysv_segment(unique, fifo, sysv_ids):
    """What the README says SIGKILL can leave for SysV: the half-filled segment, mode 0600,
    an orphan that `list --orphans` shows and `rm --orphans` removes."""
    proc, writer = start_create(f"sysv:key={unique.key:#x}", fifo, "--mode", "0644")
    row = wait_for(lambda: sysv_row(unique.key), "the segment")
    sysv_ids.append(row["shmid"])
    proc.kill()
    proc.wait(30)
    writer.close()
    assert sysv_row(unique.key)["perms"] & 0o777 == 0o600
    orphans = run("list", "--orphans", "--kind", "sysv", "--json").json()["segments"]
    assert f"sysv:{row['shmid']}" in [s["address"] for s in orphans]
    proc.stdout.close(), proc.stderr.close()


def test_write_stopped_by_a_signal_writes_nothing(unique, shm_names):
    shm_names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    proc = subprocess.Popen([*SHMCTL, "write", f"/{unique.name}", "-"], env=ENV, stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    proc.stdin.write("partial")
    proc.stdin.flush()
    wait_for(lambda: f"/dev/shm/{unique.name}" in fd_links(proc.pid), "write to open the segment")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 143 and proc.stderr.read() == "shmctl: stopped by SIGTERM\n"
    proc.stdin.close(), proc.stderr.close()
    assert open(f"/dev/shm/{unique.name}", "rb").read() == b"\0" * 4096


# --- the address that cannot be printed ---

@pytest.mark.parametrize("stdout", ["closed", "full", "broken pipe"])
@pytest.mark.parametrize("kind", ["posix", "sysv", "mmap"])
def test_create_without_a_way_to_print_the_address_removes_it(stdout, kind, unique, shm_names, tmp_path):
    shm_names.append(unique.name)
    address = {"posix": f"/{unique.name}", "sysv": f"sysv:key={unique.key:#x}",
               "mmap": f"mmap:{tmp_path}/seg"}[kind]
    argv = [*SHMCTL, "create", address, "--size", "4K"]
    if stdout == "closed":
        proc = subprocess.run(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              pass_fds=(), preexec_fn=lambda: os.close(1))
    elif stdout == "full":
        with open("/dev/full", "w") as full:
            proc = subprocess.run(argv, env=ENV, stdout=full, stderr=subprocess.PIPE, text=True)
    else:
        read_end, write_end = os.pipe()
        os.close(read_end)
        proc = subprocess.run(argv, env=ENV, stdout=write_end, stderr=subprocess.PIPE, text=True)
        os.close(write_end)
    why = {"closed": "Bad file descriptor", "full": "No space left on device", "broken pipe": "Broken pipe"}[stdout]
    assert proc.returncode == 1
    assert proc.stderr.endswith(f": cannot write the address to stdout: {why}; removed it again: the caller "
                                "could never learn its address\n") and proc.stderr.count("\n") == 1
    assert unique.name not in os.listdir("/dev/shm") and sysv_row(unique.key) is None
    assert not os.path.exists(tmp_path / "seg")


def test_an_adopted_segment_is_left_alone_when_stdout_fails(unique, shm_names):
    shm_names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*SHMCTL, "create", f"/{unique.name}", "--size", "4K", "--exist-ok"], env=ENV,
                              stdout=full, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 1 and "the existing segment is left as it was" in proc.stderr
    assert unique.name in os.listdir("/dev/shm")


def test_closed_stdout_never_lands_in_a_segment(unique, shm_names):
    """With fd 1 closed, the segment opened next would get number 1: `read` must not write
    into it, and list must say it could not write."""
    shm_names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "16").code == 0
    for args in (["read", f"/{unique.name}"], ["list"], ["write", f"/{unique.name}", "--data", "abc"]):
        proc = subprocess.run([*SHMCTL, *args], env=ENV, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.close(1))
        if args[0] == "write":
            assert proc.returncode == 0
        else:
            assert proc.returncode == 1 and proc.stderr.startswith("shmctl: ")
            assert "bad file descriptor" in proc.stderr.lower() and "Traceback" not in proc.stderr
    assert open(f"/dev/shm/{unique.name}", "rb").read() == b"abc" + b"\0" * 13


def test_overcommit_is_for_files_only():
    r = run("create", "sysv", "--size", "4K", "--overcommit")
    assert r.code == 2 and r.err == ("shmctl: create sysv: --overcommit applies to files on tmpfs and hugetlbfs "
                                     "(SysV segments are bounded by shmmax and shmall instead)\n")


def test_attach_kills_a_command_that_ignores_the_stop_signal(unique, shm_names):
    """No wait without a bound: the first SIGTERM is passed on, the second kills the command."""
    shm_names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    stubborn = ("import signal, time\n"
                "signal.signal(signal.SIGTERM, lambda *a: print('ignored', flush=True))\n"
                "print('ready', flush=True)\nwhile True: time.sleep(3600)\n")
    proc = subprocess.Popen([*SHMCTL, "attach", f"/{unique.name}", "--", sys.executable, "-c", stubborn], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        assert proc.stdout.readline() == "ignored\n"  # passed on, and the command went on
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGKILL
        assert proc.stderr.read().splitlines()[-1] == f"shmctl: detached posix:/{unique.name}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # shmctl and its command: nothing outlives the test
            proc.wait()
        proc.stdout.close(), proc.stderr.close()
