"""Issue 12's new surfaces attacked by another user of the host (uid SECOND_UID, `nobody`)
while root runs shmctl: Prometheus series forged through /dev/shm names, a textfile
directory and a --log FILE in directories the attacker writes, rm --plan entries whose
address names another object by apply time, rm --name globs with hostile names, watch
flooded and fed terminal escapes, doctor reading mount points and comms the attacker chose.
Real objects and real processes of the attacker; waits on events, never fixed sleeps."""
import json
import os
import re
import select
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from conftest import (ENV, SECOND_UID, as_user, attacker_python, needs_isolation, python_as, run, shmctl_cmd,
                      stop_child)
from shmctl_cli.address import printable

pytestmark = [needs_isolation, pytest.mark.skipif(os.geteuid() != 0, reason="root against another user")]

HOSTILE = [b'ev"il} 1\n# TYPE shmctl_forged gauge\nshmctl_forged{a="b"} 9', b"back\\slash\\", b"\xff\xfe bad",
           b"esc\x1b]0;PWN\x07\x1b[2J", b"u\xe2\x80\xa8sep", b"cr\rlf", b"} 1\nshmctl_segments{kind=\"posix\"} 99"]

CREATE_NAMES = r"""
import os, sys
for h in sys.argv[1:]:
    fd = os.open(b"/dev/shm/" + bytes.fromhex(h), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
    os.ftruncate(fd, 8192)
    os.close(fd)
"""


def attacker_creates(names):
    """The attacker's own /dev/shm objects, under raw byte names."""
    attacker_python(SECOND_UID, CREATE_NAMES, *(n.hex() for n in names))


@pytest.fixture
def raw_names(unique):
    """Byte names under /dev/shm removed at teardown (cleanup_shm takes text names only)."""
    made = []
    yield made
    for name in made:
        try:
            os.unlink(b"/dev/shm/" + name)
        except FileNotFoundError:
            pass


@pytest.fixture
def attacker_dir():
    """A directory the attacker owns (mode 0755), in /tmp, removed at teardown."""
    path = tempfile.mkdtemp(prefix="shmctl-sec-i12-")
    os.chmod(path, 0o755)
    os.chown(path, SECOND_UID, SECOND_UID)
    yield path
    subprocess.run(["rm", "-rf", "--one-file-system", path], check=True)


@pytest.fixture
def root_file():
    """A file of root's (0600) that nothing may write to or replace."""
    fd, path = tempfile.mkstemp(prefix="shmctl-sec-i12-root-")
    os.write(fd, b"root's secret\n")
    os.close(fd)
    yield path
    os.unlink(path)


