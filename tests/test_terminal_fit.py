"""No cell ever folds (issue 11): `list` in its forms, `stat` and the `watch` screen on a real
pseudo-terminal of 60, 80, 100 and 200 columns, over segments of all three kinds with long
addresses: a POSIX name of 60 characters and a file mapped from a path of over 100.

The fold detector reads the screen line by line. A table is its heading, a rule, then per
row either one line starting with the address, or (a long address) the address alone on its
line followed by a line of the row's other cells; a record view is the address, then one
`  COLUMN  value` line per column, a blank line between segments. Any other line (half a
cell, a cell's tail under its column) is a fold. Every line fits the width, unless it is an
address alone that is longer than the whole width. Each of our rows shows every cell of the
columns on the screen whole, or cut with `…` in a column that may be cut; the cells are
those of the pipe's output of the same columns."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

from conftest import HERE, closing_each, run
from shmctl_cli.fields import COLUMNS
from test_terminal import on_terminal
from test_watch import Screen as WatchScreen

WIDTHS = (60, 80, 100, 200)
LONG = "shmctl-fit-orders-book-level2-snapshot-exchange-gw-primary-a"  # 60 characters
ADDRESS = re.compile(r"(sysv|posix|mmap)(@[a-z]+:\d+)?:\S+")
RULE = "─"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
ATTACHED = ("PID", "USER", "RANGE", "PERMS", "OFFSET", "COMMAND")
MANY = "ADDRESS,KIND,NAME,ID,OWNER,GROUP,PERMS,MODE,SIZE,RSS,NATTCH,CPID,LPID,ATIME,CTIME,STATUS,BACKING,PROCESSES"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Segments of the three kinds, held by tests/holder.py: POSIX objects named with 60
    and 9 characters, two keyed SysV segments, a file mapped from a path of over 100
    characters and a memfd. Yields their addresses, and the two long ones."""
    folder = tmp_path_factory.mktemp("fit") / "a-rather-long-directory-name-for-mapped-files"
    folder.mkdir()
    path = str(folder / "data-file-with-a-long-name.bin")
    specs = [{"kind": "posix", "name": f"/{LONG}", "size": 3 << 20, "touch": 4096},
             {"kind": "posix", "name": "/shmctl-fit", "size": 1536},
             {"kind": "sysv", "key": 0x5eed1201, "size": 1 << 20, "mode": 0o640, "touch": 8192},
             {"kind": "sysv", "key": 0x5eed1202, "size": 5 << 20, "mode": 0o600},
             {"kind": "file", "path": path, "size": 1 << 20},
             {"kind": "memfd", "name": "shmctl-fit", "size": 2 << 20}]
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "holder.py"), json.dumps(specs)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.strip() == "ready":
            break
    else:
        raise RuntimeError(proc.stderr.read())
    held = [line.split() for line in run("list", "-n", "-o", "ADDRESS,PROCESSES").out.splitlines()]
    mine = [cells[0] for cells in held if f"{proc.pid}:" in cells[1]]
    assert f"posix:/{LONG}" in mine and f"mmap:{path}" in mine and len(mine) == 6, held
    yield {"addresses": mine, "long": f"posix:/{LONG}", "file": f"mmap:{path}"}
    proc.stdin.close()
    proc.wait(30)


def expected(world, columns, *args) -> dict:
    """Our rows as the pipe prints these columns (sizes and times as a terminal shows them):
    {address: {column: cell}}."""
    out = run("list", *args, "-n", "--human", "--time-format", "short", "-o", ",".join(["ADDRESS", *columns])).out
    rows = {}
    for line in out.splitlines():
        cells = line.split()
        if cells[0] in world["addresses"]:
            rows[cells[0]] = dict(zip(columns, cells[1:]))
    assert set(rows) == set(world["addresses"]), out
    return rows


def whole_or_cut(shown: str, cell: str, column: str) -> bool:
    """The cell itself, or (in a column that may be cut) its beginning and `…`."""
    if shown == cell:
        return True
    return COLUMNS[column].squeeze and shown.endswith("…") and len(shown) >= 2 and cell.startswith(shown[:-1])


