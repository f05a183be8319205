"""Tables on a real terminal: shmctl runs with stdout on a pseudo-terminal of 60, 80, 100
and 200 columns (TIOCSWINSZ), TERM=xterm and TERM=dumb, on real segments with long names;
what it prints, ANSI stripped, must fit the width with every cell whole on one line.
Also: --time-format against the kernel's own epochs, and the binary sizes."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time

import pytest

from conftest import HERE, shmctl_cmd
from shmctl_cli.units import format_size, format_time, parse_size

WIDTHS = (60, 80, 100, 200)
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
LONG = "shmctl-t11-orders-book-level2-snapshot-exchange-gw"  # 51 characters
ADDRESS = re.compile(r"(sysv|posix|mmap)(@[a-z]+:\d+)?:\S+")
SQUEEZE_HEADINGS = ("NAME", "STATUS", "ORPHAN", "CONTAINER", "PROCESSES", "WHAT", "COMMAND")


class Screen:
    def __init__(self, code: int, text: str, err: str):
        self.code, self.text, self.err = code, text, err
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()


def on_terminal(*args, columns: int, term: str = "xterm", env=None) -> Screen:
    """shmctl ARGS with stdout on a pty of `columns` x 50 (stderr on a pipe); the screen's
    text with ANSI sequences taken out."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # keep "\n" as the program wrote it
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "NO_COLOR")}
    full_env.update(TERM=term, PYTHONPATH=os.path.dirname(HERE), **(env or {}))
    proc = subprocess.Popen([*shmctl_cmd(), *args], stdin=subprocess.DEVNULL, stdout=slave,
                            stderr=subprocess.PIPE, env=full_env)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the slave
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    err = proc.stderr.read().decode()
    proc.wait(60)
    return Screen(proc.returncode, ANSI.sub("", b"".join(chunks).decode()), err)


@pytest.fixture(scope="module")
def segments():
    """Real segments with long names: POSIX objects of 51 and 1 characters, keyed SysV
    segments, a process mapping one (for -p), made by tests/holder.py."""
    specs = [{"kind": "posix", "name": f"/{LONG}", "size": 3 << 20},
             {"kind": "posix", "name": "/shmctl-t11-x", "size": 1536},
             {"kind": "sysv", "key": 0x5eed1101, "size": 1 << 20, "mode": 0o640},
             {"kind": "sysv", "key": 0x5eed1102, "size": 5 << 30 >> 10, "mode": 0o600}]
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "holder.py"), json.dumps(specs)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    objects = []
    for line in proc.stdout:
        if line.strip() == "ready":
            break
        objects.append(json.loads(line))
    else:
        raise RuntimeError(proc.stderr.read())
    for spec, obj in zip(specs, objects):
        obj.update(name=spec.get("name"), key=spec.get("key"), pid=proc.pid)
    yield objects
    proc.stdin.close()
    proc.wait(30)


# the kinds the fixture makes: the host's mmap rows (any process's files, with paths of any
# length) come and go between two runs and would make a test depend on a quiet host
OURS = ("-k", "sysv", "-k", "posix")


def table_rows(screen: Screen) -> list:
    """The data lines of a table (after the heading's rule)."""
    rule = next(i for i, line in enumerate(screen.lines) if line.startswith("─"))
    return screen.lines[rule + 1:]


def addresses(objects) -> list:
    return [f"posix:{o['name']}" if o["kind"] == "posix" else f"sysv:{o['shmid']}" for o in objects]


def assert_fits(screen: Screen, columns: int, allowed_long=()):
    """No line wider than the terminal, unless it is an address alone on its line (a row's
    address too long to stand beside its cells: never cut) or an allowed text alone (a value
    of stat moved under its label)."""
    for line in screen.lines:
        line = line.rstrip()
        if len(line) > columns:
            alone = line.strip()
            assert ADDRESS.fullmatch(alone) or alone in allowed_long, f"{len(line)} > {columns}: {line!r}\n{screen.text}"


