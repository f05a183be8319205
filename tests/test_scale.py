"""Listing at scale (issue 13): `list --json` streams (32000 SysV segments in a child IPC
namespace, with the child's peak RSS from getrusage), the streamed JSON is the reference
text chunk boundaries and all, and the maps fast path finds exactly what a line-by-line
parse finds, on captured text and on every real process."""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from conftest import HERE, ROOT

CHECKOUT = os.path.dirname(HERE)
SEGMENTS = 32000
RSS_LIMIT_MIB = 60

# A child in a new IPC namespace makes SEGMENTS segments, runs `shmctl list --kind sysv --json`
# as its own child (so RUSAGE_CHILDREN's ru_maxrss is that command's alone), compares the
# rows with /proc/sysvipc/shm and prints one JSON line. The namespace, and every segment in
# it, ends with the child.
CHILD = textwrap.dedent("""
    import ctypes, json, os, resource, subprocess, sys, tempfile
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/sys/kernel/shmmni", "w") as f:
        f.write("32768")
    n = int(sys.argv[1])
    for i in range(n):
        if libc.shmget(0x51000000 + i if i % 2 else 0, 4096, 0o1640) < 0:
            sys.exit(f"shmget: {os.strerror(ctypes.get_errno())}")
    with tempfile.TemporaryFile() as out:
        code = subprocess.run([sys.executable, "-m", "shmctl_cli", "list", "--kind", "sysv", "--json"],
                              stdout=out).returncode
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out.seek(0)
        data = json.load(out)
    with open("/proc/sysvipc/shm") as f:
        header, *rows = [line.split() for line in f]
    col = {name: i for i, name in enumerate(header)}
    kernel = sorted((int(r[col["shmid"]]), int(r[col["key"]]) & 0xffffffff, int(r[col["size"]]),
                     int(r[col["perms"]], 8) & 0o777, int(r[col["nattch"]]), int(r[col["cpid"]])) for r in rows)
    listed = sorted((s["id"], s["key"], s["size"], int(s["perms"], 8), s["nattch"], s["cpid"])
                    for s in data["segments"])
    print(json.dumps({"code": code, "peak_kib": peak_kib, "rows": len(data["segments"]),
                      "same": kernel == listed, "kernel_rows": len(kernel),
                      "addresses": len({s["address"] for s in data["segments"]})}))
""")


@pytest.mark.skipif(not ROOT, reason="a child IPC namespace with shmmni raised needs root")
def test_32000_segments_list_json_streams_in_bounded_memory():
    env = dict(os.environ, PYTHONPATH=CHECKOUT)
    proc = subprocess.run(["unshare", "--ipc", sys.executable, "-c", CHILD, str(SEGMENTS)], cwd=CHECKOUT,
                          env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["code"] == 0
    assert result["rows"] == result["kernel_rows"] == result["addresses"] == SEGMENTS
    assert result["same"], "list --json differs from /proc/sysvipc/shm"
    assert result["peak_kib"] < RSS_LIMIT_MIB * 1024, f"peak RSS {result['peak_kib'] // 1024} MiB"


@pytest.fixture
def varied(hold, unique, tmp_path):
    """Segments whose fields differ row to row: keys, sizes, modes, statuses, names that need
    escaping, a deleted object, and processes attached or not."""
    return hold({"kind": "sysv", "key": unique.key, "size": 8192, "mode": 0o640, "touch": 4096},
                {"kind": "sysv", "key": unique.key + 1, "size": 4096, "mode": 0o600},
                {"kind": "posix", "name": unique.name, "size": 4096, "mode": 0o644, "touch": 4096},
                {"kind": "posix", "name": unique.name + " é\tx\\", "size": 12288},
                {"kind": "memfd", "name": unique.name, "size": 12288},
                {"kind": "anon", "size": 8192},
                {"kind": "file", "path": str(tmp_path / 'we"ird $(x)'), "size": 16384})


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 2048])
def test_streamed_json_is_the_reference_text(varied, monkeypatch, chunk):
    """Every chunk size gives exactly json.dumps(indent=2) of the per-segment dicts (the
    non-streamed reference), with and without processes and for -o columns."""
    from shmctl_cli import kinds, render
    from shmctl_cli.fields import Style
    from shmctl_cli.render import json_text
    monkeypatch.setattr(json_text, "CHUNK", chunk)
    inv = kinds.collect(["sysv", "posix", "mmap"], kinds.View(), processes=True)
    assert len(inv.segments) >= 7
    for style in (Style(exact_sizes=True), Style(exact_sizes=True, numeric_ids=True)):
        for processes in (True, False):
            for columns in (None, ["ADDRESS", "PROCESSES", "KEY"], ["NAME", "SIZE", "STATUS"], ["UID"]):
                pieces = list(render.inventory_json_chunks(inv, style, processes, None, columns))
                reference = render.to_json({
                    "segments": render.segment_dicts(inv.segments, style, processes, columns),
                    "hidden_processes": inv.hidden_processes, "not_segments": inv.skipped})
                assert "".join(pieces) == reference, (processes, columns)
                if columns is None and chunk < len(inv.segments):
                    assert len(pieces) > 3  # written a chunk at a time


