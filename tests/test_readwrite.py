"""`shmctl read` and `shmctl write` on every kind: exact bytes, exact refusals."""
import hashlib
import os
import subprocess
import sys

import pytest

from conftest import HERE, needs_isolation, nobody_prefix, run
from kernel import ANSI, created, held_lock, lock_path, on_terminal, wait_until_waiting

pytestmark = needs_isolation


@pytest.fixture
def segments(tmp_path):
    """A 64 KiB segment of each kind that has a name, removed afterwards."""
    made = [created("sysv", "--size", "64K"), created("/shmctl-rw", "--size", "64K"),
            created(f"mmap:{tmp_path}/rw.bin", "--size", "64K")]
    yield made
    for address in made:
        run("rm", "--force", address)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_round_trip_every_kind(segments, tmp_path):
    payload = os.urandom(65536)
    src = tmp_path / "payload"
    src.write_bytes(payload)
    for address in segments:
        assert run("write", address, str(src)).code == 0
        out = run("read", address, binary=True)
        assert out.code == 0 and sha(out.out) == sha(payload), address
        to_file = tmp_path / "out.bin"
        assert run("read", address, "-o", str(to_file)).code == 0
        assert to_file.read_bytes() == payload and to_file.stat().st_mode & 0o777 == 0o600
        to_file.unlink()
    for address in segments:  # --force: the mmap file lies on disk (tmp_path), not on tmpfs
        r = run("rm", "--force", address)
        assert r.code == 0 and r.out == f"{address}\n"
    assert all(run("stat", a).code == 3 for a in segments)
    assert "shmctl-rw" not in os.listdir("/dev/shm")


def test_round_trip_anonymous_and_memfd_through_map_files(hold):
    h = hold({"kind": "anon", "size": 8192}, {"kind": "memfd", "name": "shmctl-rw", "size": 8192})
    payload = os.urandom(8192)
    for obj in h.objects:
        address = f"mmap:@{obj['inode']}"
        assert run("write", address, "-", input=payload).code == 0
        assert run("read", address, binary=True).out == payload
    r = run("read", f"mmap:@{h.objects[0]['inode']}", prefix=nobody_prefix())
    assert r.code in (3, 4) and r.out == ""  # the holder is root's: nobody cannot even see it


def test_ranges_and_exact_refusals(segments):
    sysv = segments[0]
    run("write", sysv, "--data", "hello, world", "--offset", "100")
    assert run("read", sysv, "--offset", "100", "--length", "5").out == "hello"
    assert run("read", sysv, "--offset", "65530", "--length", "6", binary=True).out == b"\0" * 6
    for args, message in ((("--offset", "65530", "--length", "7"), "7 bytes at offset 65530 pass the end (65536"),
                          (("--offset", "65537"), "offset 65537 is past the end (65536 bytes)")):
        r = run("read", sysv, *args)
        assert r.code == 5 and r.out == "" and message in r.err
    r = run("read", sysv, "--offset", "64K", binary=True)
    assert r.code == 0 and r.out == b""


def test_string_and_hexdump(segments):
    posix = segments[1]
    run("write", posix, "--hex", (b"text\0more").hex())
    assert run("read", posix, "--string").out == "text"
    dump = run("read", posix, "-x", "--length", "32").out.splitlines()
    assert dump[0] == "00000000  74 65 78 74 00 6d 6f 72  65 00 00 00 00 00 00 00  |text.more.......|"
    assert dump[1:] == ["00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
                        "00000020"]
    full = run("read", posix, "--hexdump").out.splitlines()
    assert full[-2:] == ["*", "00010000"]  # 64 KiB of zeros fold into one star
    reference = subprocess.run(["hexdump", "-C", "/dev/shm/shmctl-rw"], capture_output=True, text=True)
    if reference.returncode == 0:
        assert run("read", posix, "-x").out == reference.stdout