def assert_rows(rows: list) -> list:
    """The lines that start a row: a line of cells under a blank address column follows only
    an address alone on its line (too long to stand beside them)."""
    for before, line in zip([""] + rows, rows):
        if line.startswith(" "):
            assert ADDRESS.fullmatch(before), f"a folded cell? {line!r} after {before!r}"
    return [line for line in rows if not line.startswith(" ")]


def ellipsis_columns(screen: Screen) -> set:
    """The headings of the columns in which a cut cell (…) stands."""
    heading = next(i for i, line in enumerate(screen.lines) if line.startswith("─")) - 1
    head = screen.lines[heading]
    starts = [m.start() for m in re.finditer(r"\S+", head)]
    names = head.split()
    found = set()
    for line in table_rows(screen):
        for at in (m.start() for m in re.finditer("…", line)):
            column = max((i for i, s in enumerate(starts) if s <= at), default=0)
            found.add(names[column])
    return found


@pytest.mark.parametrize("term", ["xterm", "dumb"])
@pytest.mark.parametrize("columns", WIDTHS)
def test_list_fits_and_never_folds(segments, columns, term):
    screen = on_terminal("list", *OURS, columns=columns, term=term)
    assert screen.code == 0, screen.err
    mine = addresses(segments)
    longest = max(mine, key=len)
    assert_fits(screen, columns, allowed_long=[longest] if len(longest) > columns else [])
    rows = assert_rows(table_rows(screen))
    for address in mine:  # every address whole, on exactly one line: no row was folded
        assert sum(1 for line in rows if line.split(" ", 1)[0] == address) == 1, (address, screen.text)
    # each row is a segment: as many as the plain listing has lines
    assert len(rows) == len(subprocess.run([*shmctl_cmd(), "list", "-n", *OURS], capture_output=True, text=True,
                                           env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
                                           ).stdout.splitlines())
    assert ellipsis_columns(screen) <= set(SQUEEZE_HEADINGS)
    assert "ADDRES\n" not in screen.text and "posix:/shmctl-t11-orders-book-level2-snapshot-exchange-gw" in screen.text


def test_dumb_terminal_uses_its_real_width(segments):
    """rich takes 80 columns for TERM=dumb; shmctl asks the terminal: 200 columns are 200."""
    screen = on_terminal("list", "-W", *OURS, columns=200, term="dumb")
    width = max(len(line.rstrip()) for line in screen.lines)
    assert 80 < width <= 200
    narrow = on_terminal("list", *OURS, columns=200, term="dumb")
    assert "CTIME" in narrow.lines[0] and "\x1b" not in narrow.text


def test_columns_variable_wins(segments):
    """$COLUMNS, as util-linux reads it, over the terminal's own size."""
    screen = on_terminal("list", columns=200, env={"COLUMNS": "60"})
    assert_fits(screen, 60, allowed_long=["posix:/" + LONG])
    assert "CTIME" not in screen.lines[0]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("args", [("list", "-p"), ("list", "-u"), ("list", "-A"), ("list", "-u", "-A")])
def test_other_list_forms_fit(segments, columns, args):
    screen = on_terminal(*args, *OURS, columns=columns)
    assert screen.code == 0, screen.err
    assert_fits(screen, columns, allowed_long=["posix:/" + LONG])
    if "-u" not in args:
        rows = assert_rows(table_rows(screen))
        for address in addresses(segments):
            assert sum(1 for line in rows if line.split(" ", 1)[0] == address) == 1


def test_list_p_keeps_the_processes(segments):
    """-p asks for PROCESSES: at 80 columns it is cut if need be, never dropped."""
    screen = on_terminal("list", "-p", "-k", "sysv", columns=80)
    assert "PROCESSES" in screen.lines[0]
    rows = table_rows(screen)
    mine = [line for line in rows if line.split(" ", 1)[0] in addresses(segments)]
    assert len(mine) == 2
    assert all(f"{segments[0]['pid']}:" in line for line in mine)  # pid:comm, perhaps cut after the pid


@pytest.mark.parametrize("columns", WIDTHS)
def test_notruncate_gives_whole_cells(segments, columns):
    screen = on_terminal("list", "-W", "-o", "ADDRESS,NAME,SIZE,STATUS,CTIME", columns=columns)
    assert "…" not in screen.text
    line = next(line for line in screen.lines if line.startswith(f"posix:/{LONG}"))
    assert line.split()[1] == f"/{LONG}"  # NAME whole, even where the line is wider than the terminal
    assert len(screen.lines[0].split()) == 5