def test_streamed_json_status_words_match_segment_status(varied):
    """STATUS comes from the column's cells in the stream: the same words as Segment.status."""
    from shmctl_cli import kinds, render
    from shmctl_cli.fields import Style
    inv = kinds.collect(["sysv", "posix", "mmap"], kinds.View(), processes=False)
    inv.segments[0].dest = inv.segments[0].locked = True
    inv.segments[-1].hugetlb = None
    inv.segments[-1].orphan, inv.segments[-1].orphan_unsure = "gone", True
    data = json.loads(render.inventory_json(inv, Style(), False))
    assert [s["status"] for s in data["segments"]] == [s.status for s in inv.segments]


def test_list_json_command_streams_the_same_document(varied):
    from conftest import run
    r = run("list", "--json", "-p")
    assert r.code == 0, r
    segments = r.json()["segments"]
    assert {s["address"].split(":")[0] for s in segments} >= {"sysv", "posix", "mmap"}
    assert varied.pid in {p["pid"] for s in segments for p in s.get("processes", [])}


# --- the maps fast path ---

LONG = "/" + "d" * 200 + "/" + "x" * 255
MAPS_CASES = {  # name: text (the number of shared lines in it is in SHARED_LINES)
    "private only": b"55d0c0a00000-55d0c0a01000 r--p 00000000 fe:00 131 /usr/bin/cat\n"
                    b"7ffd1e9f0000-7ffd1e9f2000 r-xp 00000000 00:00 0                          [vdso]\n",
    "empty": b"",
    "deleted": b"7fef42ac3000-7fef42ac5000 rw-s 00000000 00:01 648906                     /dev/zero (deleted)\n",
    "spaces in path": b"7fef43900000-7fef43901000 rw-s 00000000 00:28 5                          /dev/shm/my seg  x \n",
    "memfd": b"7f0000000000-7f0000001000 rw-s 00000000 00:01 77                         /memfd:a b (deleted)\n",
    "sysv": b"7fef43941000-7fef43942000 rw-s 00000000 00:01 32769                      /SYSVdeadbeef (deleted)\n",
    "huge path": f"7f0000000000-7f0000001000 r--s 00001000 fe:00 12   {LONG}\n".encode(),
    "no newline at end": b"7f0000000000-7f0000001000 rw-s 00000000 00:01 9 /dev/zero (deleted)",
    "first line, no path": b"7f0000000000-7f0000001000 rw-s 00000000 00:01 9\n00400000-00401000 r-xp 0 0:0 0\n",
    "forged perms in a private path": b"7f0000000000-7f0000001000 rw-p 00000000 fe:00 3     /tmp/a rw-s 00000000 b\n"
                                      b"7f0000001000-7f0000002000 r--s 00000000 fe:00 4     /tmp/b\n",
    "forged perms in a shared path": b"7f0000000000-7f0000001000 rw-s 00000000 fe:00 3     /tmp/x rw-s 1 00:01 2 y\n",
    "s then space in paths": b"7f0000000000-7f0000001000 r--p 00000000 fe:00 3     /libs a/bs \n"
                             b"7f0000001000-7f0000002000 rw-s 00000000 00:01 4     /dev/zero (deleted)\n",
    "escaped newline": b"7fef43970000-7fef43971000 rw-s 00000000 fe:00 99                         /tmp/new\\012line\n",
    "anon inode": b"7fef43960000-7fef43961000 rw-s 00000000 00:0e 1234                       anon_inode:[io_uring]\n",
    "exec shared, 8-digit addresses": b"00400000-00401000 r-xs 00000000 fe:00 5 /opt/x\n",
    "not utf-8": b"7f0000000000-7f0000001000 rw-s 00000000 00:28 6                          /dev/shm/\xff\xfe\n",
}


