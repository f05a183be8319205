"""Issue 13: data moves in bounded memory, whatever its size. `write -` from a pipe, `read` to a
pipe or a file and `create --from -` of 256 MiB each peak below 64 MiB of RSS (the child's own
figure: getrusage(RUSAGE_CHILDREN) in a fresh wrapper process whose only child is shmctl);
a pipe longer than the segment is written up to its end and the rest refused with the exact
count (or, with --atomic, nothing written and nothing left); `create --from -` stopped midway
leaves no name and no inode behind."""
import hashlib
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ENV, SECOND_UID, SHMCTL, run, run_as

MiB = 1 << 20
BIG = 256 * MiB
RSS_LIMIT = 64 * MiB

# the wrapper: runs argv with stdin/stdout as given; writes its exit code and peak RSS (bytes) to fd argv[1]
MEASURE = ("import os, resource, subprocess, sys\n"
           "code = subprocess.call(sys.argv[2:])\n"
           "usage = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
           "os.write(int(sys.argv[1]), f'{code} {usage.ru_maxrss * 1024} {usage.ru_minflt}'.encode())\n")


def measured(argv, stdin=None, stdout=subprocess.DEVNULL, faults=False):
    """(exit code, peak RSS in bytes, stderr) of shmctl ARGV run as the only child of a fresh
    wrapper; with faults, (exit code, minor page faults, stderr)."""
    report_r, report_w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-c", MEASURE, str(report_w), *SHMCTL, *map(str, argv)], stdin=stdin,
                            stdout=stdout, stderr=subprocess.PIPE, env=ENV, pass_fds=(report_w,))
    os.close(report_w)
    err = proc.communicate(timeout=120)[1].decode()
    with os.fdopen(report_r, "rb") as report:
        code, rss, minflt = map(int, report.read().split())
    return code, minflt if faults else rss, err


@pytest.fixture(scope="module")
def big_source(tmp_path_factory):
    """256 MiB that no two MiB of are alike, on disk, and its sha256."""
    path = tmp_path_factory.mktemp("streaming") / "source"
    digest = hashlib.sha256()
    block = os.urandom(MiB)
    with open(path, "wb") as f:
        for i in range(BIG // MiB):
            chunk = i.to_bytes(8, "little") + block[8:]
            f.write(chunk)
            digest.update(chunk)
    return path, digest.hexdigest()


def feeder(path):
    """`cat FILE`, its stdout a pipe to give shmctl as stdin."""
    return subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)


def sha_of(address, *args):
    out = run("read", address, *args, binary=True, timeout=120).out
    return hashlib.sha256(out).hexdigest()


@pytest.fixture
def big_posix(unique, cleanup_shm):
    cleanup_shm[0].append(unique.name)
    assert run("create", f"posix:/{unique.name}", "--size", str(BIG)).code == 0
    return f"posix:/{unique.name}"


@pytest.fixture
def big_sysv(cleanup_shm):
    r = run("create", "sysv", "--size", str(BIG))
    assert r.code == 0, r
    address = r.out.strip()
    cleanup_shm[1].append(int(address.split(":")[1]))
    return address


def used_bytes(path="/dev/shm"):
    st = os.statvfs(path)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


# --- peak RSS (a test, not a timing) ---