def test_a_terminal_gets_a_hexdump_a_pipe_gets_bytes(segments):
    run("write", segments[1], "--data", "\x01binary")
    screen = ANSI.sub("", on_terminal("read", segments[1], "--length", "16"))
    assert screen.startswith("00000000  01 62 69 6e")
    raw = ANSI.sub("", on_terminal("read", segments[1], "--length", "7", "--binary"))
    assert "\x01binary" in raw
    assert run("read", segments[1], "--length", "7", binary=True).out == b"\x01binary"


def test_write_sources(segments, tmp_path):
    mapped = segments[2]
    assert run("write", mapped, "--hex", "de ad be ef", "--offset", "4").code == 0
    assert run("write", mapped, "--hex", "0x0102").code == 0
    assert run("write", mapped, "--fill", "0xff", "--length", "2", "--offset", "8").code == 0
    assert run("write", mapped, "--fill", "A", "--length", "2", "--offset", "10").code == 0
    assert run("write", mapped, "--data", "hé", "--offset", "12").code == 0
    assert run("write", mapped, "-", "--offset", "15", input=b"piped").code == 0
    assert run("write", mapped, "--offset", "20", input=b"implicit").code == 0
    (tmp_path / "part").write_bytes(b"0123456789")
    assert run("write", mapped, str(tmp_path / "part"), "--length", "4", "--offset", "28").code == 0
    data = run("read", mapped, "--length", "32", binary=True).out
    assert data == b"\x01\x02\0\0\xde\xad\xbe\xef\xff\xffAAh\xc3\xa9pipedimplicit0123"


@pytest.mark.parametrize("args,code,message", [
    (("--hex", "xyz"), 2, "expected pairs of hex digits"), (("--fill", "300", "--length", "1"), 2, "a byte is 0-255"),
    (("--fill", "0"), 2, "--fill needs --length"), (("--data", "a", "--hex", "00"), 2, "both name what to write"),
    (("--data", "x", "--offset", "65536"), 5, "1 bytes would pass the end (65536 bytes)"),
    (("--fill", "1", "--length", "65537"), 5, "would pass the end"),
])
def test_write_refusals_leave_the_segment_unchanged(segments, args, code, message):
    for address in segments:
        before = run("read", address, binary=True).out
        r = run("write", address, *args)
        assert r.code == code and message in r.err and len(r.err.splitlines()) == 1, (address, r)
        assert run("read", address, binary=True).out == before


def test_overflowing_stdin_writes_what_fits_and_refuses_the_rest(segments):
    """Issue 13: a pipe streams, so an overflow is known only at the segment's end: what fits
    is written, exit 5 says exactly how much; --atomic keeps the all-or-nothing promise."""
    before = run("read", segments[1], binary=True).out
    payload = os.urandom(1000)
    r = run("write", segments[1], "-", "--offset", "65000", "--atomic", input=payload)
    assert r.code == 5 and "nothing written" in r.err
    assert run("read", segments[1], binary=True).out == before
    r = run("write", segments[1], "-", "--offset", "65000", input=payload)
    assert r.code == 5 and "wrote the first 536 bytes (up to the segment's end); the input has more" in r.err
    assert run("read", segments[1], "--offset", "65000", binary=True).out == payload[:536]


def test_grow(segments):
    sysv, posix, mapped = segments
    r = run("write", sysv, "--data", "x", "--offset", "65536", "--grow")
    assert r.code == 5 and "a SysV segment cannot grow" in r.err
    assert run("write", posix, "--data", "tail", "--offset", "65536", "--grow").code == 0
    assert os.stat("/dev/shm/shmctl-rw").st_size == 65540
    assert run("read", posix, "--offset", "65536").out == "tail"
    assert run("write", mapped, "-", "--grow", "--offset", "65536", input=b"z" * 5000).code == 0
    assert run("stat", mapped, "--json").json()["size"] == 65536 + 5000
    free = os.statvfs("/dev/shm").f_bavail * os.statvfs("/dev/shm").f_frsize
    r = run("write", posix, "--fill", "0", "--length", "1", "--offset", str(free + (1 << 20)), "--grow")
    assert r.code == 6 and "free" in r.err and os.stat("/dev/shm/shmctl-rw").st_size == 65540


