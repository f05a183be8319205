"""`shmctl create` on the real kernel: every kind, every option, every refusal."""
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import needs_isolation, needs_root, nobody_prefix, run, run_in_process
from kernel import ipcs_m, listed

pytestmark = needs_isolation


@pytest.fixture
def sysctl():
    """Set shm sysctls of our private IPC namespace; restored after the test."""
    saved = {}

    def put(name, value):
        path = f"/proc/sys/kernel/{name}"
        saved.setdefault(path, open(path).read())
        with open(path, "w") as f:
            f.write(str(value))
    yield put
    for path, value in saved.items():
        with open(path, "w") as f:
            f.write(value)


def created(*args):
    r = run("create", *args)
    assert r.code == 0, r
    assert r.out.count("\n") == 1 and r.err == ""  # the address, and nothing else
    return r.out.strip()


def rm(address):  # --force: an mmap file on disk (tmp_path is not tmpfs) is not shared memory
    assert run("rm", "--force", address).code == 0


def test_sysv_private_keyed_and_ftok(tmp_path):
    private = created("sysv", "--size", "1M")
    keyed = created("sysv", "--key", "0x7e570010", "--size", "64K", "--mode", "0640")
    addr_keyed = created("sysv:key=0x7e570011", "--size", "4096")
    ftok = created(f"sysv:ftok={tmp_path},9", "--size", "4K")
    ftok2 = created("sysv", "--ftok", f"{tmp_path},10", "--size", "4K")
    try:
        rows = ipcs_m()
        for address in (private, keyed, addr_keyed, ftok, ftok2):
            assert address.startswith("sysv:") and int(address[5:]) in rows
        assert rows[int(private[5:])]["key"] == 0 and rows[int(private[5:])]["size"] == 1 << 20
        assert rows[int(keyed[5:])]["key"] == 0x7E570010 and rows[int(keyed[5:])]["perms"] == 0o640
        assert rows[int(addr_keyed[5:])]["key"] == 0x7E570011 and rows[int(addr_keyed[5:])]["perms"] == 0o600
        st = os.stat(tmp_path)
        expected = (9 << 24) | ((st.st_dev & 0xFF) << 16) | (st.st_ino & 0xFFFF)
        assert rows[int(ftok[5:])]["key"] == expected
    finally:
        for address in (private, keyed, addr_keyed, ftok, ftok2):
            rm(address)


def test_key_zero_is_ipc_private():
    a, b = created("sysv", "--key", "0", "--size", "4K"), created("sysv:key=0", "--size", "4K")
    try:
        assert a != b and listed()[a]["key"] == 0
    finally:
        rm(a), rm(b)


def test_posix_and_mmap_objects(tmp_path):
    posix = created("posix:/shmctl-create", "--size", "1.5K", "--mode", "0640")
    short = created("/shmctl-create2", "--size", "4096")
    path = tmp_path / "seg.bin"
    mapped = created(f"mmap:{path}", "--size", "64K", "--mode", "0604")
    try:
        assert posix == "posix:/shmctl-create" and short == "posix:/shmctl-create2" and mapped == f"mmap:{path}"
        st = os.stat("/dev/shm/shmctl-create")
        assert st.st_size == 1536 and st.st_mode & 0o777 == 0o640  # whatever the umask
        assert os.stat(path).st_size == 65536 and os.stat(path).st_mode & 0o777 == 0o604
    finally:
        rm(posix), rm(short), rm(mapped)
    assert not os.path.exists("/dev/shm/shmctl-create") and not path.exists()


def test_from_file_sets_contents_and_size(tmp_path):
    src = tmp_path / "init.bin"
    src.write_bytes(os.urandom(10000))
    posix = created("/shmctl-from", "--from", str(src))
    sysv = created("sysv", "--from", str(src), "--size", "16K")
    try:
        assert open("/dev/shm/shmctl-from", "rb").read() == src.read_bytes()
        r = run("read", sysv, "--length", "10000", binary=True)
        assert r.code == 0 and r.out == src.read_bytes()
    finally:
        rm(posix), rm(sysv)
    r = run("create", "/shmctl-from2", "--from", str(src), "--size", "100")
    assert r.code == 5 and "has 10000 bytes, more than --size 100" in r.err
    assert not os.path.exists("/dev/shm/shmctl-from2")
    r = run("create", "/shmctl-from3", "--from", str(tmp_path / "missing"))
    assert r.code == 2 and not os.path.exists("/dev/shm/shmctl-from3")  # a missing local file: usage
    piped = run("create", "/shmctl-from4", "--from", "-", "--size", "8", input=b"abcdefgh")
    try:
        assert piped.code == 0 and open("/dev/shm/shmctl-from4", "rb").read() == b"abcdefgh"
    finally:
        rm("/shmctl-from4")


