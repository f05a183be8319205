"""shmctl watch on a real pseudo-terminal (80x24, TIOCSWINSZ), as its controlling terminal:
the alternate screen entered and left, a new segment shown green, `s` changes the sort, `q`
exits 0, Ctrl-C 130 and SIGTERM 143, and the terminal's attributes are as before every time."""
import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import termios
import time

import pytest

from conftest import HERE, closing_each, run, shmctl_cmd

ENV = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
ENV.update(TERM="xterm", PYTHONPATH=os.path.dirname(HERE))
ALT_ON, ALT_OFF = b"\x1b[?1049h", b"\x1b[?1049l"
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


class Screen:
    def __init__(self, *args, columns: int = 80, rows: int = 24):
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
        self.before = termios.tcgetattr(slave)
        self.slave = slave

        def controlling_terminal():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        self.proc = subprocess.Popen([*shmctl_cmd(), "watch", "-n", "0.3", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=ENV, preexec_fn=controlling_terminal)
        self.seen = b""

    def wait_for(self, pattern: bytes, timeout: float = 20.0, since: int = 0) -> int:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.seen[since:])
            if found:
                return since + found.end()
            assert time.monotonic() < deadline, f"no {pattern!r} in {self.text()[-2000:]!r}"
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.seen += os.read(self.master, 65536)
                except OSError:
                    pass

    def text(self, since: int = 0) -> str:
        return ANSI.sub(b"", self.seen[since:]).decode("utf-8", "replace")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self, timeout: float = 20.0) -> int:
        code = self.proc.wait(timeout)
        try:
            while select.select([self.master], [], [], 0.1)[0]:
                self.seen += os.read(self.master, 65536)
        except OSError:
            pass
        return code

    def attributes_restored(self) -> bool:
        return termios.tcgetattr(self.slave) == self.before

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def screen():
    yield from closing_each(Screen)


def test_new_segment_is_green_s_sorts_and_q_quits(screen, unique, cleanup_shm):
    names, _ = cleanup_shm
    s = screen("-k", "posix", "-k", "sysv")
    ready = s.wait_for(rb"q quit.*sort:SIZE")
    assert ALT_ON in s.seen
    names.append(unique.name)
    assert run("create", f"posix:/{unique.name}", "--size", "3M").code == 0
    # the row of the new object, in green (SGR 32; bold too when the look also saw its creator
    # let go of it) on a later frame
    s.wait_for(rb"\x1b\[(?:1;)?32m[^\n]*posix:/" + unique.name.encode(), since=ready)
    mark = len(s.seen)
    s.type(b"s")
    s.wait_for(rb"sort:RSS", since=mark)
    s.type(b"q")
    assert s.finish() == 0
    assert s.seen.rfind(ALT_OFF) > s.seen.rfind(ALT_ON)  # back on the normal screen
    assert s.attributes_restored()
    assert run("rm", f"posix:/{unique.name}").code == 0


def test_sort_option_sets_the_column(screen):
    s = screen("-k", "sysv", "--sort", "nattch")
    s.wait_for(rb"sort:NATTCH")
    s.type(b"q")
    assert s.finish() == 0


def test_ctrl_c_exits_130_and_restores_the_terminal(screen):
    s = screen("-k", "sysv")
    s.wait_for(rb"q quit")
    s.type(b"\x03")  # the terminal turns it into SIGINT for its foreground process group
    assert s.finish() == 130
    assert s.seen.rfind(ALT_OFF) > s.seen.rfind(ALT_ON)
    assert s.attributes_restored()


def test_sigterm_exits_143_and_restores_the_terminal(screen):
    s = screen("-k", "sysv")
    s.wait_for(rb"q quit")
    s.proc.send_signal(signal.SIGTERM)
    assert s.finish() == 143
    assert s.seen.rfind(ALT_OFF) > s.seen.rfind(ALT_ON)
    assert s.attributes_restored()


def test_off_a_terminal_without_events_is_a_usage_error():
    r = run("watch")
    assert r.code == 2 and r.err == "shmctl: watch: stdout is not a terminal (use --events for JSON lines)\n"