def test_named_columns_are_cut_not_dropped(segments):
    screen = on_terminal("list", "-o", "ADDRESS,NAME,CPID,LPID,ATIME,DTIME,CTIME", columns=60)
    assert screen.lines[0].split() == ["ADDRESS", "NAME", "CPID", "LPID", "ATIME", "DTIME", "CTIME"]
    assert ellipsis_columns(screen) <= {"NAME"}


def test_squeeze_before_drop(segments):
    """At 120 columns the POSIX table keeps every column but cuts NAME with '…'; at 60
    columns the least important columns go too, ADDRESS stays whole."""
    full = on_terminal("list", "-k", "posix", "-W", columns=200)
    assert "…" not in full.text and max(len(line.rstrip()) for line in full.lines) > 120
    at120 = on_terminal("list", "-k", "posix", columns=120)
    assert at120.lines[0].split() == full.lines[0].split()
    assert ellipsis_columns(at120) == {"NAME"}
    line = next(line for line in table_rows(at120) if line.startswith(f"posix:/{LONG} "))
    assert line.split()[1].endswith("…") and len(line.split()[1]) >= 8
    at60 = on_terminal("list", "-k", "posix", columns=60)
    kept = at60.lines[0].split()
    assert kept[0] == "ADDRESS" and set(kept) < set(full.lines[0].split()) and "SIZE" in kept
    assert f"posix:/{LONG}" in at60.lines  # whole, on a line of its own: it takes no column away


@pytest.mark.parametrize("columns", WIDTHS)
def test_stat_fits(segments, columns):
    address = f"posix:/{LONG}"
    screen = on_terminal("stat", address, columns=columns)
    assert screen.code == 0, screen.err
    assert_fits(screen, columns, allowed_long=[address, f"/{LONG}"])  # the name is the address's tail
    assert sum(1 for line in screen.lines if address in line) == 1
    beside = len("namespace ") + len(address) <= columns  # else whole on the next line, indented
    assert screen.lines[:1 if beside else 2] == ([f"address   {address}"] if beside else ["address", f"  {address}"])
    assert "" not in screen.lines  # no blank line between fields


@pytest.mark.parametrize("term", ["xterm", "dumb"])
@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("args", [("limits",), ("limits", "-A")])
def test_limits_fit_and_keep_names(columns, term, args):
    screen = on_terminal(*args, columns=columns, term=term)
    assert screen.code == 0, screen.err
    assert_fits(screen, columns)
    names = [line.split()[0] for line in screen.lines if line.strip()]
    for name in ("shmmax", "shmall_bytes", "shm_rmid_forced", "dev_shm_committed", "hugetlb_shm_group"):
        assert name in names  # never cut: `limits set` takes these
    cut = {n for n in names if n.endswith("…")}
    assert not cut


def test_limits_cut_what_first():
    wide = on_terminal("limits", columns=200)
    narrow = on_terminal("limits", columns=60)
    assert "DESCRIPTION" in narrow.text and "…" in narrow.text  # lsipc -g's name for it (WHAT before)
    assert "…" not in wide.text
    for line in narrow.lines:
        if "…" in line:
            assert line.rstrip().endswith("…")  # only the last column, DESCRIPTION, is cut


# --- times ---

def _sysv_times(shmid: int) -> dict:
    with open("/proc/sysvipc/shm") as f:
        head = f.readline().split()
        for line in f:
            row = dict(zip(head, line.split()))
            if int(row["shmid"]) == shmid:
                return {k: int(row[k]) for k in ("atime", "dtime", "ctime")}
    raise LookupError(shmid)


