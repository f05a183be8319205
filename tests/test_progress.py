"""Progress bars of large copies: on stderr, only when stderr is a terminal (a real pty);
percent and ETA when the size is known (a file), bytes so far and the rate when it is
not (a pipe, after 64 MiB), binary units; nothing at all when stderr is not a terminal.
At 60, 80, 100 and 200 columns every frame fits and keeps all its numbers (the bar and the
label give way); TERM=dumb still gets the numbers, as lines of their own."""
from __future__ import annotations

import fcntl
import os
import pty
import re
import struct
import subprocess
import termios

import pytest

from conftest import HERE, shmctl_cmd

SIZE = 80 << 20  # above the 64 MiB from which a bar is shown
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


def with_stderr_on_pty(argv, stdin=None, columns=200, term="xterm"):
    """(exit code, stdout bytes, what the pty showed with ANSI taken out)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as the program wrote it: a frame's own line shows
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update(TERM=term, PYTHONPATH=os.path.dirname(HERE))
    proc = subprocess.Popen(argv, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    shown = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: every writer of the pty is gone
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(master)
    out = proc.stdout.read()
    proc.wait(120)
    return proc.returncode, out, ANSI.sub("", b"".join(shown).decode("utf-8", "replace"))


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "data"
    with open(path, "wb") as f:
        f.truncate(SIZE)
    return path


@pytest.fixture
def segment(unique, cleanup_shm):
    name = f"/{unique.name}"
    cleanup_shm[0].append(unique.name)
    fd = os.open(f"/dev/shm{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd, SIZE)
    os.close(fd)
    return f"posix:{name}"


def test_write_from_a_file_shows_percent_and_eta(big_file, segment):
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "write", segment, str(big_file)])
    assert code == 0, shown
    assert re.search(r"\b100%", shown) and "ETA" in shown, shown
    assert "80MiB/80MiB" in shown, shown
    assert not re.search(r"\d(kB|MB|GB)\b", shown)  # binary units only


def test_write_from_a_pipe_shows_bytes_and_rate(segment):
    feeder = subprocess.Popen(["head", "-c", str(SIZE), "/dev/zero"], stdout=subprocess.PIPE)
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "write", segment, "-"], stdin=feeder.stdout)
    feeder.stdout.close()
    feeder.wait()
    assert code == 0, shown
    assert "read stdin" in shown and re.search(r"\d+(\.\d)?[KMG]iB/s", shown), shown
    assert re.search(r"\b80MiB\b", shown) and "%" not in shown and "ETA" not in shown, shown


def test_create_from_a_pipe_and_read_to_a_file(tmp_path, unique, cleanup_shm):
    name = f"{unique.name}-c"
    cleanup_shm[0].append(name)
    feeder = subprocess.Popen(["head", "-c", str(SIZE), "/dev/zero"], stdout=subprocess.PIPE)
    code, out, shown = with_stderr_on_pty([*shmctl_cmd(), "create", f"/{name}", "--size", str(SIZE),
                                           "--from", "-"], stdin=feeder.stdout)
    feeder.stdout.close()
    feeder.wait()
    assert code == 0, shown
    assert re.search(r"\b80MiB\b", shown) and re.search(r"[KMG]iB/s", shown) and "%" not in shown, shown
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "read", f"posix:/{name}", "-o", str(tmp_path / "copy")])
    assert code == 0, shown
    assert re.search(r"\b100%", shown) and "ETA" in shown and "80MiB/80MiB" in shown, shown


def test_small_copies_and_pipes_show_nothing(big_file, segment):
    small = big_file.parent / "small"
    small.write_bytes(b"x" * (1 << 20))
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "write", segment, str(small)])
    assert code == 0 and shown == "", shown
    feeder = subprocess.Popen(["head", "-c", str(32 << 20), "/dev/zero"], stdout=subprocess.PIPE)
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "write", segment, "-"], stdin=feeder.stdout)
    feeder.stdout.close()
    feeder.wait()
    assert code == 0 and shown == "", shown  # a pipe under 64 MiB: no bar


def test_no_bar_when_stderr_is_not_a_terminal(big_file, segment):
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE), TERM="xterm")
    proc = subprocess.run([*shmctl_cmd(), "write", segment, str(big_file)], capture_output=True, env=env)
    assert proc.returncode == 0 and proc.stderr == b""
    with open(big_file, "rb") as data:
        proc = subprocess.run([*shmctl_cmd(), "write", segment, "-"], stdin=data, capture_output=True, env=env)
    assert proc.returncode == 0 and proc.stderr == b""


# --- narrow terminals, long names, TERM=dumb ---

WIDTHS = (60, 80, 100, 200)
KNOWN = re.compile(r" +\d{1,3}% +\d+(\.\d)?[KMG]?i?B/80MiB \d+(\.\d)?[KMG]?i?B/s ETA \d+:\d\d:\d\d$")
UNKNOWN = re.compile(r" \d+(\.\d)?[KMG]?i?B \d+(\.\d)?[KMG]?i?B/s \d+:\d\d:\d\d$")


def frames(shown: str):
    """Each frame drawn: between carriage returns (redrawn in place) or on a line of its own."""
    return [f.rstrip() for f in re.split(r"[\r\n]", shown) if f.strip()]


@pytest.fixture
def long_segment(unique, cleanup_shm):
    """An 80 MiB POSIX object with a 61-character name."""
    name = f"{unique.name}-orders-book-level2-snapshot-gw".ljust(61, "x")
    cleanup_shm[0].append(name)
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd, SIZE)
    os.close(fd)
    return f"posix:/{name}"


def _check_frames(shown: str, columns: int, numbers: re.Pattern, label: str) -> list:
    drawn = frames(shown)
    assert drawn, shown
    for frame in drawn:
        assert len(frame) < columns, (columns, frame)  # the last column is never written: no wrap
        assert numbers.search(frame), (columns, frame)  # every number, whatever the width
        assert frame.startswith(label[:12]), (columns, frame)  # the label is cut from its end only
    return drawn


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_long_name_read_to_a_file_keeps_percent_bytes_and_eta(long_segment, tmp_path, columns):
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "read", long_segment, "-o", str(tmp_path / "copy")],
                                        columns=columns)
    assert code == 0, shown
    drawn = _check_frames(shown, columns, KNOWN, f"read {long_segment}")
    assert "100% 80MiB/80MiB" in drawn[-1]
    if columns == 200:  # room for all: the whole address and a bar
        assert drawn[-1].startswith(f"read {long_segment} [====")
    if columns == 60:  # the bar gave way first, then the address was cut
        assert "[" not in drawn[-1] and "…" in drawn[-1]
    assert shown.endswith("\r") and shown.split("\r")[-2].strip() == ""  # wiped at the end


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_long_name_written_from_a_pipe_keeps_bytes_and_rate(long_segment, columns):
    feeder = subprocess.Popen(["head", "-c", str(SIZE), "/dev/zero"], stdout=subprocess.PIPE)
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "write", long_segment, "-"], stdin=feeder.stdout,
                                        columns=columns)
    feeder.stdout.close()
    feeder.wait()
    assert code == 0, shown
    drawn = _check_frames(shown, columns, UNKNOWN, "read stdin")
    assert all("%" not in f and "ETA" not in f for f in drawn), drawn
    assert re.search(r" 80MiB ", drawn[-1]), drawn


def test_a_dumb_terminal_gets_lines_at_its_real_width(long_segment, tmp_path):
    """TERM=dumb in a 200-column pty: no carriage return, no escape; the last frame on a line
    of its own, at the real width (the whole address fits), not 80 columns."""
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "read", long_segment, "-o", str(tmp_path / "copy")],
                                        columns=200, term="dumb")
    assert code == 0, shown
    assert "\r" not in shown and "\x1b" not in shown and shown.endswith("\n"), repr(shown)
    last = _check_frames(shown, 200, KNOWN, "read")[-1]
    assert last.startswith(f"read {long_segment} [") and "100% 80MiB/80MiB" in last, last


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_long_name_created_from_a_pipe_keeps_bytes_and_rate(unique, cleanup_shm, columns):
    name = f"{unique.name}-orders-book-level2-snapshot-gw".ljust(61, "y")
    cleanup_shm[0].append(name)
    feeder = subprocess.Popen(["head", "-c", str(SIZE), "/dev/zero"], stdout=subprocess.PIPE)
    code, _, shown = with_stderr_on_pty([*shmctl_cmd(), "create", f"/{name}", "--size", str(SIZE), "--from", "-"],
                                        stdin=feeder.stdout, columns=columns)
    feeder.stdout.close()
    feeder.wait()
    assert code == 0, shown
    drawn = _check_frames(shown, columns, UNKNOWN, f"create posix:/{name}")
    assert re.search(r" 80MiB ", drawn[-1]), drawn
    if columns == 200:
        assert drawn[-1].startswith(f"create posix:/{name} 80MiB "), drawn