def test_existing_is_never_touched_unless_asked(tmp_path):
    key = created("sysv:key=0x7e570020", "--size", "8K")
    posix = created("/shmctl-exist", "--size", "8K")
    path = tmp_path / "f"
    mapped = created(f"mmap:{path}", "--size", "8K")
    run("write", posix, "--data", "precious")
    try:
        for address in ("sysv:key=0x7e570020", "/shmctl-exist", f"mmap:{path}"):
            r = run("create", address, "--size", "4K")
            assert r.code == 5 and r.out == "" and "exists" in r.err
        r = run("create", "sysv:key=0x7e570020", "--size", "4K", "--exist-ok")
        assert r.code == 5 and "exists with 8192 bytes, not the 4096 asked (--larger-ok" in r.err
        assert run("create", "sysv:key=0x7e570020", "--size", "4K", "--exist-ok", "--larger-ok").out.strip() == key
        assert run("create", "sysv:key=0x7e570020", "--size", "8K", "--exist-ok").out.strip() == key
        r = run("create", "sysv:key=0x7e570020", "--size", "16K", "--exist-ok")
        assert r.code == 5 and "cannot grow" in r.err
        assert run("create", "/shmctl-exist", "--size", "4K", "--exist-ok", "--larger-ok").out.strip() == posix
        r = run("create", "/shmctl-exist", "--size", "16K", "--exist-ok")
        assert r.code == 5 and "--resize grows it" in r.err
        assert os.stat("/dev/shm/shmctl-exist").st_size == 8192
        assert run("create", "/shmctl-exist", "--size", "16K", "--resize").code == 0
        assert os.stat("/dev/shm/shmctl-exist").st_size == 16384
        r = run("create", "/shmctl-exist", "--size", "4K", "--resize")
        assert r.code == 5 and "would truncate it from 16384 to 4096 bytes" in r.err
        assert os.stat("/dev/shm/shmctl-exist").st_size == 16384
        assert run("create", "/shmctl-exist", "--size", "4K", "--resize", "--force").code == 0
        assert open("/dev/shm/shmctl-exist", "rb").read() == b"precious" + b"\0" * (4096 - 8)
        assert run("create", f"mmap:{path}", "--size", "32K", "--resize").code == 0
        assert path.stat().st_size == 32768
        r = run("create", "sysv:key=0x7e570020", "--size", "4K", "--resize")
        assert r.code == 2 and "cannot be resized" in r.err
    finally:
        rm(key), rm(posix), rm(mapped)


def test_fifty_racing_creators_one_wins():
    cmd = [sys.executable, "-m", "shmctl_cli", "create", "posix:/shmctl-race", "--size", "4K"]
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        with ThreadPoolExecutor(50) as pool:
            codes = list(pool.map(lambda _: subprocess.run(cmd, capture_output=True, env=env).returncode, range(50)))
        assert sorted(codes) == [0] + [5] * 49
    finally:
        rm("/shmctl-race")


@pytest.mark.parametrize("args,why", [
    (("sysv", "--size", "0"), "must be at least 1"), (("sysv", "--size", "-5"), "invalid size"),
    (("sysv", "--size", "1.3K"), "whole number"), (("sysv", "--size", "99999999E"), "too large"),
    (("sysv", "--size", "lots"), "invalid size"), (("sysv",), "--size is required"),
    (("/a/b", "--size", "1"), "may not contain '/'"), (("/..", "--size", "1"), "'..'"),
    (("/" + "n" * 256, "--size", "1"), "NAME_MAX"), (("/sem.x", "--size", "1"), "semaphores"),
    (("sysv:5", "--size", "1"), "the kernel picks the shmid"), (("/x", "--size", "1", "--key", "1"), "SysV"),
    (("/x", "--size", "1", "--hugetlb"), "SysV"), (("sysv", "--size", "1", "--huge-size", "2M"), "--hugetlb"),
    (("sysv", "--size", "1", "--hugetlb", "--huge-size", "3M"), "power of two"),
    (("sysv:key=1", "--key", "2", "--size", "1"), "give the key once"),
    (("sysv", "--size", "1", "--mode", "999"), "mode"), (("sysv", "--key", str(1 << 40), "--size", "1"), "32 bits"),
    (("sysv", "--ftok", "/tmp", "--size", "1"), "PATH,PROJ"),
])
def test_usage_errors(args, why):
    r = run_in_process("create", *args)
    assert r.code == 2 and r.out == "" and why in r.err and len(r.err.splitlines()) == 1


