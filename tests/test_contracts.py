"""Issue 11, contracts for scripts: numbers are ASCII digits only, local files have their own
exit codes (never 3 or 6), a full output device is 1, a reader gone is 141 and silent,
conflicting options are usage errors. All through the real CLI, on real objects."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from conftest import ENV, ROOT, SECOND_UID, SHMCTL, mount_tmpfs, run, run_as, run_in_process
from shmctl_cli.units import ascii_int, is_ascii_digits, parse_count, parse_mode, parse_size

NON_ASCII = ["²", "١٢", "١", "٣", "߁", "１２", "𝟙"]  # superscript, Arabic-Indic, NKo, fullwidth, math
# what int() (and float(), and a regex's \s or $) would take around or inside ASCII digits
LOOSE = [" 5", "5 ", "5\n", "\t5", "+5", "5_000", "0x_10", "0b101", "０", "٥"]


def test_ascii_helpers():
    assert is_ascii_digits("0123") and not is_ascii_digits("") and not is_ascii_digits("-1")
    for text in NON_ASCII:
        assert text.isdigit() and not is_ascii_digits(text)
        with pytest.raises(ValueError):
            ascii_int(text)
    assert ascii_int("0x1f", 0) == 31 and ascii_int("0o17", 0) == 15 and parse_count("7", "n") == 7
    for text in LOOSE + ["010", "0x", "-0x", "1e3"]:  # what int() takes and a person did not mean
        with pytest.raises(ValueError):
            ascii_int(text, 0)
    for text in LOOSE + ["-0"]:
        with pytest.raises(Exception) as info:
            parse_count(text, "n")
        assert getattr(info.value, "exit_code", None) == 2
    for bad in ("١K", "1.٥M", "²"):
        with pytest.raises(Exception) as info:
            parse_size(bad)
        assert getattr(info.value, "exit_code", None) == 2
    with pytest.raises(Exception):
        parse_mode("٦٠٠")


@pytest.fixture
def posix(cleanup_shm):
    name = f"contract-{uuid.uuid4().hex[:8]}"
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    cleanup_shm[0].append(name)
    os.write(fd, b"contract\0" * 1024)  # text before a NUL, for read --string
    os.ftruncate(fd, 64 << 10)
    os.close(fd)
    return f"posix:/{name}"


# every place a user types a number; `{}` is where the bad number goes
NUMBER_PLACES = [
    ("stat", "sysv:{}"),
    ("stat", "sysv:key={}"),
    ("stat", "sysv:key=0x{}"),
    ("stat", "sysv:ftok=/etc,{}"),
    ("stat", "mmap:@{}"),
    ("stat", "mmap:@{}:1:5"),
    ("stat", "mmap:@0:{}:5"),
    ("stat", "mmap:@0:1:{}"),
    ("stat", "posix:@{}"),
    ("stat", "sysv@ipc:{}:1"),
    ("stat", "posix@mnt:{}:/x"),
    ("create", "posix:/never", "--size", "{}K"),
    ("create", "posix:/never", "--size", "4K", "--mode", "{}"),
    ("create", "sysv", "--size", "4K", "--key", "{}"),
    ("create", "sysv", "--size", "4K", "--ftok", "/etc,{}"),
    ("create", "sysv", "--size", "4K", "--hugetlb", "--huge-size", "{}M"),
    ("read", "ADDR", "--offset", "{}"),
    ("read", "ADDR", "--length", "{}"),
    ("write", "ADDR", "--fill", "{}", "--length", "1"),
    ("write", "ADDR", "--data", "x", "--offset", "{}"),
    ("write", "ADDR", "--fill", "1", "--length", "{}"),
    ("attach", "ADDR", "--for", "{}s"),
    ("list", "--min-size", "{}"),
    ("rm", "-m", "{}"),
    ("rm", "-M", "{}"),
    ("--ns", "{}", "list"),
    ("limits", "set", "--dry-run", "shmmni={}"),
    ("limits", "set", "--dry-run", "shmmax={}"),
    ("limits", "set", "--dry-run", "shmall={}G"),
    ("limits", "set", "--dry-run", "shm_rmid_forced={}"),
    ("limits", "hugepages", "--count", "{}"),
    ("limits", "hugepages", "--overcommit", "{}"),
    ("limits", "hugepages", "--size", "{}M"),
    ("limits", "recommend", "--for", "1M", "--segments", "{}"),
    ("limits", "recommend", "--for", "{}M"),
    ("limits", "recommend", "--for", "1M", "--huge-size", "{}M"),
]


@pytest.mark.parametrize("place", NUMBER_PLACES, ids=lambda p: " ".join(p))
def test_non_ascii_digits_are_usage_errors(place, posix):
    for digits in ("²", "١٢"):
        args = [a.replace("ADDR", posix).format(digits) for a in place]
        result = run(*args)
        assert result.code == 2, (args, result)
        lines = result.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("shmctl: ") and "internal error" not in result.err, result


# where a number is typed besides NUMBER_PLACES: durations, counts, modes and ipcmk's -M
MORE_NUMBER_PLACES = [
    ("list", "-i", "{}"),
    ("create", "sysv", "-M", "{}"),
    ("read", "ADDR", "-o", "OUT", "--mode", "{}"),
    ("rm", "--orphans", "--dry-run", "--older-than", "{}d"),
    ("rm", "--orphans", "--dry-run", "--older-than", "{}"),
    ("rm", "--orphans", "--dry-run", "--min-size", "{}"),
    ("metrics", "--top", "{}"),
    ("doctor", "--expect", "{}"),
    ("limits", "recommend", "--for", "{}"),
    ("watch", "--events", "-n", "{}"),
    ("attach", "ADDR", "--for", "{}"),
]
LIVE = ("watch", "attach")  # would run on if a number were taken: a real process with a timeout
VALID_THERE = {(("stat", "sysv:key=0x{}"), "0b101")}  # 0x0b101 is a hex key


@pytest.mark.parametrize("place", NUMBER_PLACES + MORE_NUMBER_PLACES, ids=lambda p: " ".join(p))
def test_numbers_are_ascii_digits_and_nothing_around_them(place, posix, tmp_path):
    """White space, a newline, `+`, `_`, `0b` and non-ASCII digits: int() takes them all, and
    `rm -m ' 5'` removed sysv:5. Each is exit 2 and one line, wherever a number is typed."""
    for value in LOOSE:
        if (place, value) in VALID_THERE:
            continue
        args = [a.replace("ADDR", posix).replace("OUT", str(tmp_path / "out")).format(value) for a in place]
        result = run(*args, timeout=30) if args[0] in LIVE else run_in_process(*args)
        lines = result.err.splitlines()
        assert result.code == 2, (args, result)
        assert len(lines) == 1 and lines[0].startswith("shmctl: ") and "internal error" not in lines[0], result
    assert not os.path.exists(tmp_path / "out")


def test_the_strict_forms_still_work():
    """What the grammar keeps: keys in 0x hex and 0o octal, /proc's negative keys, C's octal and
    0o ftok ids, octal modes with a leading 0, sizes with a fraction and a unit."""
    assert run_in_process("stat", "sysv:key=0o17").code == 3 and run_in_process("stat", "sysv:key=-5").code == 3
    assert run_in_process("stat", "sysv:ftok=/etc,017").code == 3
    assert run_in_process("create", "--dry-run", "sysv", "--size", "1.5K", "--mode", "0640").code == 0
    assert run_in_process("limits", "set", "--dry-run", "shmmni=4000").code == 0


@pytest.mark.parametrize("args", [("rm", "-m", "-1"), ("stat", "sysv:-1"), ("rm", "sysv:-1"), ("--ns", "-1", "list"),
                                  ("--ns", "0", "list"), ("limits", "hugepages", "--count", "-1"),
                                  ("limits", "recommend", "--for", "1M", "--segments", "0"),
                                  ("limits", "set", "--dry-run", "shmmni=-1"), ("rm", "-m", "2147483648")])
def test_negative_and_out_of_range_numbers_are_usage_errors(args):
    result = run(*args)
    assert result.code == 2, result
    assert len(result.err.splitlines()) == 1


def test_ascii_numbers_still_work(posix):
    assert run("read", posix, "--offset", "65535", "--length", "1").code == 0
    assert run("limits", "set", "--dry-run", "shmmni=4000").code == 0
    assert run("stat", "sysv:2147483647").code == 3  # a well-formed shmid that names nothing


# --- local files: 2 when missing, 4 when not ours to open, 1 otherwise; never 3 ---

@pytest.mark.parametrize("args", [
    ("create", "posix:/contract-never", "--from", "{missing}"),
    ("write", "ADDR", "{missing}"),
    ("read", "ADDR", "-o", "{missing}/out"),
    ("limits", "set", "shmmni=4000", "--persist", "{missing}/60-shmctl.conf"),
])
def test_missing_local_file_is_a_usage_error(args, posix, tmp_path):
    missing = str(tmp_path / "no-such-dir")
    result = run(*[a.replace("ADDR", posix).format(missing=missing) for a in args])
    assert result.code == 2, result
    assert "no such file or directory" in result.err.lower() and missing in result.err
    assert not os.path.exists("/dev/shm/contract-never")


def test_a_directory_as_the_source_is_exit_1(posix, tmp_path):
    result = run("write", posix, str(tmp_path))
    assert result.code == 1 and "is a directory" in result.err, result


@pytest.mark.skipif(not ROOT, reason="needs another uid")
@pytest.mark.parametrize("args", [
    ("create", "posix:/NAME", "--from", "{secret}"),
    ("write", "ADDR", "{secret}"),
    ("read", "ADDR", "-o", "{closed}/out"),
])
def test_local_file_we_may_not_open_is_exit_4(args, tmp_path, cleanup_shm):
    os.chmod(tmp_path, 0o755)
    secret, closed = tmp_path / "secret", tmp_path / "closed"
    secret.write_bytes(b"x")
    os.chmod(secret, 0o600)
    closed.mkdir(mode=0o700)
    name = f"contract-{uuid.uuid4().hex[:8]}"
    cleanup_shm[0].append(name)
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_RDWR, 0o666)
    os.ftruncate(fd, 4096)
    os.fchown(fd, SECOND_UID, SECOND_UID)
    os.close(fd)
    own = f"contract-{uuid.uuid4().hex[:8]}"
    cleanup_shm[0].append(own)
    argv = [a.replace("ADDR", f"posix:/{name}").replace("NAME", own).format(secret=secret, closed=closed)
            for a in args]
    result = run_as(SECOND_UID, *argv)
    assert result.code == 4, result
    assert "permission denied" in result.err.lower()


def test_a_plan_that_is_a_directory_is_one_line_exit_1(tmp_path):
    """os.fdopen failed on the directory before the file-type check (a traceback, int += str)."""
    for args, code, message in (((str(tmp_path),), 1, f"shmctl: rm --plan {tmp_path}: is a directory (give the plan "
                                                      "file that rm --dry-run --json wrote)\n"),
                                (("/dev/null",), 1, "shmctl: rm --plan /dev/null: not a regular file (give the plan "
                                                    "file that rm --dry-run --json wrote)\n"),
                                ((str(tmp_path / "none"),), 2, f"shmctl: rm --plan {tmp_path}/none: no such file or "
                                                              "directory\n")):
        r = run("rm", "--plan", *args)
        assert (r.code, r.out, r.err) == (code, "", message), r


@pytest.mark.parametrize("args", [("stat", "sysv:ftok={missing},1"),
                                  ("create", "sysv", "--ftok", "{missing},1", "--size", "4K")])
def test_ftok_of_a_missing_file_is_exit_2(args, tmp_path):
    missing = tmp_path / "none"
    r = run(*[a.format(missing=missing) for a in args])
    assert (r.code, r.out) == (2, ""), r
    assert r.err == f"shmctl: ftok {missing}: no such file or directory (the path must exist)\n"


def test_mmap_create_in_a_missing_directory_is_exit_2(tmp_path):
    where = tmp_path / "no-such-dir" / "f"
    r = run("create", f"mmap:{where}", "--size", "4K")
    assert (r.code, r.out, r.err) == (2, "", f"shmctl: create mmap:{where}: no such file or directory\n"), r
    assert not (tmp_path / "no-such-dir").exists()


def test_a_semaphore_exists_so_it_is_never_exit_3(cleanup_shm):
    """`list -a` prints posix:/sem.NAME: stat and list -i take it back and say what it is;
    read, write and rm refuse it as a conflict (5), and rm --force unlinks it."""
    name = f"sem.contract-{uuid.uuid4().hex[:8]}"
    cleanup_shm[0].append(name)
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd, 32)  # a glibc semaphore's size
    os.close(fd)
    address = f"posix:/{name}"
    listed = [s["address"] for s in run("list", "-a", "-k", "posix", "--json").json()["segments"]]
    assert address in listed
    for command in (("stat", "--json", address), ("list", "-i", address, "--json")):
        r = run(*command)
        assert r.code == 0 and r.json()["status"] == ["semaphore"] and r.json()["size"] == 32, r
    refusal = (f"shmctl: {address}: this is a POSIX semaphore (sem_open), not a shared-memory object "
               "(shmctl stat shows it; rm --force unlinks it)\n")
    for command in (("read", address), ("write", address, "--data", "x")):
        r = run(*command)
        assert (r.code, r.out, r.err) == (5, "", refusal), r
    r = run("rm", address)
    assert (r.code, r.out) == (5, "") and r.err == (f"shmctl: {address}: a POSIX semaphore (sem_open), not a "
                                                   "shared-memory object (--force unlinks it)\n"), r
    assert os.path.exists(f"/dev/shm/{name}")
    r = run("rm", "--force", address)
    assert (r.code, r.out) == (0, address + "\n") and not os.path.exists(f"/dev/shm/{name}"), r


# --- a full output device: 1, "no space left on device", never 6 ---

@pytest.fixture
def full_dir(tmp_path):
    """A tiny tmpfs of our own, filled: the next write gets ENOSPC."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    mount_tmpfs(mnt, size="16k")
    fd = os.open(mnt / "filler", os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


@pytest.mark.skipif(not ROOT, reason="mounts a tmpfs")
def test_full_output_file_is_exit_1(full_dir, posix):
    result = run("read", posix, "-o", str(full_dir / "copy"))
    assert result.code == 1, result
    assert "no space left on device" in result.err and "copy" in result.err
    assert sorted(os.listdir(full_dir)) == ["filler"]  # no temp file left


@pytest.mark.skipif(not ROOT, reason="mounts a tmpfs and sets limits in the session's IPC namespace")
def test_full_persist_file_is_exit_1_and_undoes_the_value(full_dir):
    before = open("/proc/sys/kernel/shmmni").read()
    wanted = "4001" if before.strip() != "4001" else "4002"
    result = run("limits", "set", f"shmmni={wanted}", "--persist", str(full_dir / "60-shmctl.conf"))
    assert result.code == 1, result
    assert "no space left on device" in result.err
    assert open("/proc/sys/kernel/shmmni").read() == before
    assert sorted(os.listdir(full_dir)) == ["filler"]


def _to_dev_full(*args):
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([*SHMCTL, *args], stdout=full, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=ENV, timeout=60)
    return proc.returncode, proc.stderr.decode()


@pytest.mark.parametrize("args", [("read", "ADDR"), ("read", "-x", "ADDR"), ("list",), ("list", "--json"),
                                  ("stat", "ADDR"), ("limits",), ("limits", "--json"), ("metrics",), ("doctor",),
                                  ("rm", "--dry-run", "ADDR")])
def test_full_stdout_is_exit_1(args, posix):
    code, err = _to_dev_full(*[a.replace("ADDR", posix) for a in args])
    assert code == 1, err
    assert err.count("\n") == 1 and "no space left on device" in err


def test_create_and_rm_into_a_full_stdout(cleanup_shm):
    """create cannot tell the address: it removes what it made (exit 1); rm has removed
    already when it cannot print the address, and says the write failed (exit 1)."""
    name = f"contract-{uuid.uuid4().hex[:8]}"
    cleanup_shm[0].append(name)
    code, err = _to_dev_full("create", f"posix:/{name}", "--size", "4K")
    assert (code, err) == (1, f"shmctl: create posix:/{name}: cannot write the address to stdout: No space left "
                              "on device; removed it again: the caller could never learn its address\n")
    assert not os.path.exists(f"/dev/shm/{name}")
    assert run("create", f"posix:/{name}", "--size", "4K").code == 0
    code, err = _to_dev_full("rm", f"posix:/{name}")
    assert (code, err) == (1, "shmctl: write to stdout: no space left on device\n")
    assert not os.path.exists(f"/dev/shm/{name}")


# --- EPIPE: 141, nothing said ---

def _reader_gone(*args):
    """Run with stdout a pipe whose read end is closed before the child writes."""
    r, w = os.pipe()
    os.close(r)
    try:
        proc = subprocess.run([*SHMCTL, *args], stdout=w, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                              env=ENV, timeout=60)
    finally:
        os.close(w)
    return proc.returncode, proc.stderr.decode()


EPIPE_COMMANDS = [
    ("list",), ("list", "--json"), ("list", "--raw"), ("list", "-u"), ("stat", "ADDR"), ("stat", "--json", "ADDR"),
    ("read", "ADDR"), ("read", "-x", "ADDR"), ("read", "--string", "ADDR"),
    ("rm", "--dry-run", "ADDR"), ("write", "--dry-run", "ADDR", "--data", "x"),
    ("limits",), ("limits", "--json"), ("limits", "hugepages"), ("limits", "recommend", "--for", "1G"),
    ("limits", "set", "--dry-run", "--json", "shmmni=4000"),
    ("create", "--dry-run", "posix:/contract-dry", "--size", "4K"),
    ("--help",), ("list", "--help"), ("limits", "set", "--help"), ("--version",),
    ("help",), ("help", "list"), ("completion", "bash"),
    ("metrics",), ("metrics", "--here"), ("doctor",), ("doctor", "--json"), ("watch", "--events"),
]


@pytest.mark.parametrize("args", EPIPE_COMMANDS, ids=lambda a: " ".join(a))
def test_reader_gone_is_141_and_silent(args, posix):
    argv = [a.replace("ADDR", posix) for a in args]
    if args[0] in ("help", "completion") and run(*argv).code != 0:
        pytest.skip(f"`shmctl {args[0]}` does not work yet")
    code, err = _reader_gone(*argv)
    assert code == 141, (argv, err)
    assert "Error" not in err and "pipe" not in err.lower() and "Traceback" not in err, err
    if args[0] == "watch":  # what it watches and how, said on stderr before it starts
        err = err.partition("\n")[2] if err.startswith("shmctl: watching ") else err
    if args[0] != "limits":  # `limits set` says what would change on stderr, before stdout
        assert err == "", err


def test_rm_into_a_gone_reader_still_removes(posix):
    code, err = _reader_gone("rm", posix)
    assert (code, err) == (141, "")
    assert not os.path.exists("/dev/shm/" + posix[len("posix:/"):])


def test_create_into_a_gone_reader_keeps_its_documented_rule(cleanup_shm):
    name = f"contract-{uuid.uuid4().hex[:8]}"
    cleanup_shm[0].append(name)
    code, err = _reader_gone("create", f"posix:/{name}", "--size", "4K")
    assert code == 1 and "removed it again" in err
    assert not os.path.exists(f"/dev/shm/{name}")


def test_list_into_head_with_many_segments(cleanup_shm):
    token = uuid.uuid4().hex[:8]
    for i in range(1500):  # ~400 KB of table: far more than a pipe holds, so head leaves while it is written
        name = f"contract-{token}-{i:04d}-" + "x" * 200
        cleanup_shm[0].append(name)
        os.close(os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))
    for form in ("", "--json", "--raw"):
        proc = subprocess.run(["bash", "-c", f'"$@" {form} 2>/tmp/err.$$ | head -1 >/dev/null; '
                               f'echo "${{PIPESTATUS[0]}}"; grep -v "not visible" /tmp/err.$$; rm -f /tmp/err.$$',
                               "bash", *SHMCTL, "list"], capture_output=True, env=ENV, timeout=60)
        status, *errors = proc.stdout.decode().splitlines()
        assert status == "141" and errors == [], (form, proc.stdout)


