"""Review of issue 8, what shmctl prints and how it ends: the address `attach -- CMD` hands
its command, the JSON of what is not a segment, the exit code of a closed pipe (click's own
EPIPE path included) and of an unwritable stderr, a closed stdin where a prompt or a copy
wants it, the signal mask `attach -- CMD` passes on, and `limits set` stopped by a signal."""
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import ENV, ROOT, SHMCTL, needs_isolation, run


def _make(name: str, size: int = 4096, data: bytes = b"") -> str:
    fd = os.open(os.path.join("/dev/shm", name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, size)
        os.write(fd, data)
    finally:
        os.close(fd)
    return name


def _bytes(name: str, n: int) -> bytes:
    with open(os.path.join("/dev/shm", name), "rb") as f:
        return f.read(n)


def _run_fds(args, stdin_closed=False, stdout=None, stderr=subprocess.PIPE):
    """shmctl with fd 0 closed (the shell's `<&-`) and stdout/stderr as given."""
    prefix = ["sh", "-c", 'exec "$@" <&-', "sh"] if stdin_closed else []
    return subprocess.run([*prefix, *SHMCTL, *args], stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=stderr, env=ENV, timeout=60)


def _broken_pipe():
    """The write end of a pipe whose reader is gone: the first write gets EPIPE."""
    r, w = os.pipe()
    os.close(r)
    return w


# --- attach -- CMD: $SHMCTL_ADDRESS is the printed form, read back as the same object ---

def test_attach_address_env_reaches_the_held_object_not_a_lookalike(unique, cleanup_shm):
    names, _ = cleanup_shm
    held = _make(unique.name + "\\x41")  # a literal backslash: printed \x5cx41
    decoy = _make(unique.name + "A")  # what the raw name would be read back as
    names += [held, decoy]
    r = run("attach", "posix:/" + held.replace("\\", "\\x5c"), "--", "sh", "-c",
            'printf X | "$0" -m shmctl_cli write "$SHMCTL_ADDRESS" -', sys.executable)
    assert r.code == 0, r
    assert _bytes(held, 1) == b"X"
    assert _bytes(decoy, 1) == b"\0"


def test_attach_command_starts_with_no_signal_blocked(unique, cleanup_shm):
    names, _ = cleanup_shm
    names.append(_make(unique.name))
    r = run("attach", f"posix:/{unique.name}", "--", "grep", "^SigBlk", "/proc/self/status")
    assert r.code == 0, r
    blocked = int(r.out.split()[1], 16)
    for signum in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        assert not blocked & (1 << (signum - 1)), (signum, r.out)


# --- JSON: what is not a segment holds no control byte and no lone surrogate ---

def test_list_json_not_segments_printable(unique, cleanup_shm):
    names, _ = cleanup_shm
    name = os.fsdecode(unique.name.encode() + b"\x1b[2J\xff\nx")
    os.mkdir(os.path.join("/dev/shm", name))
    names.append(name)
    r = run("list", "--kind", "posix", "--json", binary=True)
    assert r.code == 0, r
    text = r.out.decode("ascii")  # json.dumps keeps to ASCII: no raw byte at all
    assert "\\ud" not in text  # no lone surrogate, which strict parsers refuse
    skipped = json.loads(text)["not_segments"]
    assert f"{unique.name}\\x1b[2J\\xff\\x0ax (directory)" in skipped


# --- a reader gone: 141 everywhere, also where click itself catches EPIPE ---

@pytest.mark.parametrize("args", [["--help"], ["--version"], ["list", "--help"], ["list"], ["limits"]])
def test_broken_pipe_is_141_and_silent(args):
    w = _broken_pipe()
    try:
        proc = _run_fds(args, stdout=w)
    finally:
        os.close(w)
    assert proc.returncode == 141, proc
    assert proc.stderr == b""


def test_unwritable_stderr_keeps_the_exit_code(unique):
    w = _broken_pipe()
    try:
        proc = _run_fds(["stat", f"posix:/{unique.name}"], stderr=w)
    finally:
        os.close(w)
    assert proc.returncode == 3


# --- stdin closed: a prompt says there is no terminal, a copy says stdin is closed ---

def test_rm_of_many_with_stdin_closed_refuses_and_removes_nothing(unique, cleanup_shm):
    names, _ = cleanup_shm
    names += [_make(unique.name + "-1"), _make(unique.name + "-2")]
    proc = _run_fds(["rm", *(f"posix:/{n}" for n in names)], stdin_closed=True)
    assert proc.returncode == 2, proc
    assert proc.stderr.decode() == "shmctl: rm: 2 segments chosen and no terminal to ask (add --yes)\n"
    assert all(os.path.exists(os.path.join("/dev/shm", n)) for n in names)


def test_write_from_closed_stdin_names_stdin(unique, cleanup_shm):
    names, _ = cleanup_shm
    names.append(_make(unique.name, data=b"old"))
    proc = _run_fds(["write", f"posix:/{unique.name}", "-"], stdin_closed=True)
    assert proc.returncode == 1, proc
    assert proc.stderr.decode() == ("shmctl: open -: Bad file descriptor "
                                    "(stdin is closed: give FILE, or pipe the data in)\n")
    assert _bytes(unique.name, 3) == b"old"


# --- limits set stopped by a signal: nothing left half set ---

def _sysctl(name: str) -> int:
    with open(f"/proc/sys/kernel/{name}") as f:
        return int(f.read())


SIGNAL_AT = """
import os, signal, sys
from shmctl_cli.limits import persist, setting
from shmctl_cli.cli import main
where = sys.argv[1]
if where == "apply":  # the second value is being written when SIGTERM comes
    real, count = setting.write_sysctl, []
    def write_sysctl(*args, **kwargs):
        count.append(1)
        if len(count) == 2:
            real(*args, **kwargs)
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)
    setting.write_sysctl = write_sysctl
else:  # every value is set, the file is being written
    def write(plan):
        os.kill(os.getpid(), signal.SIGTERM)
        raise AssertionError("not reached")
    persist.write = write
sys.exit(main(sys.argv[2:]))
"""


@needs_isolation
@pytest.mark.skipif(not ROOT, reason="needs root")
@pytest.mark.parametrize("where", ["apply", "persist"])
def test_limits_set_stopped_by_sigterm_undoes_every_value(where, tmp_path):
    before = {name: _sysctl(name) for name in ("shmmni", "shmmax")}
    conf = tmp_path / "60-shmctl.conf"
    args = ["limits", "set", f"shmmni={before['shmmni'] - 1}", f"shmmax={before['shmmax'] - 4096}"]
    if where == "persist":
        args += ["--persist", str(conf)]
    proc = subprocess.run([sys.executable, "-c", SIGNAL_AT, where, *args], capture_output=True, env=ENV,
                          timeout=60)
    assert proc.returncode == 143, proc
    assert proc.stderr.decode().splitlines()[-1] == "shmctl: stopped by SIGTERM"
    assert {name: _sysctl(name) for name in before} == before
    assert not os.listdir(tmp_path)