SHARED_LINES = {"private only": 0, "empty": 0}


def _fields(mappings):
    return [(m.start, m.end, m.perms, m.offset, m.dev, m.inode, m.path) for m in mappings]


@pytest.mark.parametrize("case", sorted(MAPS_CASES))
def test_maps_fast_path_is_the_slow_parse(case):
    from shmctl_cli.procfs import maps
    text = MAPS_CASES[case]
    fast, slow = _fields(maps.parse_shared_maps(text)), _fields(maps.parse_shared_maps_slow(text))
    assert fast == slow
    assert len(fast) == SHARED_LINES.get(case, 1)


def test_maps_fast_path_on_tricky_lines():
    from shmctl_cli.procfs import maps
    found = maps.parse_shared_maps(b"".join(MAPS_CASES[c] if MAPS_CASES[c].endswith(b"\n") else MAPS_CASES[c] + b"\n"
                                            for c in sorted(MAPS_CASES)))
    paths = [m.path for m in found]
    assert "/dev/shm/my seg  x " in paths and "/memfd:a b (deleted)" in paths and LONG in paths
    assert "/tmp/a rw-s 00000000 b" not in paths and "/tmp/b" in paths
    assert paths.count("/tmp/x rw-s 1 00:01 2 y") == 1
    assert "/tmp/new\nline" in paths and "/SYSVdeadbeef (deleted)" in paths
    assert os.fsencode([p for p in paths if p.startswith("/dev/shm/\udcff")][0]) == b"/dev/shm/\xff\xfe"


def test_maps_fast_path_on_every_real_process(hold, unique, tmp_path):
    """Every process this test may read, ours with each kind of shared mapping among them."""
    from shmctl_cli.procfs import maps
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096}, {"kind": "posix", "name": unique.name, "size": 4096},
             {"kind": "memfd", "name": unique.name + " x", "size": 4096}, {"kind": "anon", "size": 4096},
             {"kind": "file", "path": str(tmp_path / "f (deleted) rw-s 0"), "size": 4096})
    compared = 0
    for pid in maps.list_pids("/proc"):
        try:
            with open(f"/proc/{pid}/maps", "rb") as f:
                text = f.read()
        except OSError:
            continue
        assert _fields(maps.parse_shared_maps(text)) == _fields(maps.parse_shared_maps_slow(text)), pid
        compared += 1
        if pid == h.pid:
            assert len(maps.parse_shared_maps(text)) >= 5
    assert compared >= 2


def test_plain_table_written_in_pieces_is_the_whole_table(varied, monkeypatch):
    from shmctl_cli import kinds, render
    from shmctl_cli.fields import Style, default_columns
    inv = kinds.collect(["sysv", "posix", "mmap"], kinds.View(), processes=True)
    columns = default_columns(["sysv", "posix", "mmap"]) + ["PROCESSES"]
    whole = render.plain_table(inv.segments, columns, Style(exact_sizes=True))
    monkeypatch.setattr(render, "PLAIN_CHUNK", 2)
    pieces = list(render.plain_table_chunks(inv.segments, columns, Style(exact_sizes=True)))
    assert len(pieces) > 2 and "".join(pieces) == whole
    assert whole.count("\n") == len(inv.segments) + 1
