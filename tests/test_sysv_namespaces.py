"""SysV segments across IPC namespaces, on real namespaces made by the tests: every SysV call
in the View's namespace, addresses that carry it, and attachments matched to the namespace of
the mapping (kinds/sysv/namespaces.py), not to the process's current one.

Every namespace here is a child's (unshare in a child process): it ends, with its segments,
when the child exits. Nothing is made in the session's own IPC namespace."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ROOT, run, stop_child

pytestmark = pytest.mark.skipif(not ROOT, reason="namespaces need root")

# A child driven line by line: each command on stdin answers one JSON line; EOF ends it.
CHILD = r"""
import ctypes, json, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
def ok(value):
    if value in (-1, None) or value == ctypes.c_void_p(-1).value:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return value
def ns():
    return os.stat("/proc/self/ns/ipc").st_ino
for line in sys.stdin:
    cmd, *args = line.split()
    try:
        if cmd == "unshare":
            ok(0 if libc.unshare(0x08000000) == 0 else -1)
            out = {"ns": ns()}
        elif cmd == "setns":
            fd = os.open(f"/proc/{args[0]}/ns/ipc", os.O_RDONLY)
            ok(0 if libc.setns(fd, 0x08000000) == 0 else -1)
            os.close(fd)
            out = {"ns": ns()}
        elif cmd == "create":
            key, size = int(args[0], 0), int(args[1])
            key = key - (1 << 32) if key > 0x7FFFFFFF else key
            out = {"shmid": ok(libc.shmget(key, size, 0o1000 | 0o2000 | 0o600))}
        elif cmd == "attach":
            out = {"start": ok(libc.shmat(int(args[0]), None, 0))}
        elif cmd == "shmids":
            rows = open("/proc/sysvipc/shm").read().splitlines()[1:]
            out = {"shmids": [int(r.split()[1]) for r in rows]}
        elif cmd == "sysctl":
            with open(f"/proc/sys/kernel/{args[0]}", "w") as f:
                f.write(args[1])
            out = {}
        elif cmd == "peek":
            out = {"byte": ctypes.string_at(int(args[0]), 1).hex()}
        else:
            out = {"error": "unknown"}
    except OSError as exc:
        out = {"error": str(exc)}
    print(json.dumps(out), flush=True)