@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_write_from_a_pipe_and_read_stay_below_64_mib(kind, big_source, request):
    address = request.getfixturevalue(f"big_{kind}")
    path, digest = big_source
    cat = feeder(path)
    code, rss, err = measured(["write", address, "-"], stdin=cat.stdout)
    cat.stdout.close()
    assert cat.wait() == 0 and code == 0, err
    assert rss < RSS_LIMIT, f"write - peaked at {rss >> 20} MiB"

    reader = subprocess.Popen([sys.executable, "-c", "import hashlib, sys; h = hashlib.sha256()\n"
                               "for b in iter(lambda: sys.stdin.buffer.read(1 << 20), b''): h.update(b)\n"
                               "print(h.hexdigest())"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    code, rss, err = measured(["read", address], stdout=reader.stdin)
    reader.stdin.close()
    assert code == 0, err
    assert reader.stdout.read().decode().strip() == digest  # the bytes went through whole
    reader.wait()
    assert rss < RSS_LIMIT, f"read to a pipe peaked at {rss >> 20} MiB"


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_read_to_a_file_and_write_from_a_file_stay_below_64_mib(kind, big_source, request, tmp_path):
    address = request.getfixturevalue(f"big_{kind}")
    path, digest = big_source
    code, rss, err = measured(["write", address, path])
    assert code == 0, err
    assert rss < RSS_LIMIT, f"write FILE peaked at {rss >> 20} MiB"
    copy = tmp_path / "copy"
    code, rss, err = measured(["read", address, "-o", copy])
    assert code == 0, err
    assert rss < RSS_LIMIT, f"read -o peaked at {rss >> 20} MiB"
    digest_of_copy = hashlib.sha256()
    with open(copy, "rb") as f:
        for block in iter(lambda: f.read(MiB), b""):
            digest_of_copy.update(block)
    assert digest_of_copy.hexdigest() == digest
    assert sha_of(address) == digest


def test_create_from_a_pipe_stays_below_64_mib(big_source, unique, cleanup_shm):
    path, digest = big_source
    cleanup_shm[0].append(unique.name)
    cat = feeder(path)
    code, rss, err = measured(["create", f"posix:/{unique.name}", "--size", str(BIG), "--from", "-"],
                              stdin=cat.stdout)
    cat.stdout.close()
    assert cat.wait() == 0 and code == 0, err
    assert rss < RSS_LIMIT, f"create --from - peaked at {rss >> 20} MiB"
    assert sha_of(f"posix:/{unique.name}") == digest


# --- a pipe longer than the segment ---

@pytest.fixture
def segment_16m(unique, cleanup_shm):
    """16 MiB of 0xee: more than the 8 MiB gathered before writing, so the rest streams."""
    cleanup_shm[0].append(unique.name)
    address = f"posix:/{unique.name}"
    assert run("create", address, "--size", "16M").code == 0
    assert run("write", address, "--fill", "0xee", "--length", "16M").code == 0
    return address


def test_overflow_streams_then_exits_5_with_the_exact_count(segment_16m):
    payload = os.urandom(20 * MiB)
    r = run("write", segment_16m, "-", input=payload)
    assert r.code == 5
    assert r.err == (f"shmctl: write {segment_16m}: wrote the first {16 * MiB} bytes (the whole segment); the input "
                     "has more: refused (add --grow, or --atomic to change nothing in that case)\n")
    assert run("read", segment_16m, binary=True).out == payload[:16 * MiB]
    r = run("write", segment_16m, "-", "--offset", "100", input=payload)
    assert r.code == 5 and f"wrote the first {16 * MiB - 100} bytes (up to the segment's end)" in r.err


def test_atomic_overflow_changes_nothing_and_leaves_no_temp_file(segment_16m):
    before_names, before_used = sorted(os.listdir("/dev/shm")), used_bytes()
    r = run("write", segment_16m, "-", "--atomic", input=os.urandom(20 * MiB))
    assert r.code == 5 and len(r.err.splitlines()) == 1
    assert "the input has more than the 16777216 bytes up to the segment's end: nothing written" in r.err
    assert run("read", segment_16m, binary=True).out == b"\xee" * (16 * MiB)
    assert sorted(os.listdir("/dev/shm")) == before_names and used_bytes() == before_used


def test_atomic_that_fits_is_written_whole(segment_16m):
    payload = os.urandom(12 * MiB)
    assert run("write", segment_16m, "-", "--atomic", input=payload).code == 0
    assert run("read", segment_16m, binary=True).out == payload + b"\xee" * (4 * MiB)


@pytest.mark.parametrize("limit", [str(10 * MiB), "1"])
def test_length_caps_a_pipe_without_an_overflow(segment_16m, limit):
    payload = os.urandom(20 * MiB)
    assert run("write", segment_16m, "-", "--length", limit, input=payload).code == 0
    n = int(limit)
    assert run("read", segment_16m, binary=True).out == payload[:n] + b"\xee" * (16 * MiB - n)


def test_dry_run_counts_a_pipe_and_writes_nothing(segment_16m):
    r = run("write", segment_16m, "-", "--dry-run", input=os.urandom(10 * MiB))
    assert r.code == 0 and f"would write {10 * MiB} bytes at offset 0" in r.out
    r = run("write", segment_16m, "-", "--dry-run", input=os.urandom(17 * MiB))
    assert r.code == 5 and "nothing written" in r.err
    assert run("read", segment_16m, binary=True).out == b"\xee" * (16 * MiB)


def test_grow_from_a_pipe_is_staged_and_takes_it_all(segment_16m, unique):
    payload = os.urandom(20 * MiB)
    before = sorted(os.listdir("/dev/shm"))
    assert run("write", segment_16m, "-", "--grow", "--offset", "1M", input=payload).code == 0
    assert os.stat(f"/dev/shm/{unique.name}").st_size == 21 * MiB
    assert run("read", segment_16m, "--offset", "1M", binary=True).out == payload
    assert sorted(os.listdir("/dev/shm")) == before


# --- short input, SysV from a file ---

@pytest.mark.parametrize("size", [5, 9 * MiB])  # within the first buffer, and past it (streamed)
def test_short_input_writes_what_came(segment_16m, size):
    payload = os.urandom(size)
    assert run("write", segment_16m, "-", input=payload).code == 0
    assert run("read", segment_16m, binary=True).out == payload + b"\xee" * (16 * MiB - size)


def test_sysv_write_from_a_file_exact_bytes(tmp_path, cleanup_shm):
    r = run("create", "sysv", "--size", "3M")
    address = r.out.strip()
    cleanup_shm[1].append(int(address.split(":")[1]))
    source = tmp_path / "src"
    payload = os.urandom(3 * MiB - 4095)  # not a whole number of pages: the tail stays zero
    source.write_bytes(payload)
    assert run("write", address, source, "--offset", "7").code == 0
    assert run("read", address, binary=True).out == b"\0" * 7 + payload + b"\0" * 4088
    piped = os.urandom(2 * MiB + 3)
    assert run("write", address, "-", input=piped).code == 0
    assert run("read", address, "--length", str(len(piped)), binary=True).out == piped
    assert run("write", address, "-", input=os.urandom(4 * MiB)).code == 5


def test_sysv_write_as_root_goes_through_the_segment_file(big_source, big_sysv):
    """Root writes a SysV segment through its shmem file (our own attachment's map_files entry),
    not by storing into the mapping: the writer never faults the segment's 65536 pages in."""
    path, digest = big_source
    code, minflt, err = measured(["write", big_sysv, path], faults=True)
    assert code == 0, err
    assert minflt < (BIG >> 12) // 4, f"{minflt} page faults: the segment was written through its mapping"
    cat = feeder(path)  # a pipe takes the same route: splice into the file
    code, minflt, err = measured(["write", big_sysv, "-"], stdin=cat.stdout, faults=True)
    cat.stdout.close()
    assert cat.wait() == 0 and code == 0, err
    assert minflt < (BIG >> 12) // 4, f"{minflt} page faults: the pipe went through the mapping"
    assert sha_of(big_sysv) == digest


def test_sysv_write_under_a_file_size_limit_goes_through_the_mapping(tmp_path, cleanup_shm):
    """RLIMIT_FSIZE (ulimit -f, systemd's LimitFSIZE) holds writes to files, not stores into a
    mapping: a SysV write under it is whole, as it always was (no EFBIG half-way)."""
    r = run("create", "sysv", "--size", "3M")
    address = r.out.strip()
    cleanup_shm[1].append(int(address.split(":")[1]))
    source = tmp_path / "src"
    payload = os.urandom(3 * MiB)
    source.write_bytes(payload)
    limited = ("prlimit", f"--fsize={MiB}")
    assert run("write", address, source, prefix=limited).code == 0
    assert run("read", address, binary=True).out == payload
    piped = os.urandom(3 * MiB)
    assert run("write", address, "-", input=piped, prefix=limited).code == 0
    assert run("read", address, binary=True).out == piped


def test_sysv_write_as_another_user_goes_through_the_mapping(unique, cleanup_shm):
    """Without CAP_SYS_ADMIN map_files cannot be opened: the same bytes go in through the mapping."""
    r = run_as(SECOND_UID, "create", "sysv", "--size", "3M")
    assert r.code == 0, r
    address = r.out.strip()
    cleanup_shm[1].append(int(address.split(":")[1]))
    cleanup_shm[0].append(unique.name)  # the source: a file the other user can reach
    source = f"/dev/shm/{unique.name}"
    payload = os.urandom(3 * MiB - 4095)
    with open(source, "xb") as f:
        f.write(payload)
    os.chmod(source, 0o644)
    r = run_as(SECOND_UID, "write", address, source, "--offset", "5")
    assert r.code == 0, r
    assert run("read", address, binary=True).out == b"\0" * 5 + payload + b"\0" * 4090
    piped = os.urandom(2 * MiB + 3)
    assert run_as(SECOND_UID, "write", address, "-", input=piped).code == 0
    assert run("read", address, "--length", str(len(piped)), binary=True).out == piped


def test_string_stops_at_the_first_nul_without_reading_further(segment_16m):
    assert run("write", segment_16m, "--hex", "68656c6c6f 00 776f726c64").code == 0  # hello NUL world
    assert run("read", segment_16m, "--string", binary=True).out == b"hello"


# --- create --from - interrupted ---

def test_create_from_a_pipe_stopped_midway_leaves_nothing(unique, cleanup_shm):
    cleanup_shm[0].append(unique.name)
    names, used = sorted(os.listdir("/dev/shm")), used_bytes()
    read_end, write_end = os.pipe()
    proc = subprocess.Popen([*SHMCTL, "create", f"posix:/{unique.name}", "--size", "64M", "--from", "-"],
                            stdin=read_end, stderr=subprocess.PIPE, env=ENV)
    os.close(read_end)
    try:
        os.write(write_end, os.urandom(16 * MiB))  # blocks until shmctl has taken most of it
        deadline = time.monotonic() + 30
        while used_bytes() < used + 8 * MiB:  # the unnamed file is filling
            assert time.monotonic() < deadline, "shmctl never filled its unnamed file"
            time.sleep(0.01)
        assert sorted(os.listdir("/dev/shm")) == names  # nothing visible while it is being made
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 128 + signal.SIGTERM
    finally:
        os.close(write_end)
        proc.stderr.close()
    assert sorted(os.listdir("/dev/shm")) == names and not os.path.exists(f"/dev/shm/{unique.name}")
    assert used_bytes() == used  # the unnamed inode was freed with the process