def lone(line: str) -> bool:
    return bool(ADDRESS.fullmatch(line))


def read_table(lines: list, width: int, key=ADDRESS, names=COLUMNS) -> tuple:
    """(headings, {address: [cells]}, addresses alone on their line) of a fitted table;
    fails on any line that is not the heading, the rule, a row, or a long address and its cells."""
    heads = lines[0].split()
    assert heads and all(h in names for h in heads), f"heading folded: {lines[0]!r}"
    assert lines[1] and set(lines[1]) == {RULE} and len(lines[1]) <= width, lines[1]
    rows, alone, i = {}, [], 2
    while i < len(lines):
        line = lines[i]
        assert line and not line.startswith(" "), f"line {i} is no row: a fold\n" + "\n".join(lines)
        address = line.split()[0]
        assert key.fullmatch(address), f"line {i} starts with half an address: {line!r}"
        if key.fullmatch(line) and len(heads) > 1:
            follow = lines[i + 1] if i + 1 < len(lines) else ""
            assert follow.startswith(" ") and len(follow) <= width, f"no cells under {address}: {follow!r}"
            rows[address], i = follow.split(), i + 2
            alone.append(address)
            continue
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
        rows[address], i = line.split()[1:], i + 1
    return heads, rows, alone


def read_records(lines: list, width: int) -> dict:
    """{address: {column: value}} of a record view; fails on any line out of its shape."""
    records, i = {}, 0
    while i < len(lines):
        assert lone(lines[i]), f"record {i} does not start with its address: {lines[i]!r}"
        address, fields, i = lines[i], {}, i + 1
        starts = set()
        while i < len(lines) and lines[i]:
            line = lines[i]
            assert len(line) <= width and line.startswith("  ") and not line.startswith("   "), (width, line)
            label, _, value = line[2:].partition(" ")
            assert label in COLUMNS, f"no label: a fold? {line!r}"
            if value.strip():
                starts.add(len(line) - len(value.lstrip()))
                assert " " not in value.strip(), line
            fields[label] = value.strip()
            i += 1
        assert len(starts) <= 1, f"values not lined up under {address}"
        records[address] = fields
        i += 1  # the blank line between records
    return records


def assert_no_fold(screen_lines: list, width: int, world, args=(), columns=None, every_row: bool = True) -> str:
    """The screen is a table or a record view with no folded cell, our rows (`every_row`:
    all of them, else those shown) whole; which of the two it is."""
    lines = [line.rstrip() for line in screen_lines]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > 1 and lines[1].startswith(RULE):
        heads, rows, alone = read_table(lines, width)
        want = expected(world, heads[1:], *args)
        for address, cells in want.items():
            assert address in rows or not every_row, f"{address} not whole on the screen"
            if address not in rows:
                continue
            shown = rows[address]
            assert len(shown) == len(heads) - 1, (address, shown, heads)
            for column, text in zip(heads[1:], shown):
                assert whole_or_cut(text, cells[column], column), (column, text, cells[column])
        for address in alone:  # only a long address stands alone, and the table stays compact
            assert len(address) > width // 2, (address, width)
        assert len(heads) >= 2, "the address took the table over"
        return "table"
    records = read_records(lines, width)
    want = expected(world, columns or [], *args)
    for address, cells in want.items():
        assert set(records[address]) == set(cells), records[address]
        for column, text in cells.items():
            assert whole_or_cut(records[address][column], text, column), (column, records[address][column], text)
    return "records"