def test_time_formats_on_a_real_segment(segments):
    sysv = next(o for o in segments if o["kind"] == "sysv")
    epoch = _sysv_times(sysv["shmid"])["ctime"]
    tm = time.localtime(epoch)
    zone = time.strftime("%z", tm)
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", tm) + zone[:3] + ":" + zone[3:]
    full = time.strftime("%a %b %e %H:%M:%S %Y ", tm) + tm.tm_zone
    short = time.strftime("%H:%M", tm)  # made just now: today
    address = f"sysv:{sysv['shmid']}"
    pipe = lambda *a: subprocess.run([*shmctl_cmd(), *a], capture_output=True, text=True,  # noqa: E731
                                     env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE))).stdout
    def listed(*args):
        return [line.split() for line in pipe("list", "-n", "-o", "ADDRESS,CTIME", *args).splitlines()]
    assert [address, iso] in listed()  # on a pipe: iso
    assert [address, iso] in listed("--time-format", "iso")
    assert [address, short] in listed("--time-format", "short")
    assert [address, full.replace(" ", "\\x20")] in listed("--time-format", "full")  # a plain cell escapes spaces
    assert f"ctime:     {iso}" in pipe("stat", address)
    terminal = on_terminal("list", "-o", "ADDRESS,CTIME", columns=100)
    assert f"{address} " in terminal.text and any(
        line.split() == [address, short] for line in terminal.lines)  # terminal: short
    detail = on_terminal("stat", address, columns=100)
    assert any(line.split(None, 1) == ["ctime", full] for line in detail.lines)  # stat: full, with the zone
    assert any(line.split() == ["ctime", iso] for line in on_terminal("stat", address, "--time-format", "iso",
                                                                      columns=100).lines)
    data = json.loads(pipe("list", "--json"))
    mine = next(s for s in data["segments"] if s["address"] == address)
    assert mine["ctime"] == iso  # JSON: always ISO 8601 with the offset (--time-format with it: exit 2)


def test_short_times_follow_lsipc():
    now = time.time()
    this_year = time.localtime(now)
    assert format_time(now, form="short") == time.strftime("%H:%M", this_year)
    if this_year.tm_yday > 2:
        earlier = now - 2 * 86400
        assert format_time(earlier, form="short") == time.strftime("%b%d", time.localtime(earlier))
    year_ago = now - 400 * 86400
    assert format_time(year_ago, form="short") == time.strftime("%Y-%b%d", time.localtime(year_ago))
    assert format_time(0, form="short") is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d", format_time(1700000000))


# --- sizes ---

@pytest.mark.parametrize("n,text", [
    (None, "-"), (0, "0B"), (512, "512B"), (1023, "1023B"), (1024, "1KiB"), (1536, "1.5KiB"), (4096, "4KiB"),
    (4095, "4KiB"), (1 << 20, "1MiB"), (3 << 19, "1.5MiB"), (2 << 30, "2GiB"), (3 << 29, "1.5GiB"),
    ((1 << 20) - 1, "1MiB"), (1 << 40, "1TiB"), (5 << 50, "5PiB"), (1 << 60, "1EiB"),
])
def test_format_size_binary(n, text):
    assert format_size(n) == text


@pytest.mark.parametrize("n", [512, 4096, 1536, 3 << 19, 2 << 30, 1 << 40])
def test_human_sizes_parse_back(n):
    assert parse_size(format_size(n)) == n
    assert format_size(n, exact=True) == str(n)


def test_sizes_on_terminal_pipe_and_human(segments):
    sysv = next(o for o in segments if o["key"] == 0x5eed1101)
    address = f"sysv:{sysv['shmid']}"
    env = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))
    pipe = subprocess.run([*shmctl_cmd(), "list", "-n", "-o", "ADDRESS,SIZE"], capture_output=True, text=True,
                          env=env).stdout
    human = subprocess.run([*shmctl_cmd(), "list", "-n", "-o", "ADDRESS,SIZE", "--human"], capture_output=True,
                           text=True, env=env).stdout
    assert any(line.split() == [address, str(1 << 20)] for line in pipe.splitlines())
    assert any(line.split() == [address, "1MiB"] for line in human.splitlines())
    screen = on_terminal("list", "-o", "ADDRESS,SIZE", columns=80)
    assert any(line.split() == [address, "1MiB"] for line in screen.lines)
    exact = on_terminal("list", "-b", "-o", "ADDRESS,SIZE", columns=80)
    assert any(line.split() == [address, str(1 << 20)] for line in exact.lines)