"""


class Child:
    """A python process whose IPC namespace and segments the test drives."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.pid = self.proc.pid

    def __call__(self, *words):
        self.proc.stdin.write(" ".join(map(str, words)) + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        assert "error" not in answer, (words, answer)
        return answer

    def close(self):
        stop_child(self.proc)


@pytest.fixture
def child():
    """child() starts a process in the session's namespaces; all of them exit at teardown, and
    their namespaces (with every segment in them) end with them."""
    children = []

    def start():
        c = Child()
        children.append(c)
        return c

    yield start
    for c in children:
        c.close()
    for c in children:
        assert c.proc.wait(10) is not None


@pytest.fixture
def views():
    """Views from other IPC namespaces, siblings of one from this process's own (whose addresses
    are the short ones). enter_ipc setns's this very process: it goes home at the end."""
    from shmctl_cli.system import View
    home = View()
    assert home.host.own["ipc"] == os.stat("/proc/self/ns/ipc").st_ino  # read before any setns
    yield home.sibling
    home.enter_ipc()
    assert os.stat("/proc/self/ns/ipc").st_ino == home.ipc_ns


def in_new_namespace(child, *segments, attach=True):
    """A child in a fresh IPC namespace holding segments (key, size), attached unless not."""
    c = child()
    c.ns = c("unshare")["ns"]
    c.shmids = []
    for key, size in segments:
        shmid = c("create", key, size)["shmid"]
        c.shmids.append(shmid)
        if attach:
            c("attach", shmid)
    return c


def sysv(view, shmid):
    from shmctl_cli.kinds import sysv as sysv_kind
    segments = {s.id: s for s in sysv_kind.collect(view, processes=True)}
    return segments[shmid]


def attached(seg):
    return sorted((a.pid, a.unsure) for a in seg.attachments)


KEY_A, KEY_B = 0x5E5A0001, 0x5E5A0002


def test_fresh_namespaces_number_from_zero(child):
    a = in_new_namespace(child, (KEY_A, 4096), (0, 4096))
    b = in_new_namespace(child, (KEY_B, 4096))
    assert a.ns != b.ns
    assert a.shmids == [0, 1] and b.shmids == [0]  # the first shmid of a fresh namespace is 0
    assert a("shmids")["shmids"] == [0, 1] and b("shmids")["shmids"] == [0]


@pytest.mark.parametrize("same_key", [False, True])
def test_same_shmid_in_two_namespaces_never_mixes(child, views, same_key):
    a = in_new_namespace(child, (KEY_A, 4096))
    b = in_new_namespace(child, (KEY_A if same_key else KEY_B, 4096))
    view_a, view_b = views(a.pid), views(b.pid)
    seg_a, seg_b = sysv(view_a, 0), sysv(view_b, 0)
    assert seg_a.key == KEY_A and seg_b.key == (KEY_A if same_key else KEY_B)
    assert attached(seg_a) == [(a.pid, False)] and attached(seg_b) == [(b.pid, False)]
    assert seg_a.namespace == a.ns and seg_b.namespace == b.ns
    assert seg_a.address == f"sysv@ipc:{a.ns}:0" and seg_b.address == f"sysv@ipc:{b.ns}:0"


def _moved(child, key_a=KEY_A, key_c=KEY_A, size=4096):
    """A (a fresh namespace with segment 0, nobody attached); M attaches A's 0, then moves to a
    fresh namespace C where it makes C's own segment 0 (key_c, nattch 0)."""
    a = in_new_namespace(child, (key_a, size), attach=False)
    m = child()
    m("setns", a.pid)
    m.start = m("attach", 0)["start"]
    m.ns = m("unshare")["ns"]
    assert m("create", key_c, size)["shmid"] == 0
    return a, m


@pytest.mark.parametrize("key_c", [KEY_A, KEY_B])
def test_attached_then_moved_counts_where_it_attached(child, views, key_c):
    a, m = _moved(child, key_c=key_c)
    view_a = views(a.pid)
    seg_a = sysv(view_a, 0)
    assert seg_a.nattch == 1 and [at.pid for at in seg_a.attachments] == [m.pid]
    from shmctl_cli.kinds.sysv.namespaces import Matcher
    # certain where every VMA of the host is visible (the count decides); else marked unsure
    assert seg_a.attachments[0].unsure is not Matcher(view_a).full_view
    seg_c = sysv(views(m.pid), 0)  # same shmid, same size (and key): M's mapping is not C's
    assert seg_c.nattch == 0 and seg_c.attachments == []


def test_moved_holder_is_listed_and_named_by_rm(child):
    a, m = _moved(child)
    r = run("--ns", a.pid, "list", "-m", "--output-all", "--json")
    assert r.code == 0, r
    rows = [s for s in r.json()["segments"] if s["id"] == 0] if isinstance(r.json(), dict) else \
        [s for s in r.json() if s["id"] == 0]
    assert [p["pid"] for p in rows[0]["processes"]] == [m.pid]
    r = run("--ns", a.pid, "rm", "--dry-run", "sysv:0")
    assert r.code == 5 and f"pid {m.pid} (python" in r.err and "not visible" not in r.err, r
    r = run("--ns", m.pid, "list", "-m", "--output-all", "--json")  # C's own 0: not attached by M
    rows = [s for s in (r.json()["segments"] if isinstance(r.json(), dict) else r.json()) if s["id"] == 0]
    assert rows[0]["nattch"] == 0 and not rows[0]["processes"]


def test_file_handles_tell_apart_segments_alike_in_key_and_size(child, views):
    """IPC_PRIVATE, same size, same shmid: only the file handles differ. A's 0 is attached by
    PA and by M, who then moved into B; B's 0 by PB."""
    pa = in_new_namespace(child, (0, 4096))
    pb = in_new_namespace(child, (0, 4096))
    m = child()
    m("setns", pa.pid)
    m("attach", 0)
    m("setns", pb.pid)
    seg_a, seg_b = sysv(views(pa.pid), 0), sysv(views(pb.pid), 0)
    assert (seg_a.nattch, seg_b.nattch) == (2, 1)
    assert attached(seg_a) == sorted([(pa.pid, False), (m.pid, False)])
    assert attached(seg_b) == [(pb.pid, False)]


def test_file_handle_is_per_segment(child):
    """The kernel fact the matching rests on: one segment, one handle; another shmid-0 segment
    of another namespace, another handle (a random generation)."""
    from shmctl_cli.syscalls import file_handle
    from shmctl_cli.procfs.maps import parse_shared_maps
    pa = in_new_namespace(child, (0, 4096))
    pa("attach", 0)  # a second attachment of the same segment
    pb = in_new_namespace(child, (0, 4096))

    def handles(pid):
        with open(f"/proc/{pid}/maps", "rb") as f:
            maps = [m for m in parse_shared_maps(f.read()) if m.path.startswith("/SYSV")]
        return [file_handle(f"/proc/{pid}/map_files/{m.start:x}-{m.end:x}") for m in maps]

    first, second = handles(pa.pid)
    (other,) = handles(pb.pid)
    assert first and first == second and other and other != first
    # type 1 (FILEID_INO32_GEN): the generation, random per inode, then the inode, here shmid 0
    assert first[:4] == other[:4] == (1).to_bytes(4, sys.byteorder)
    assert first[8:12] == other[8:12] == bytes(4) and first[4:8] != other[4:8]


def test_unsure_is_said_not_guessed(child, views):
    """Two processes of B each map a shmid-0 segment alike in key and size, one B's and one
    brought from A; B's has nattch 1. Without a count to choose, both are kept and marked."""
    pa = in_new_namespace(child, (0, 4096), attach=False)
    m = child()
    m("setns", pa.pid)
    m("attach", 0)
    pb = in_new_namespace(child, (0, 4096))
    m("setns", pb.pid)
    seg_b = sysv(views(pb.pid), 0)
    assert {a.pid for a in seg_b.attachments} == {pb.pid, m.pid}
    assert all(a.unsure for a in seg_b.attachments)
    from shmctl_cli.fields import attachment_dict, _processes
    assert _processes(seg_b.attachments, None).count("?") == 2
    assert attachment_dict(seg_b.attachments[0])["namespace_certain"] is False


def test_qualified_address_works_in_every_command(child, tmp_path):
    b = in_new_namespace(child, (KEY_B, 4096), attach=False)
    address = f"sysv@ipc:{b.ns}:0"
    r = run("stat", address, "--json")
    assert r.code == 0, r
    src = tmp_path / "data"
    src.write_bytes(b"Z")
    assert run("write", address, str(src)).code == 0
    r = run("read", address, "--length", "1", "-o", "-", binary=True)
    assert r.code == 0 and r.out == b"Z", r
    r = run("rm", address)
    assert r.code == 0 and address in r.out, r
    assert b("shmids")["shmids"] == []


def test_create_and_limits_in_another_namespace(child, views):
    b = in_new_namespace(child, (KEY_B, 4096), attach=False)
    b("sysctl", "shmmni", "77")
    from shmctl_cli.limits.collect import collect
    limits = collect(views(b.pid))
    assert limits.resources["shmmni"].limit == 77 and limits.resources["shmmni"].used == 1
    from shmctl_cli.kinds.sysv.create import SysvRequest, create
    made = create(SysvRequest(KEY_A, 4096), views(b.pid))  # from a View of another namespace
    assert made.address == f"sysv@ipc:{b.ns}:1"
    r = run("--ns", b.pid, "create", "sysv", "--size", "4096")  # --ns: B is where the run looks from
    assert r.code == 0 and r.out.strip() == "sysv:2", r
    assert b("shmids")["shmids"] == [0, 1, 2]