# --- conflicting options: 2, before any segment is looked for ---

@pytest.mark.parametrize("args", [
    ("read", "posix:/contract-absent", "--force"),
    ("read", "posix:/contract-absent", "--mode", "0644"),
    ("read", "posix:/contract-absent", "-o", "-", "--force"),
    ("write", "posix:/contract-absent", "--data", "a", "--hex", "00"),
    ("write", "posix:/contract-absent", "--data", "a", "--overcommit"),
    ("write", "posix:/contract-absent", "--fill", "1"),
    ("write", "posix:/contract-absent", "--fill", "é", "--length", "1"),
    ("write", "posix:/contract-absent", "--hex", "zz"),
    ("create", "posix:/contract-absent", "--size", "4K", "--larger-ok"),
    ("create", "sysv", "--size", "4K", "--key", "5", "--ftok", "/etc,1"),
])
def test_conflicting_options_are_usage_errors(args):
    result = run(*args)
    assert result.code == 2, result
    assert len(result.err.splitlines()) == 1


def test_what_does_not_conflict(posix, tmp_path):
    """A hexdump into a file and a hexdump of the bytes before the first NUL are both meant."""
    out = tmp_path / "dump"
    assert run("read", posix, "--hexdump", "-o", str(out), "--mode", "0640").code == 0
    assert out.read_text().startswith("00000000") and oct(os.stat(out).st_mode & 0o777) == "0o640"
    assert run("read", posix, "--hexdump", "--string").code == 0


def test_exit_meanings_say_the_contract():
    from shmctl_cli.errors import Exit
    assert "local file" in Exit.USAGE.meaning and "does not exist" in Exit.USAGE.meaning
    assert "declined" in Exit.FAILED.meaning and "full" in Exit.FAILED.meaning
    assert "segment" in Exit.NOT_FOUND.meaning and "full output device" in Exit.LIMIT.meaning
    assert "any command" in Exit.BROKEN_PIPE.meaning


def _parameters(command, path=""):
    import click
    for param in command.params:
        yield f"{path} {param.name}".strip(), param
    if isinstance(command, click.Group):
        ctx = click.Context(command)
        for name in command.list_commands(ctx):
            yield from _parameters(command.get_command(ctx, name), f"{path} {name}")


def test_no_option_takes_numbers_through_int():
    """click's INT, IntRange, FLOAT and FloatRange convert with int()/float(), which read `١٢` as
    12: every number a user types goes through units (ASCII digits only). A new option that
    forgets is caught here, not by a user."""
    import click
    from shmctl_cli.cli import cli
    loose = (click.types.IntParamType, click.types.FloatParamType)
    found = [path for path, param in _parameters(cli) if isinstance(param.type, loose)]
    assert found == []