LIST_FORMS = [("list",), ("list", "-t"), ("list", "-c"), ("list", "-p"), ("list", "-A"), ("list", "-o", MANY)]


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("args", LIST_FORMS, ids=lambda a: " ".join(a))
def test_list_never_folds(world, args, columns):
    screen = on_terminal(*args, columns=columns)
    assert screen.code == 0, screen.err
    extra = [a for a in args[1:] if a == "-A"]
    form = assert_no_fold(screen.lines, columns, world, extra, MANY.split(",")[1:] if "-o" in args else None)
    if form == "table" and columns < 200:  # the long addresses are whole, alone, and take no column away
        heads, rows, alone = read_table([line.rstrip() for line in screen.lines], columns)
        assert world["file"] in alone
        if columns < 100:
            assert world["long"] in alone
        if args == ("list", "-p"):
            assert "PROCESSES" in heads  # -p asks for it: never dropped for an address
    if "-o" in args:  # the columns named are all there, in one form or the other
        assert form == ("table" if columns == 200 else "records")


@pytest.mark.parametrize("columns", WIDTHS)
def test_output_all_is_a_record_per_segment(world, columns):
    """Every column cannot fit even 200 columns: a record per segment, as lsipc -i, psql -x."""
    screen = on_terminal("list", "--output-all", columns=columns)
    assert screen.code == 0, screen.err
    names = [c for c in COLUMNS if c != "ADDRESS"]
    assert assert_no_fold(screen.lines, columns, world, (), names) == "records"
    wide = on_terminal("list", "--output-all", "-W", columns=columns)  # -W: the wide table, every cell whole
    lines = [line.rstrip() for line in wide.lines]
    assert lines[0].split() == list(COLUMNS) and "…" not in wide.text
    assert sum(1 for line in lines if line.split()[0] in world["addresses"]) == len(world["addresses"])


@pytest.mark.parametrize("columns", WIDTHS)
def test_notruncate_keeps_one_line_per_segment(world, columns):
    screen = on_terminal("list", "-W", columns=columns)
    lines = [line.rstrip() for line in screen.lines]
    heads = lines[0].split()
    want = expected(world, heads[1:])
    mine = [line.split() for line in lines[2:] if line.split()[0] in want]
    assert len(mine) == len(want) and not any(line.startswith(" ") for line in lines)  # no address alone
    for cells in mine:
        assert cells[1:] == [want[cells[0]][h] for h in heads[1:]]  # whole, on the address's line
    assert "…" not in screen.text


def test_pipe_is_one_plain_line_per_segment(world):
    """Pipes do not change: every column, every cell whole, one line per segment."""
    out = run("list").out.splitlines()
    assert out[0].split() == ["ADDRESS", "KIND", "NAME", "ID", "OWNER", "PERMS", "SIZE", "RSS", "NATTCH", "CPID",
                              "LPID", "CTIME", "STATUS"]
    mine = [line for line in out if line.split()[0] in world["addresses"]]
    assert len(mine) == len(world["addresses"]) and "…" not in "".join(out)
    assert all(len(line.split()) == 13 for line in mine)


def stat_fields(address: str) -> list:
    """(label, value) of `stat` on a pipe, sizes and times as on a terminal."""
    fields = []
    for line in run("stat", address, "--human", "--time-format", "full").out.splitlines():
        if line.startswith("processes:"):
            break
        label, _, value = line.partition(":")
        fields.append((label, value.strip()))
    return fields


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("which", ["long", "file"])
def test_stat_never_folds(world, columns, which):
    address = world[which]
    screen = on_terminal("stat", address, columns=columns)
    assert screen.code == 0, screen.err
    lines = [line.rstrip() for line in screen.lines]
    i = 0
    for label, value in stat_fields(address):
        line = lines[i]
        if line == label:  # the value did not fit beside it: whole, on the next line, indented where it can be
            below = lines[i + 1]
            assert below.strip() == value and (below.startswith(" ") or len(value) >= columns - 1), below
            assert len(below) <= columns or below == "  " + value, (below, columns)
            i += 2
        else:
            assert line.split(None, 1) == [label, value] and len(line) <= columns, (line, columns)
            i += 1
    assert lines[i] == "attached processes", lines[i:]
    heads, rows, _ = read_table(lines[i + 1:], columns, re.compile(r"\d+\??"), ATTACHED)
    assert heads[0] == "PID"
    assert len(rows) == 1 and all(whole_or_cut(c, c, "PROCESSES") for c in next(iter(rows.values())))