def test_dry_run_writes_nothing(segments):
    r = run("write", segments[1], "--data", "nothing", "--dry-run")
    assert r.code == 0 and r.out == f"would write 7 bytes at offset 0 of {segments[1]} (65536 bytes)\n"
    assert run("read", segments[1], "--length", "7", binary=True).out == b"\0" * 7


def test_errors_name_what_failed():
    assert run("read", "sysv:2147483000").code == 3
    r = run("write", "/shmctl-none", "--data", "x")
    assert r.code == 3 and r.err == "shmctl: posix:/shmctl-none: no such object in /dev/shm " \
                                    "(see shmctl list --kind posix)\n"
    assert run("read", "mmap:/no/such").code == 3
    assert run("read", "mmap:/dev/null").code == 3  # devices are never segments


def test_permission_denied_as_another_user(segments):
    r = run("read", segments[1], prefix=nobody_prefix())
    assert r.code == 4 and r.err.startswith("shmctl: open posix:/shmctl-rw: Permission denied")
    r = run("write", segments[0], "--data", "x", prefix=nobody_prefix())
    assert r.code == 4 and "Permission denied" in r.err


def _racing_writers(address, count=6, size=4 << 20):
    """Writers of distinct bytes over the whole segment at once: with the lock, the result is
    one writer's bytes throughout; without it, a mixture."""
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    procs = [subprocess.Popen([sys.executable, "-m", "shmctl_cli", "write", address, "--fill", str(65 + i),
                               "--length", str(size)], env=env) for i in range(count)]
    assert [p.wait(60) for p in procs] == [0] * count


@pytest.mark.parametrize("kind", ["sysv", "posix"])
def test_concurrent_writes_never_interleave(kind):
    address = created("sysv" if kind == "sysv" else "/shmctl-racing", "--size", "4M")
    try:
        for _ in range(3):
            _racing_writers(address)
            data = run("read", address, binary=True).out
            assert len(set(data)) == 1, f"interleaved: {sorted(set(data))}"
    finally:
        run("rm", address)


def test_a_writer_waits_for_the_lock(segments):
    """A second shmctl writer waits for the write lock (held here as shmctl holds it), then
    writes as soon as it is let go."""
    posix = segments[1]
    lock = lock_path("/dev/shm/shmctl-rw")
    with held_lock(lock):
        writer = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "write", posix, "--data", "after"],
                                  env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
        wait_until_waiting(writer, lock)
        assert writer.poll() is None and run("read", posix, "--length", "5", binary=True).out == b"\0" * 5
    assert writer.wait(30) == 0 and run("read", posix, "--length", "5").out == "after"


def test_python_shared_memory_interop():
    """A segment of multiprocessing.shared_memory reads with shmctl, and shmctl's with it."""
    code = """
import sys
from multiprocessing import shared_memory, resource_tracker
if sys.argv[1] == "make":
    shm = shared_memory.SharedMemory("shmctl-py", create=True, size=4096)
    shm.buf[:6] = b"python"
else:
    shm = shared_memory.SharedMemory("shmctl-ours")
    print(bytes(shm.buf[:5]).decode())
resource_tracker.unregister(shm._name, "shared_memory")  # cpython#82300: do not unlink at exit
shm.close()
"""
    subprocess.run([sys.executable, "-c", code, "make"], check=True)
    try:
        assert run("read", "/shmctl-py", "--length", "6").out == "python"
        created("/shmctl-ours", "--size", "4K")
        run("write", "/shmctl-ours", "--data", "shmct")
        out = subprocess.run([sys.executable, "-c", code, "read"], capture_output=True, text=True, check=True)
        assert out.stdout.strip() == "shmct"
    finally:
        run("rm", "/shmctl-py", "/shmctl-ours", "--yes")