def test_limits_say_which_and_change_nothing(sysctl):
    before = ipcs_m()
    sysctl("shmmax", 65536)
    r = run("create", "sysv", "--size", "1M")
    assert r.code == 6 and r.err == ("shmctl: create sysv: 1048576 bytes is more than shmmax (65536) "
                                     "(shmctl limits set shmmax=1048576)\n")
    sysctl("shmmax", 1 << 30)
    in_use = sum(-(-s["size"] // 4096) for s in before.values())
    sysctl("shmall", in_use + 4)
    r = run("create", "sysv", "--size", "32K")
    assert r.code == 6 and "8 more pages would pass shmall" in r.err and "shmctl limits set shmall=" in r.err
    sysctl("shmall", 1 << 40)
    sysctl("shmmni", len(before))
    r = run("create", "sysv", "--size", "4K")
    assert r.code == 6 and f"all {len(before)} segments that shmmni allows exist" in r.err
    dry = run("create", "sysv", "--size", "4K", "--dry-run")
    assert dry.code == 6
    assert ipcs_m().keys() == before.keys()


def test_dry_run_plans_and_makes_nothing(sysctl):
    before = ipcs_m()
    r = run("create", "sysv", "--size", "8K", "--dry-run")
    assert r.code == 0 and "would create sysv (IPC_PRIVATE): 8192 bytes, mode 0600" in r.out
    assert "shmmax:" in r.out and "shmall:" in r.out and "shmmni:" in r.out
    r = run("create", "/shmctl-dry", "--size", "8K", "--dry-run")
    assert r.code == 0 and "would create posix:/shmctl-dry" in r.out and "/dev/shm:" in r.out
    assert not os.path.exists("/dev/shm/shmctl-dry") and ipcs_m().keys() == before.keys()


def test_tmpfs_too_small_is_refused_unless_forced(tmp_path):
    free = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    r = run("create", "/shmctl-huge", "--size", str(free + (1 << 20)))
    assert r.code == 6 and "SIGBUS" in r.err and not os.path.exists("/dev/shm/shmctl-huge")
    r = run("create", "/shmctl-huge", "--size", str(free + (1 << 20)), "--force")
    try:
        assert r.code == 0 and os.stat("/dev/shm/shmctl-huge").st_size == free + (1 << 20)
    finally:
        rm("/shmctl-huge")


@needs_root
def test_a_full_tmpfs_while_filling_removes_the_half_made_object(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "none", str(mnt)], check=True)
    try:
        src = tmp_path / "big.bin"
        src.write_bytes(os.urandom(256 << 10))
        r = run("create", f"mmap:{mnt}/seg", "--from", str(src), "--force")
        assert r.code == 6 and "No space left on device" in r.err
        assert os.listdir(mnt) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


@needs_root
def test_lock_pins_the_segment():
    address = created("sysv", "--size", "16K", "--lock")
    try:
        assert "locked" in listed()[address]["status"]
    finally:
        rm(address)


@needs_root
def test_lock_beyond_memlock_as_a_user():
    r = run("create", "sysv", "--size", "1M", "--lock", prefix=nobody_prefix("prlimit", "--memlock=65536:65536"))
    assert r.code == 6 and r.err == ("shmctl: create sysv: --lock needs 1048576 bytes of RLIMIT_MEMLOCK, which is "
                                     "65536 (raise ulimit -l, or run with CAP_IPC_LOCK)\n")


def hugepages(path="/proc/sys/vm/nr_hugepages"):
    return int(open(path).read())


def test_hugetlb_with_an_empty_pool():
    free = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages").read())
    resv = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/resv_hugepages").read())
    over = int(open("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_overcommit_hugepages").read())
    want = (free - resv + over + 1) * 2
    r = run("create", "sysv", "--hugetlb", "--huge-size", "2M", "--size", f"{want}M")
    assert r.code == 6 and f"needs {want // 2} huge pages of 2M, the pool has" in r.err
    assert "shmctl limits hugepages --size 2M" in r.err


@needs_root
@pytest.mark.machine_wide
def test_hugetlb_segment_from_the_pool(tmp_path):
    saved = hugepages()
    try:
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(str(saved + 2))
        if hugepages() < saved + 2:
            pytest.skip("the kernel could not allocate 2 huge pages here")
        address = created("sysv", "--hugetlb", "--size", "2M")
        try:
            # hugetlbfs has no write(): root's route through the segment's file gives way to the mapping
            payload = os.urandom(2 << 20)
            source = tmp_path / "payload"
            source.write_bytes(payload)
            assert run("write", address, source).code == 0
            assert run("read", address, binary=True).out == payload
            attach = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "attach", address, "--for", "20"],
                                      stderr=subprocess.PIPE, text=True,
                                      env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__))))
            assert "attached" in attach.stderr.readline()
            seg = listed()[address]
            assert "hugetlb" in seg["status"]
            attach.send_signal(2)
            assert attach.wait(10) == 130
        finally:
            rm(address)
    finally:
        with open("/proc/sys/vm/nr_hugepages", "w") as f:
            f.write(str(saved))
    assert hugepages() == saved