# --- watch ---

@pytest.fixture
def watch_screen():
    yield from closing_each(WatchScreen)


def last_frame(seen: bytes) -> list:
    """The screen lines of the last whole frame rich's Live drew (from its last cursor home)."""
    text = ANSI.sub("", seen[seen.rfind(b"\x1b[H") + 3:].decode("utf-8", "replace"))
    return text.replace("\r\n", "\n").split("\n")


def unfold_lone(lines: list, width: int) -> list:
    """The live screen folds an address wider than itself at its edge: put it back on one line."""
    out = []
    for line in lines:
        if out and len(out[-1]) == width and lone(out[-1]) and line and not line.startswith(" ") and " " not in line:
            out[-1] += line
        else:
            out.append(line)
    return out


@pytest.mark.parametrize("columns", WIDTHS)
def test_watch_screen_never_folds(world, watch_screen, columns):
    """The live screen fits the table as `list` does: the rows of long addresses take two
    lines, an address wider than the whole screen folds only at its edge, nothing is cut."""
    s = watch_screen(columns=columns, rows=40)
    mark, deadline = 0, time.monotonic() + 30
    while True:  # a frame with the rows of ours (the first look may still be under way)
        mark = s.wait_for(rb"q quit", since=mark)
        frame = [line.rstrip() for line in last_frame(s.seen[:mark])]
        if world["file"] in unfold_lone(frame, columns):
            break
        assert time.monotonic() < deadline, "\n".join(frame)
    s.type(b"q")
    assert s.finish() == 0
    assert all(len(line) <= columns for line in frame)
    footer = next(i for i, line in enumerate(frame) if line.startswith("q quit"))
    table = unfold_lone(frame[1:footer], columns)
    assert assert_no_fold(table, columns, world) == "table"
    assert world["file"] in table  # whole, on its own line


def test_watch_counts_the_lines_of_long_rows(world, watch_screen):
    """On a screen too short for every row, the rows shown, two lines each where the address
    stands alone, leave room for `… N more` and the footer."""
    s = watch_screen("--sort", "address", columns=60, rows=12)
    mark = s.wait_for(rb"q quit")
    frame = [line.rstrip() for line in last_frame(s.seen[:mark])]
    s.type(b"q")
    assert s.finish() == 0
    footer = next(i for i, line in enumerate(frame) if line.startswith("q quit"))
    assert footer < 12 and re.fullmatch(r"… \d+ more \(sorted by ADDRESS\)", frame[footer - 1])
    table = unfold_lone(frame[1:footer - 1], 60)
    assert assert_no_fold(table, 60, world, every_row=False) == "table"
    assert world["file"] in table  # first by address, whole on its own line (two screen lines)


def test_watch_notruncate_keeps_every_column_whole(world, watch_screen):
    """watch -W: no column dropped, no cell cut, each row on one line; the screen crops what
    is wider than itself at its right edge (as watch(1)), it folds nothing."""
    from shmctl_cli.fields import default_columns
    frames = {}
    for flag in ((), ("-W",)):
        s = watch_screen("-k", "sysv", "-k", "posix", *flag, columns=100, rows=30)
        mark = s.wait_for(rb"q quit")
        frames[flag] = [line.rstrip() for line in last_frame(s.seen[:mark])]
        s.type(b"q")
        assert s.finish() == 0
    narrow, wide = frames[()], frames[("-W",)]
    assert "…" in "\n".join(narrow) and world["long"] in narrow  # cut, and the long address alone
    footer = next(i for i, line in enumerate(wide) if line.startswith("q quit"))
    table = wide[1:footer]
    heads = table[0].split()
    assert heads == default_columns(["sysv", "posix"])[:len(heads)] and "…" not in "\n".join(table)
    row = next(line for line in table if line.startswith(world["long"]))
    assert row.split()[1:3] == ["posix", f"/{LONG}"[:len(row.split()[2])]] and len(row) == 100
    assert all(len(line) <= 100 for line in wide) and not any(line.startswith(" ") for line in table[2:])