def unchanged(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read() == b"root's secret\n"


# --- metrics: label injection ---

def series(text: str):
    from prometheus_client.parser import text_string_to_metric_families
    return [(s.name, tuple(sorted(s.labels.items())), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


def test_hostile_names_are_exactly_their_own_series(raw_names, unique):
    names = [unique.name.encode() + b"-" + h for h in HOSTILE]
    raw_names.extend(names)
    attacker_creates(names)
    r = run("metrics", "--here", "-k", "posix", "--top", "100", binary=True)
    assert r.code == 0, r.err
    text = r.out.decode("utf-8")  # valid UTF-8 whatever bytes the names hold
    check = subprocess.run(["promtool", "check", "metrics"], input=r.out, capture_output=True)
    assert check.returncode == 0, check
    parsed = series(text)
    assert len(parsed) == len({(n, labels) for n, labels, _ in parsed}), "duplicate series"
    from shmctl_cli.metrics import HELP
    assert {n for n, _, _ in parsed} <= set(HELP)  # no family forged
    assert all(line.startswith(("# HELP shmctl_", "# TYPE shmctl_", "shmctl_")) for line in text.splitlines())
    sizes = {dict(labels)["name"]: v for n, labels, v in parsed if n == "shmctl_segment_size_bytes"}
    for name in names:
        shown = printable("/" + os.fsdecode(name))
        assert sizes[shown] == 8192, (shown, sorted(sizes))
    # the forged samples inside names never became samples of their own
    assert not any(n == "shmctl_segments" and v == 99 for n, _, v in parsed)
    # and each address, as the label gives it back, is accepted by stat
    assert run("stat", "posix:" + printable("/" + os.fsdecode(names[0]))).code == 0


# --- metrics --textfile-dir in a directory the attacker owns ---

def plant(kind: str, path: str, target: str) -> None:
    if kind == "hardlink":  # made by root: what fs.protected_hardlinks=0 lets anyone do
        os.link(target, path)
    elif kind == "symlink":
        attacker_python(SECOND_UID, "import os, sys; os.symlink(sys.argv[1], sys.argv[2])", target, path)
    elif kind == "fifo":
        attacker_python(SECOND_UID, "import os, sys; os.mkfifo(sys.argv[1], 0o666)", path)
    elif kind == "own file":
        attacker_python(SECOND_UID, "import sys; open(sys.argv[1], 'w').write('x')", path)


@pytest.mark.parametrize("kind", ["hardlink", "symlink", "fifo", "own file"])
def test_textfile_in_an_attackers_directory_replaces_the_name_and_touches_nothing(attacker_dir, root_file, kind):
    prom = os.path.join(attacker_dir, "shmctl.prom")
    plant(kind, prom, root_file)
    r = run("metrics", "--here", "-k", "sysv", "--textfile-dir", attacker_dir, timeout=60)
    assert r.code == 0 and r.out == "", r
    assert unchanged(root_file) and os.stat(root_file).st_nlink == 1
    st = os.lstat(prom)
    assert stat.S_ISREG(st.st_mode) and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o644
    assert os.listdir(attacker_dir) == ["shmctl.prom"]  # no temp file left
    with open(prom) as f:
        assert any(n == "shmctl_segments" for n, _, _ in series(f.read()))


def test_textfile_dir_through_an_attackers_symlink_is_refused(attacker_dir, tmp_path):
    root_dir = tmp_path / "root-only"
    root_dir.mkdir()
    link = os.path.join(attacker_dir, "textfiles")
    plant("symlink", link, str(root_dir))
    r = run("metrics", "--here", "-k", "sysv", "--textfile-dir", link)
    assert r.code == 5 and "symlink of another user" in r.err and len(r.err.splitlines()) == 1, r
    assert os.listdir(root_dir) == []


# --- watch --log FILE where the attacker writes ---

def log_refused(path: str, why: str) -> None:
    r = run("watch", "--events", "-k", "sysv", "--log", path, timeout=30)
    assert r.code == 5 and why in r.err and len(r.err.splitlines()) == 1, r
    assert r.out == ""


@pytest.mark.parametrize("kind,why", [("hardlink", "it has 2 hard links"), ("symlink", "symbolic link"),
                                      ("fifo", "it is a FIFO"), ("own file", f"owned by uid {SECOND_UID}")])
def test_log_planted_by_the_attacker_is_refused(attacker_dir, root_file, kind, why):
    log = os.path.join(attacker_dir, "watch.log")
    plant(kind, log, root_file)
    log_refused(log, why)
    assert unchanged(root_file)


def test_log_fifo_with_the_attacker_reading_gets_nothing(attacker_dir):
    log = os.path.join(attacker_dir, "watch.log")
    plant("fifo", log, "")
    reader = subprocess.Popen([*python_as(SECOND_UID), "-c", (
        "import os, sys, select\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.read()\n"
        "try:\n    print(len(os.read(fd, 4096)), flush=True)\nexcept BlockingIOError:\n    print(0, flush=True)\n"),
        log], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline() == "ready\n"
        log_refused(log, "it is a FIFO")
        reader.stdin.close()
        assert reader.stdout.readline() == "0\n"  # not one byte reached the attacker
    finally:
        stop_child(reader)


def test_log_directory_through_an_attackers_symlink_is_refused(attacker_dir, tmp_path):
    link = os.path.join(attacker_dir, "logs")
    plant("symlink", link, str(tmp_path))
    log_refused(os.path.join(link, "watch.log"), "symlink of another user")
    assert os.listdir(tmp_path) == []


# --- rm --plan: the address names another object by apply time ---

REUSE = r"""
import ctypes, json, os, subprocess, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
attacker, shmctl, uid = json.loads(sys.argv[1])
for attempt in range(5):
    sid = int(subprocess.run(attacker + ["-c", "import ctypes; l = ctypes.CDLL('libc.so.6'); "
                             "l.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]; "
                             "print(l.shmget(0, 4096, 0o1600))"], capture_output=True, text=True).stdout)
    plan = subprocess.run(shmctl + ["rm", "--orphans", "--user", str(uid), "--dry-run", "--json"],
                          capture_output=True, text=True).stdout
    libc.shmctl(sid, 0, None)  # the attacker's segment goes; a database of root's takes its shmid
    with open("/proc/sys/kernel/shm_next_id", "w") as f:
        f.write(str(sid))
    db = libc.shmget(0x0DB0DB0, 1 << 20, 0o1600)
    ctime = {int(l.split()[1]): int(l.split()[13]) for l in open("/proc/sysvipc/shm").readlines()[1:]}
    entry = json.loads(plan)["plan"][0]
    if db == sid and ctime[db] == entry["identity"]["ctime"]:
        break  # the same shmid and the same ctime second: the plan's identity matches the database
    libc.shmctl(db, 0, None)
else:
    sys.exit("no shmid reused within one second")
with open(sys.argv[2], "w") as f:
    f.write(plan)
os.chmod(sys.argv[2], 0o600)
done = subprocess.run(shmctl + ["rm", "--plan", sys.argv[2], "--yes"], capture_output=True, text=True)
alive = db in {int(l.split()[1]) for l in open("/proc/sysvipc/shm").readlines()[1:]}
print(json.dumps({"code": done.returncode, "err": done.stderr, "alive": alive, "planned": entry}))
"""


def test_plan_of_a_sysv_id_reused_by_roots_segment_in_the_same_second_removes_nothing(tmp_path):
    """shmid and ctime are the same (shm_next_id, as a wrapped sequence or CRIU gives); the
    owner and size the reviewer read are not: left alone, exit 5. In an IPC namespace of its own."""
    attacker = [*python_as(SECOND_UID)]
    argv = json.dumps([attacker, shmctl_cmd(), SECOND_UID])
    done = subprocess.run(["unshare", "--ipc", sys.executable, "-c", REUSE, argv, str(tmp_path / "plan.json")],
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["planned"]["uid"] == SECOND_UID and result["planned"]["size"] == 4096
    assert result["alive"], result
    assert result["code"] == 5 and "another object has that address since the plan was made" in result["err"]


def plan_for(name: str, path) -> str:
    r = run("rm", "--orphans", "--user", SECOND_UID, "--name", name, "--dry-run", "--json", "--force")
    assert r.code == 0, r
    assert [e["address"] for e in r.json()["plan"]] == [f"posix:/{name}"], r.out
    path.write_text(r.out)
    os.chmod(path, 0o600)
    return str(path)


@pytest.mark.parametrize("swap", ["symlink", "link"])
def test_plan_entry_swapped_for_a_link_to_roots_object_removes_nothing(unique, cleanup_shm, tmp_path, swap):
    names, _ = cleanup_shm
    mine, roots = f"{unique.name}-att", f"{unique.name}-root"
    names += [mine, roots]
    with open(f"/dev/shm/{roots}", "xb") as f:  # root's, 0666: the attacker may hard-link it
        f.truncate(4096)
    os.chmod(f"/dev/shm/{roots}", 0o666)
    attacker_creates([mine.encode()])
    plan = plan_for(mine, tmp_path / "plan.json")
    root_st = os.stat(f"/dev/shm/{roots}")
    attacker_python(SECOND_UID, "import os, sys\nos.unlink(sys.argv[2])\n"
                    f"os.{swap}(sys.argv[1], sys.argv[2])", f"/dev/shm/{roots}", f"/dev/shm/{mine}")
    r = run("rm", "--plan", plan, "--yes")
    assert r.code in (3, 5) and "nothing to remove" in r.err, r
    st = os.stat(f"/dev/shm/{roots}")
    assert (st.st_ino, st.st_size) == (root_st.st_ino, 4096)
    assert os.path.lexists(f"/dev/shm/{mine}")  # the attacker's link is theirs: left too


def test_plan_of_a_recreated_name_removes_nothing(unique, cleanup_shm, tmp_path):
    names, _ = cleanup_shm
    mine = f"{unique.name}-again"
    names.append(mine)
    attacker_creates([mine.encode()])
    plan = plan_for(mine, tmp_path / "plan.json")
    attacker_python(SECOND_UID, "import os, sys\nos.unlink(sys.argv[1])\n"
                    "fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)\nos.ftruncate(fd, 8192)",
                    f"/dev/shm/{mine}")
    ino = os.stat(f"/dev/shm/{mine}").st_ino
    r = run("rm", "--plan", plan, "--yes")
    assert r.code == 5 and "another object has that address" in r.err, r
    assert os.stat(f"/dev/shm/{mine}").st_ino == ino


@pytest.mark.parametrize("field,value,why", [("uid", "4242", "wrong type"), ("size", True, "wrong type")])
def test_plan_uid_and_size_of_the_wrong_type_are_usage_errors(field, value, why):
    entry = {"address": "sysv:7", "uid": 0, "size": 1, "identity": {"kind": "sysv", "id": 7, "device": None,
                                                                    "ctime": 1}}
    entry[field] = value
    r = run("rm", "--plan", "-", "--yes", input=json.dumps({"plan": [entry]}))
    assert r.code == 2 and f'"{field}" of sysv:7 is of the wrong type' in r.err and len(r.err.splitlines()) == 1, r


# --- rm --name: globs and hostile names ---

def test_name_glob_matches_hostile_names_exactly_and_the_plan_round_trips(raw_names, unique, tmp_path):
    base = unique.name.encode()
    hostile = [base + b"-[x]\n*", base + b"-?\x1b[2J", base + b"-\xff"]
    bystander = base + b"-x"  # would match `[x]` read as a class: must not be chosen
    raw_names.extend(hostile + [bystander])
    attacker_creates(hostile + [bystander])
    r = run("rm", "--orphans", "--user", SECOND_UID, "--name", f"{unique.name}-[[]x]*", "--dry-run", "--json",
            "--force")
    assert r.code == 0, r
    assert [e["address"] for e in r.json()["plan"]] == ["posix:" + printable("/" + os.fsdecode(hostile[0]))]
    r = run("rm", "--orphans", "--user", SECOND_UID, "--name", f"{unique.name}-*", "--dry-run", "--json", "--force")
    plan = r.json()
    assert sorted(e["address"] for e in plan["plan"]) == sorted("posix:" + printable("/" + os.fsdecode(n))
                                                                 for n in hostile + [bystander])
    assert not any(c in r.out for c in "\x1b\r") and all(json.loads(line) is not None for line in [r.out])
    (tmp_path / "plan.json").write_text(r.out)
    os.chmod(tmp_path / "plan.json", 0o600)
    done = run("rm", "--plan", str(tmp_path / "plan.json"), "--yes")
    assert done.code == 0, done
    assert "\x1b" not in done.out and len(done.out.splitlines()) == 4
    assert not any(os.path.lexists(b"/dev/shm/" + n) for n in hostile + [bystander])


# --- watch: flooded, and fed escapes ---

FLOOD = r"""
import os, sys, time
end, i = time.monotonic() + float(sys.argv[1]), 0
print("go", flush=True)
while time.monotonic() < end:
    path = f"/dev/shm/{sys.argv[2]}-{i % 64}"
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.unlink(path)
    i += 1
print(i, flush=True)
"""


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


def pump(w) -> None:
    """What the watch printed so far, read without waiting more than 0.1 s (its pipe never fills)."""
    if select.select([w.proc.stdout], [], [], 0.1)[0]:
        chunk = os.read(w.proc.stdout.fileno(), 1 << 20)
        assert chunk, f"watch ended: {w.proc.wait()} {w.err}"
        w.buffer += chunk
        *lines, w.buffer = w.buffer.split(b"\n")
        w.seen += [json.loads(line) for line in lines]


def test_watch_flooded_by_the_attacker_stays_bounded_and_live(unique, cleanup_shm):
    from test_events import Watch
    names, _ = cleanup_shm
    w = Watch("-k", "posix", interval="0.2")
    floods = []
    try:
        start = _rss_kib(w.proc.pid)
        floods = [subprocess.Popen([*python_as(SECOND_UID), "-c", FLOOD, "4", f"{unique.name}-f{k}"],
                                   stdout=subprocess.PIPE, text=True) for k in range(2)]
        assert all(f.stdout.readline() == "go\n" for f in floods)
        peak = start
        canary = f"{unique.name}-canary"
        names.append(canary)
        with open(f"/dev/shm/{canary}", "xb") as f:  # root's own change, in the middle of the flood
            f.truncate(4096)
        deadline = time.monotonic() + 30
        while floods[0].poll() is None or floods[1].poll() is None:
            peak = max(peak, _rss_kib(w.proc.pid))
            pump(w)
            assert time.monotonic() < deadline
        made = sum(int(f.stdout.readline()) for f in floods)
        assert made > 1000, made  # the flood was one
        assert w.expect("created", f"posix:/{canary}", timeout=30)["by"]["pid"] == os.getpid()
        assert peak - start < 32 * 1024, (start, peak)
        assert w.proc.poll() is None
        assert w.stop(signal.SIGTERM) == 143
    finally:
        for f in floods:
            stop_child(f)
        w.close()


def test_watch_screen_shows_escapes_never_sends_them(raw_names, unique):
    from test_watch import Screen
    name = b"e\x1b]0;PWN\x07\x1b[2J\nZ"
    s = Screen("-k", "posix")
    try:
        ready = s.wait_for(rb"q quit")
        raw_names.append(name)
        attacker_creates([name])
        s.wait_for(re.escape(b"/e\\x1b]0;PWN"), since=ready)
        assert b"\x1b]0;PWN" not in s.seen and b"\x1b[2J\nZ" not in s.seen and b"\x07" not in s.seen
        s.type(b"q")
        assert s.finish() == 0
    finally:
        s.close()


# --- doctor reading what the attacker named ---

EVIL_NAMESPACE = r"""
import ctypes, os, sys
libc = ctypes.CDLL("libc.so.6", use_errno=True)
point = sys.argv[1].encode()
os.makedirs(point)
if libc.mount(b"none", point, b"tmpfs", 0, b"size=64T") != 0:
    sys.exit("mount: " + os.strerror(ctypes.get_errno()))
with open("/proc/self/comm", "wb") as f:
    f.write(b"ev\n\x1b[2Jx")
held = os.open(b"/dev/shm/" + sys.argv[2].encode(), os.O_CREAT | os.O_RDWR, 0o600)
os.ftruncate(held, 1 << 20)
os.write(held, b"x")
os.unlink(b"/dev/shm/" + sys.argv[2].encode())
print("ready", flush=True)
sys.stdin.read()
"""


def test_doctor_lines_and_json_hold_against_mount_points_and_comms(unique):
    top = tempfile.mkdtemp(prefix="shmctl-sec-i12-mnt-")
    os.chmod(top, 0o777)
    point = os.path.join(top, "a\nCRITICAL  forged: x\x1b[31m;reboot #")
    evil = subprocess.Popen([*as_user(SECOND_UID), "unshare", "-Urm", *python_as(SECOND_UID)[len(as_user()):],
                             "-c", EVIL_NAMESPACE, point, unique.name], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = evil.stdout.readline()
        if line != "ready\n":
            pytest.skip(f"no user namespace for uid {SECOND_UID}: {evil.stderr.read()[:200]}")
        text = run("doctor", "-A")
        assert text.code in (8, 9), text
        shown = printable(point)
        lines = text.out.splitlines()
        assert all(re.match(r"(CRITICAL|WARNING|INFO) {2,}[a-z-]+: |(OK) {8}[a-z-]+$| {10}\S|\d+ checks, ", x)
                   for x in lines), lines
        assert not any(x.startswith("CRITICAL  forged") for x in lines)
        assert "\x1b" not in text.out and shown in text.out
        fix = next(x for x in lines if shown in x and x.lstrip().startswith("fix: mount"))
        assert f"'{shown}'" in fix  # one shell word: `;reboot` stays inside the quotes
        # the holder of the deleted object, by its comm (unless a busy host's other holders
        # pushed it past the pids shown: then "... and N more")
        assert "ev\\x0a\\x1b[2Jx" in text.out or re.search(r"and \d+ more", text.out)
        data = run("doctor", "-A", "--json").json()
        everything = json.dumps(data)
        assert shown.replace("\\", "\\\\") in everything and "\\u001b" not in everything
    finally:
        stop_child(evil)
        for path in (point, top):
            if os.path.isdir(path):
                os.rmdir(path)
