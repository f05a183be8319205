"""shmctl watch --events: JSON lines for real changes made by a process of known pid
(tests/watch_actor.py), read with a deadline; who did it as the kernel tells (fanotify as
root, SysV cpid/lpid); the baseline; hostile names; signals, a closed pipe, --log; bounded
memory over many changes. Pure diffs of snapshots are tested on made-up segments."""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import HERE, ROOT, closing_each, run, shmctl_cmd, stop_child
from shmctl_cli.model import Segment
from shmctl_cli.watch import events as ev
from shmctl_cli.watch.notify import parse_fanotify, parse_inotify

KEYS = ["time", "event", "address", "kind", "name", "size", "owner", "uid", "nattch", "pids", "by"]
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))


class Watch:
    """`shmctl watch --events` as a child; ready once its "watching" line is on stderr."""

    def __init__(self, *args, stdout=subprocess.PIPE, interval="0.2"):
        self.proc = subprocess.Popen([*shmctl_cmd(), "watch", "--events", "--interval", interval, *args],
                                     stdout=stdout, stderr=subprocess.PIPE, env=ENV)
        self.buffer, self.err = b"", b""
        deadline = time.monotonic() + 30
        while b"watching" not in self.err:
            assert time.monotonic() < deadline and self.proc.poll() is None, self.err
            if select.select([self.proc.stderr], [], [], 0.5)[0]:
                self.err += os.read(self.proc.stderr.fileno(), 4096)
        self.seen = []

    def expect(self, event, address=None, timeout=20.0, **fields) -> dict:
        """The first event of that type (and address) from now on, within `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            for e in self.seen:
                if e["event"] == event and (address is None or e["address"] == address) and \
                        all(e.get(k) == v for k, v in fields.items()):
                    self.seen.remove(e)
                    return e
            assert time.monotonic() < deadline, f"no {event} {address} in {self.seen}; {self.err}"
            if select.select([self.proc.stdout], [], [], 0.2)[0]:
                chunk = os.read(self.proc.stdout.fileno(), 65536)
                assert chunk, f"watch ended: {self.proc.wait()} {self.err}"
                self.buffer += chunk
                *lines, self.buffer = self.buffer.split(b"\n")
                self.seen += [json.loads(line) for line in lines]

    def stop(self, signum=signal.SIGINT) -> int:
        self.proc.send_signal(signum)
        code = self.proc.wait(30)
        self.err += self.proc.stderr.read()
        return code

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Actor:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "watch_actor.py")], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.pid = self.proc.pid

    def do(self, *words) -> str:
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line.startswith("ok"), line
        return line[2:].strip()

    def close(self):
        stop_child(self.proc)


@pytest.fixture
def watch():
    yield from closing_each(Watch)


@pytest.fixture
def actor():
    a = Actor()
    yield a
    a.close()


def check_shape(e: dict) -> None:
    keys = KEYS[:6] + (["old_size"] if e["event"] == "resized" else []) + KEYS[6:]
    assert list(e) == keys
    assert e["event"] in ev.CHANGES and e["kind"] in ("sysv", "posix", "mmap")
    assert isinstance(e["size"], int) and isinstance(e["pids"], list) and all(isinstance(p, int) for p in e["pids"])
    assert e["time"][:2] == "20" and e["time"][-6] in "+-"  # ISO 8601 with the offset
    assert e["by"] is None or (list(e["by"]) == ["pid", "comm", "source"] and
                               e["by"]["source"] in ("fanotify", "lpid", "cpid", "scan"))


def fanotify_works() -> bool:
    return ROOT


def test_posix_lifecycle_with_the_actor_named(watch, actor, unique):
    w = watch("-k", "posix")
    name = unique.name.encode().hex()
    address = f"posix:/{unique.name}"
    actor.do("posix-create", name, 4096)
    created = w.expect("created", address)
    assert created["size"] == 4096 and created["name"] == f"/{unique.name}" and created["owner"] == "root"
    actor.do("posix-resize", name, 8192)
    resized = w.expect("resized", address)
    assert (resized["size"], resized["old_size"]) == (8192, 4096)
    actor.do("posix-map", name)
    attached = w.expect("attached", address)
    assert attached["pids"] == [actor.pid] and attached["by"]["source"] == "scan"
    actor.do("posix-unmap", name)
    assert w.expect("detached", address)["pids"] == [actor.pid]
    actor.do("posix-unlink", name)
    removed = w.expect("removed", address)
    for e in (created, resized, attached, removed):
        check_shape(e)
    if fanotify_works():  # the kernel named the process that created, resized and unlinked it
        for e in (created, resized, removed):
            assert e["by"] == {"pid": actor.pid, "comm": "python3" if False else e["by"]["comm"], "source": "fanotify"}
            assert e["by"]["pid"] == actor.pid and e["by"]["comm"] in ("python", "python3", "python3.11")
    assert w.stop(signal.SIGINT) == 130


def test_sysv_attach_detach_mark_and_remove(watch, actor):
    w = watch("-k", "sysv")
    shmid = int(actor.do("sysv-create", 65536))
    address = f"sysv:{shmid}"
    created = w.expect("created", address)
    assert created["by"]["pid"] == actor.pid and created["by"]["source"] == "cpid" and created["name"] is None
    actor.do("sysv-attach", shmid)
    attached = w.expect("attached", address)
    assert attached["nattch"] == 1 and attached["pids"] == [actor.pid]
    assert attached["by"] == {"pid": actor.pid, "comm": attached["by"]["comm"], "source": "lpid"}
    actor.do("sysv-detach", shmid)
    detached = w.expect("detached", address)
    assert detached["nattch"] == 0 and detached["by"]["pid"] == actor.pid
    actor.do("sysv-attach", shmid)
    w.expect("attached", address)
    actor.do("sysv-rmid", shmid)  # IPC_RMID with an attachment left: marked
    marked = w.expect("marked", address)
    assert marked["pids"] == [actor.pid] and marked["by"] is None
    actor.do("sysv-detach", shmid)  # the last detach frees it
    removed = w.expect("removed", address)
    for e in (created, attached, detached, marked, removed):
        check_shape(e)
    assert w.stop(signal.SIGTERM) == 143
    assert b"stopped by SIGTERM" in w.err


def test_baseline_makes_no_events(watch, actor, unique):
    name = (unique.name + "-old").encode().hex()
    actor.do("posix-create", name, 1024)  # exists before the watch starts
    w = watch("-k", "posix")
    actor.do("posix-create", unique.name.encode().hex(), 1024)
    first = w.expect("created")
    assert first["address"] == f"posix:/{unique.name}"
    assert not any(e["address"].endswith("-old") for e in w.seen)


def test_hostile_name_is_printable_and_its_address_works(watch, actor, unique):
    raw = f"{unique.name}-\n\x1b[31mred\x07".encode() + b"\xff"
    w = watch("-k", "posix")
    actor.do("posix-create", raw.hex(), 100)
    e = w.expect("created")
    assert "\n" not in json.dumps(e) and "\x1b" not in e["address"]
    assert e["address"] == f"posix:/{unique.name}-\\x0a\\x1b[31mred\\x07\\xff"
    assert run("stat", e["address"]).code == 0  # accepted back as it was printed
    actor.do("posix-unlink", raw.hex())
    assert w.expect("removed", e["address"])["name"] == e["name"]


def test_closed_pipe_ends_silently_with_141(tmp_path):
    reader, writer = os.pipe()
    w = Watch("-k", "posix", "--log", str(tmp_path / "new.log"), stdout=writer)
    os.close(writer)
    os.close(reader)  # the reader goes away: noticed without waiting for an event
    try:
        assert w.proc.wait(20) == 141
        assert w.proc.stderr.read() == b""
        assert oct((tmp_path / "new.log").stat().st_mode & 0o777) == "0o600"  # a new log: 0600
    finally:
        w.close()


def test_log_appends_the_same_lines(watch, actor, unique, tmp_path):
    log = tmp_path / "events.log"
    log.write_text("earlier\n")
    w = watch("-k", "posix", "--log", str(log))
    actor.do("posix-create", unique.name.encode().hex(), 10)
    e = w.expect("created")
    deadline = time.monotonic() + 10
    while log.read_text().count("\n") < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier" and json.loads(lines[1]) == e
    assert oct(log.stat().st_mode & 0o777) == "0o644"  # an existing log keeps its mode


def test_log_refuses_a_symlink(tmp_path):
    target = tmp_path / "target"
    target.write_text("")
    (tmp_path / "log").symlink_to(target)
    r = run("watch", "--events", "--log", str(tmp_path / "log"))
    assert r.code == 5 and "symbolic link" in r.err and r.err.count("\n") == 1
    assert target.read_text() == ""


@pytest.mark.parametrize("args, words", [
    (["watch"], "stdout is not a terminal (use --events"),
    (["watch", "--events", "-n", "0"], "invalid interval 0"),
    (["watch", "--events", "--sort", "NOPE"], "unknown sort column 'NOPE'"),
])
def test_usage_errors(args, words):
    r = run(*args)
    assert r.code == 2 and words in r.err and r.err.count("\n") == 1, r


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def test_memory_stays_bounded_over_many_changes(watch, unique):
    """Batches of POSIX objects created and removed: after a warm-up, the watcher's RSS and
    its open fds do not grow with the number of changes (events, not time)."""
    w = watch("-k", "posix", "-k", "sysv", interval="0.05")
    pid = w.proc.pid
    fds = len(os.listdir(f"/proc/{pid}/fd"))

    def batch(n: int, i: int) -> None:
        names = [f"/dev/shm/{unique.name}-{i}-{j}" for j in range(n)]
        for path in names:
            with open(path, "wb") as f:
                f.truncate(4096)
        w.expect("created", f"posix:/{unique.name}-{i}-{n - 1}")
        for path in names:
            os.unlink(path)
        w.expect("removed", f"posix:/{unique.name}-{i}-{n - 1}")
        w.seen.clear()

    for i in range(5):
        batch(40, i)
    warm = _rss_kib(pid)
    for i in range(5, 30):
        batch(40, i)
    assert _rss_kib(pid) - warm < 2048, (warm, _rss_kib(pid))
    assert len(os.listdir(f"/proc/{pid}/fd")) == fds


# --- the diff itself, on made-up snapshots ---

def seg(kind="posix", id=5, size=10, **kw):
    address = kw.pop("address", f"sysv:{id}" if kind == "sysv" else f"posix:/n{id}")
    s = Segment(kind, address, id, None, size=size, uid=0, device=None if kind == "sysv" else 7,
                name=None if kind == "sysv" else f"/n{id}", **kw)
    s.attachments = kw.get("attachments", [])
    return s


def events_between(old, new, **ctx):
    return ev.diff(ev.snapshot(old), ev.snapshot(new), ev.Context(1e9, **ctx))


def test_diff_created_removed_resized():
    a, b = seg(id=1), seg(id=2)
    got = events_between([a], [seg(id=1, size=20), b])
    assert [(e["event"], e["address"]) for e in got] == [("created", "posix:/n2"), ("resized", "posix:/n1")]
    assert got[1]["old_size"] == 10 and "old_size" not in got[0]
    assert [e["event"] for e in events_between([a, b], [b])] == ["removed"]


def test_diff_sysv_lpid_names_the_last_operation():
    old = seg("sysv", nattch=1, atime=100, dtime=0, lpid=42)
    new = seg("sysv", nattch=1, atime=100, dtime=200, lpid=43)  # one detached, none attached since
    got = events_between([old], [new], comm=lambda pid: "x")
    assert [e["event"] for e in got] == ["detached"] and got[0]["by"] == {"pid": 43, "comm": "x", "source": "lpid"}
    marked = seg("sysv", nattch=1, atime=100, lpid=42, dest=True)
    assert [e["event"] for e in events_between([old], [marked])] == ["marked"]


def test_diff_unlinked_but_held_is_removed_once():
    held = seg(id=3)
    gone_name = seg(id=3, address="posix:@3", deleted=True)
    assert [e["event"] for e in events_between([held], [gone_name])] == ["removed"]
    assert [e["event"] for e in events_between([gone_name], [])] == ["detached"]


def test_diff_an_unnamed_file_linked_under_its_name_is_created():
    """`shmctl create` makes the file unnamed (O_TMPFILE), sizes it, then links it: a look in
    between sees an unnamed object held by the creator; the name appears as created, whole."""
    building = seg(id=4, size=0, address="posix:@4", deleted=True)
    named = seg(id=4, size=3 << 20, address="posix:/n4")
    got = events_between([building], [named])
    assert [(e["event"], e["address"], e["size"]) for e in got] == [("created", "posix:/n4", 3 << 20)]


def test_create_seen_midway_still_shows_the_name_created(watch, unique, cleanup_shm):
    """Whatever moment the look falls on, the object's name comes as one `created` event of its
    full size (under load a look often lands while create still holds it unnamed)."""
    cleanup_shm[0].append(unique.name)
    w = watch("-k", "posix")
    address = f"posix:/{unique.name}"
    assert run("create", address, "--size", "3M").code == 0
    created = w.expect("created", address)
    assert created["size"] == 3 << 20 and created["name"] == f"/{unique.name}"
    assert run("rm", address).code == 0
    w.expect("removed", address)
    assert w.stop(signal.SIGINT) == 130


def test_parsers_of_notification_buffers():
    import struct
    name = b"obj\x00\x00\x00"
    info = struct.pack("=BBH", 2, 0, 4 + 8 + 8 + 8 + len(name)) + b"\0" * 8 + struct.pack("=Ii", 8, 1) + b"\0" * 8 + name
    meta = struct.pack("=IBBHQii", 24 + len(info), 3, 0, 24, 0x100 | 0x40, -1, 77)
    assert parse_fanotify(meta + info) == [("created", "obj", 77), ("removed", "obj", 77)]
    event = struct.pack("=iIII", 1, 0x200, 0, 16) + b"gone".ljust(16, b"\0")
    assert parse_inotify(event) == [("removed", "gone", 0)]
