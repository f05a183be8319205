"""`shmctl rm` cleanup policies (issue 12): --older-than, --name, --min-size, --user with
--orphans/--all; the --dry-run --json plan and rm --plan; contrib/shmctl-cleanup.*.
Real objects only: /dev/shm files made old with os.utime; SysV segments, whose times
nobody can set, made early (a module fixture) and waited on until their age passes."""
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import ENV, HERE, SECOND_UID, needs_isolation, run, run_as, run_in_process
from kernel import created, ipcs_m

pytestmark = needs_isolation

CONTRIB = os.path.join(os.path.dirname(HERE), "contrib")
DAY = 86400
POOL_UID = SECOND_UID + 17  # owner of this module's SysV segments: --user picks them alone
SYSV_AGE = 3  # seconds: the age the pool's segments reach while the module runs


def hidden_processes() -> int:
    return run("list", "--json", "--output-all").json()["hidden_processes"]


def make(name: str, size: int = 4096, age: float = 0, atime_age: float = None, uid: int = None) -> str:
    """A /dev/shm object nobody holds, its times `age` seconds back (atime: `atime_age`)."""
    path = f"/dev/shm/{name}"
    with open(path, "xb") as f:
        f.truncate(size)
    if uid is not None:
        os.chown(path, uid, uid)
    now = time.time()
    if age or atime_age is not None:
        os.utime(path, (now - (age if atime_age is None else atime_age), now - age))
    return f"posix:/{name}"


def exists(name: str) -> bool:
    return os.path.lexists(f"/dev/shm/{name}")


@pytest.fixture
def names(cleanup_shm, unique):
    """make() under unique names, each removed at teardown if still there."""
    made, _ = cleanup_shm

    def name(suffix: str) -> str:
        made.append(f"{unique.name}-{suffix}")
        return made[-1]
    return name


def bulk(*args):
    """rm in bulk on POSIX objects: --force where processes are hidden (here: one more privileged
    than root), which only lets unseen users pass; the orphans' holders are all ours, seen."""
    force = ("--force",) if hidden_processes() else ()
    return run("rm", *args, *force)


def plan_of(r) -> dict:
    assert r.code in (0, 3, 5), r
    return r.json()


def planned(r) -> list:
    return [e["address"] for e in plan_of(r)["plan"]]


# --- durations ---

def test_weeks_are_a_duration_unit():
    from shmctl_cli.units import parse_duration
    assert parse_duration("2w") == 14 * DAY and parse_duration("1.5w") == 1.5 * 7 * DAY
    r = run_in_process("rm", "--orphans", "--older-than", "1y")
    assert r.code == 2 and "invalid duration '1y'" in r.err and len(r.err.splitlines()) == 1


# --- the filters on POSIX objects ---

def test_older_than_by_mtime_and_atime(names):
    old, new, read = names("old"), names("new"), names("read")
    make(old, age=2 * DAY)
    make(new, age=3600)
    make(read, age=2 * DAY, atime_age=60)  # written long ago, read a minute ago: in use lately
    glob = old.rsplit("-", 1)[0] + "-*"
    r = bulk("--orphans", "--name", glob, "--older-than", "1d", "--dry-run", "--json")
    assert planned(r) == [f"posix:/{old}"]
    entry = r.json()["plan"][0]
    assert 2 * DAY <= entry["age_seconds"] < 2 * DAY + 120
    got = set(planned(bulk("--orphans", "--name", glob, "--older-than", "30m", "--dry-run", "--json")))
    assert got == {f"posix:/{old}", f"posix:/{new}"}
    got = set(planned(bulk("--orphans", "--name", glob, "--older-than", "0s", "--dry-run", "--json")))
    assert got == {f"posix:/{old}", f"posix:/{new}", f"posix:/{read}"}
    r = bulk("--orphans", "--name", glob, "--older-than", "1d", "--yes")
    assert r.code == 0 and r.out == f"posix:/{old}\n"
    assert not exists(old) and exists(new) and exists(read)


def test_older_than_in_weeks(names):
    eight, six = names("eight"), names("six")
    make(eight, age=8 * DAY)
    make(six, age=6 * DAY)
    r = bulk("--all", "posix", "--name", eight.rsplit("-", 1)[0] + "-*", "--older-than", "1w", "--dry-run")
    assert r.code == 0 and r.out == f"would remove posix:/{eight}\n"


def test_name_globs(names, unique):
    a, b, other = names("db-1"), names("db-2"), names("cache")
    for n in (a, b, other):
        make(n)
    assert set(planned(bulk("--orphans", "--name", f"{unique.name}-db-*", "--dry-run", "--json"))) == \
        {f"posix:/{a}", f"posix:/{b}"}
    assert planned(bulk("--orphans", "--name", f"{unique.name}-db-[2]", "--dry-run", "--json")) == [f"posix:/{b}"]
    # a glob that starts with / matches the name with its slash; without, the name without
    assert planned(bulk("--orphans", "--name", f"/{unique.name}-cache", "--dry-run", "--json")) == \
        [f"posix:/{other}"]
    assert planned(bulk("--orphans", "--name", f"/{unique.name}-cach?", "--dry-run", "--json")) == \
        [f"posix:/{other}"]
    assert planned(bulk("--orphans", "--name", f"*{unique.name.upper()}*", "--dry-run", "--json")) == []
    r = bulk("--all=posix", "--name", f"{unique.name}-db-?", "--yes")
    assert r.code == 0 and set(r.out.split()) == {f"posix:/{a}", f"posix:/{b}"}
    assert not exists(a) and not exists(b) and exists(other)


def test_a_hostile_name_is_matched_and_escaped(names, unique):
    hostile = names("x\nshmctl: removed sysv:1 \x1b[31m\\")
    make(hostile, age=2 * DAY)
    r = bulk("--orphans", "--name", f"{unique.name}-x*", "--older-than", "1d", "--dry-run", "--json")
    text = r.out
    assert "\x1b" not in text and "\\x0a" in text  # JSON carries the printable form only
    entry = r.json()["plan"][0]
    assert entry["address"] == f"posix:/{unique.name}-x\\x0ashmctl: removed sysv:1 \\x1b[31m\\x5c"
    assert entry["name"] == "/" + entry["address"][len("posix:/"):]
    st = run("stat", entry["address"], "--json")
    assert st.code == 0 and st.json()["size"] == 4096
    r = bulk("--orphans", "--name", f"{unique.name}-x*", "--older-than", "1d", "--yes")
    assert r.code == 0 and r.out == entry["address"] + "\n" and not exists(hostile)


@pytest.mark.parametrize("minimum,chosen", [("4096", {4096, 4097}), ("4K", {4096, 4097}), ("4097", {4097}),
                                            ("4095", {4095, 4096, 4097}), ("1M", set())])
def test_min_size_boundaries(names, unique, minimum, chosen):
    for size in (4095, 4096, 4097):
        make(names(str(size)), size=size)
    r = bulk("--orphans", "--name", f"{unique.name}-*", "--min-size", minimum, "--dry-run", "--json")
    assert {e["size"] for e in plan_of(r)["plan"]} == chosen


def test_user(names, unique):
    theirs, ours = names("theirs"), names("ours")
    make(theirs, uid=SECOND_UID, age=2 * DAY)
    make(ours, age=2 * DAY)
    glob = f"{unique.name}-*"
    r = bulk("--orphans", "--name", glob, "--user", str(SECOND_UID), "--older-than", "1d", "--dry-run", "--json")
    assert planned(r) == [f"posix:/{theirs}"] and r.json()["plan"][0]["uid"] == SECOND_UID
    assert planned(bulk("--orphans", "--name", glob, "--user", "root", "--dry-run", "--json")) == [f"posix:/{ours}"]
    r = run_in_process("rm", "--orphans", "--user", "no-such-user-here")
    assert r.code == 2 and "unknown user" in r.err and len(r.err.splitlines()) == 1


def test_held_deleted_semaphores_and_symlinks_are_never_chosen(names, unique, hold, tmp_path):
    """Old all of them, each matching the glob: only the orphan goes."""
    orphan, mapped, fd_held, gone, link = names("orphan"), names("mapped"), names("fd"), names("gone"), names("link")
    sem = f"sem.{unique.name}-sem"
    precious = tmp_path / "precious"
    precious.write_bytes(b"keep me")
    h = hold({"kind": "posix", "name": mapped, "size": 4096, "keep": True},
             {"kind": "posix", "name": fd_held, "size": 4096, "keep": True, "map": False, "close_fd": False},
             {"kind": "posix", "name": gone, "size": 4096, "keep": True})
    os.unlink(f"/dev/shm/{gone}")  # deleted, still mapped: no name left to remove
    make(orphan, age=2 * DAY)
    old = time.time() - 2 * DAY
    for n in (mapped, fd_held):
        os.utime(f"/dev/shm/{n}", (old, old))
    with open(f"/dev/shm/{sem}", "xb") as f:
        f.write(b"\0" * 32)
    os.utime(f"/dev/shm/{sem}", (old, old))
    os.symlink(str(precious), f"/dev/shm/{link}")
    os.utime(f"/dev/shm/{link}", (old, old), follow_symlinks=False)
    try:
        glob = f"*{unique.name}-*"
        # --all without --force: the held ones are chosen by the filters, and refused (in use), or
        # skipped where processes are hidden (in use cannot be told)
        r = run("rm", "--all=posix", "--name", glob, "--older-than", "1d", "--dry-run", "--json")
        plan = r.json()
        skipped = {s["address"]: s["why"] for s in plan["skipped"]}
        assert f"posix:/{mapped}" in skipped and f"posix:/{fd_held}" in skipped
        if not hidden_processes():
            assert r.code == 5 and planned(r) == [f"posix:/{orphan}"]
            assert f"still in use by 1 process: pids {h.pid}" in skipped[f"posix:/{mapped}"]
        assert not {f"posix:/{mapped}", f"posix:/{fd_held}"} & set(planned(r))
        r = bulk("--orphans", "--name", glob, "--older-than", "1d", "--yes")
        assert r.code == 0 and r.out == f"posix:/{orphan}\n"
        assert not exists(orphan) and exists(mapped) and exists(fd_held) and exists(sem)
        assert os.path.islink(f"/dev/shm/{link}") and precious.read_bytes() == b"keep me"
    finally:
        os.unlink(f"/dev/shm/{sem}")


def test_mmap_files_with_all(tmpfs, hold, tmp_path):
    """--all=mmap: every mmap segment is mapped by someone, so each is refused (listed in the
    plan's skipped); a file on a disk is no shared memory at all."""
    on_tmpfs, on_disk = tmpfs / "seg-a", tmp_path / "seg-disk"
    h = hold({"kind": "file", "path": str(on_tmpfs), "size": 8192},
             {"kind": "file", "path": str(on_disk), "size": 8192})
    old = time.time() - 2 * DAY
    os.utime(on_tmpfs, (old, old))
    r = run("rm", "--all=mmap", "--name", f"{tmpfs}/seg-*", "--older-than", "1d", "--dry-run", "--json")
    assert r.code == 5 and r.json()["plan"] == []
    skipped = {s["address"]: s["why"] for s in r.json()["skipped"]}
    assert "still in use" in skipped[f"mmap:{on_tmpfs}"] and str(h.pid) in skipped[f"mmap:{on_tmpfs}"]
    r = run("rm", "--all=mmap", "--name", "*/seg-disk", "--dry-run", "--json")
    why = {s["address"]: s["why"] for s in r.json()["skipped"]}[f"mmap:{on_disk}"]
    assert r.code == 0 and "not shared memory" in why
    assert run("rm", "--all=mmap", "--name", f"{tmpfs}/seg-*", "--older-than", "3d", "--dry-run",
               "--json").json() == {"plan": [], "skipped": []}
    assert on_tmpfs.exists() and on_disk.exists()


# --- SysV: a pool made when the module starts, old by the time its tests run ---

@pytest.fixture(scope="module", autouse=True)
def pool():
    """Made when the module's first test starts, so that their age passes while others run.
    Segments of POOL_UID: two orphans (4 KiB, 8 KiB) and one 8 KiB that a process holds
    attached from the start (its last attach as old as the others)."""
    made = {n: created("sysv", "--size", size, "--owner", str(POOL_UID)) for n, size in
            (("small", "4K"), ("big", "8K"), ("held", "8K"))}
    holder = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "attach", made["held"], "--for", "10m"],
                              env=ENV, stderr=subprocess.PIPE, text=True)
    holder.stderr.readline()  # where it attached: it holds it now
    made["ctime"] = time.time()
    yield made
    holder.send_signal(signal.SIGTERM)
    holder.wait(30)
    for n in ("small", "big", "held"):
        subprocess.run(["ipcrm", "-m", made[n][5:]], capture_output=True)


def old_enough(pool) -> None:
    """Wait (on the clock, with a deadline) until the pool's segments are SYSV_AGE old."""
    deadline = time.time() + 30
    while time.time() < pool["ctime"] + SYSV_AGE + 1.05:
        assert time.time() < deadline
        time.sleep(0.1)


def test_sysv_older_than_min_size_and_user(pool):
    old_enough(pool)
    young = created("sysv", "--size", "8K", "--owner", str(POOL_UID))
    try:
        base = ("rm", "--orphans", "-k", "sysv", "--user", str(POOL_UID))
        r = run(*base, "--older-than", f"{SYSV_AGE}s", "--dry-run", "--json")
        assert set(planned(r)) == {pool["small"], pool["big"]}
        assert all(e["age_seconds"] >= SYSV_AGE and e["name"] is None for e in r.json()["plan"])
        assert set(planned(run(*base, "--dry-run", "--json"))) == {pool["small"], pool["big"], young}
        assert planned(run(*base, "--older-than", f"{SYSV_AGE}s", "--min-size", "5K", "--dry-run", "--json")) \
            == [pool["big"]]
        assert planned(run(*base, "--name", "*", "--dry-run", "--json")) == []  # SysV has no name
        # --all: the attached one is chosen by age and refused: exit 5, never removed
        r = run("rm", "--all=sysv", "--user", str(POOL_UID), "--older-than", f"{SYSV_AGE}s", "--min-size", "8K",
                "--yes")
        assert r.code == 5 and r.out == f"{pool['big']}\n"
        assert f"shmctl: {pool['held']}: still in use by 1 process" in r.err
        shmids = ipcs_m()
        assert int(pool["big"][5:]) not in shmids
        assert {int(pool["small"][5:]), int(pool["held"][5:]), int(young[5:])} <= set(shmids)
    finally:
        run("rm", young)


# --- the plan ---

def test_plan_shape_and_addresses(names, unique, pool):
    a, b = names("a"), names("b")
    make(a, size=8192, age=3 * DAY)
    make(b, age=3 * DAY, uid=SECOND_UID)
    r = bulk("--orphans", "--name", f"{unique.name}-*", "--dry-run", "--json")
    plan = r.json()
    assert list(plan) == ["plan", "skipped"]
    entry = next(e for e in plan["plan"] if e["address"] == f"posix:/{a}")
    assert list(entry) == ["address", "kind", "id", "name", "size", "owner", "uid", "last_used", "age_seconds",
                           "identity"]
    st = os.stat(f"/dev/shm/{a}")
    assert entry["kind"] == "posix" and entry["id"] == st.st_ino and entry["name"] == f"/{a}"
    assert entry["size"] == 8192 and entry["owner"] == "root" and entry["uid"] == 0
    assert entry["last_used"].endswith(("+00:00", "Z")) or entry["last_used"][-6] in "+-"
    assert entry["identity"] == {"kind": "posix", "id": st.st_ino, "device": st.st_dev, "ctime": int(st.st_ctime)}
    b_entry = next(e for e in plan["plan"] if e["address"] == f"posix:/{b}")
    assert b_entry["uid"] == SECOND_UID and b_entry["owner"] == str(SECOND_UID)
    r = run("rm", "--orphans", "-k", "sysv", "--user", str(POOL_UID), "--dry-run", "--json")
    sysv = {e["address"]: e for e in r.json()["plan"]}
    assert sysv[pool["small"]]["identity"]["device"] is None and sysv[pool["small"]]["kind"] == "sysv"
    assert sysv[pool["small"]]["id"] == int(pool["small"][5:])
    for address in [*sysv, f"posix:/{a}", f"posix:/{b}"]:
        assert run("stat", address).code == 0, address


def test_explicit_addresses_and_skipped_reasons(names, hold, unique):
    free, busy = names("free"), names("busy")
    make(free)
    h = hold({"kind": "posix", "name": busy, "size": 4096, "keep": True})
    r = run("rm", f"/{free}", f"/{busy}", "/shmctl-no-such-object", "--dry-run", "--json")
    assert r.code == 3  # the first failure's code, as without --json
    plan = r.json()
    assert [e["address"] for e in plan["plan"]] == [f"posix:/{free}"]
    skipped = {s["address"]: s["why"] for s in plan["skipped"]}
    assert "no such object" in skipped["posix:/shmctl-no-such-object"]
    assert f"still in use by 1 process: pids {h.pid}" in skipped[f"posix:/{busy}"]
    assert "shmctl: posix:/shmctl-no-such-object: no such object" in r.err  # the notes as ever
    assert exists(free) and exists(busy)


def write_plan(tmp_path, r) -> str:
    path = tmp_path / "plan.json"
    path.write_text(r.out)
    os.chmod(path, 0o600)
    return str(path)


def test_applying_a_plan_removes_exactly_its_entries(names, unique, tmp_path):
    a, b, c, late = names("a"), names("b"), names("c"), names("late")
    for n in (a, b, c):
        make(n, age=2 * DAY)
    r = bulk("--orphans", "--name", f"{unique.name}-*", "--older-than", "1d", "--dry-run", "--json")
    plan = r.json()
    plan["plan"] = [e for e in plan["plan"] if e["address"] != f"posix:/{c}"]  # the reviewer strikes c
    make(late, age=2 * DAY)  # made after the plan: not in it
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    os.chmod(path, 0o600)
    r = run("rm", "--plan", str(path))
    assert r.code == 2 and "no terminal to ask (add --yes)" in r.err and exists(a)
    r = run("rm", "--plan", str(path), "--dry-run")
    assert r.code == 0 and set(r.out.splitlines()) == {f"would remove posix:/{a}", f"would remove posix:/{b}"}
    r = run("rm", "--plan", str(path), "--yes")
    assert r.code == 0 and set(r.out.split()) == {f"posix:/{a}", f"posix:/{b}"}
    assert not exists(a) and not exists(b) and exists(c) and exists(late)
    r = run("rm", "--plan", "-", "--yes", input=json.dumps(plan))  # again, from stdin: all gone now
    assert r.code == 3 and r.out == "" and f"shmctl: posix:/{a}: no such object in /dev/shm (gone since the plan was made)" in r.err


def test_a_replaced_entry_is_left_alone(names, unique, tmp_path):
    kept, replaced = names("kept"), names("replaced")
    make(kept, age=2 * DAY)
    make(replaced, age=2 * DAY)
    path = write_plan(tmp_path, bulk("--orphans", "--name", f"{unique.name}-*", "--dry-run", "--json"))
    before = os.stat(f"/dev/shm/{replaced}").st_ino
    os.unlink(f"/dev/shm/{replaced}")
    make(replaced, age=2 * DAY)  # the same name, another object (a new inode)
    assert os.stat(f"/dev/shm/{replaced}").st_ino != before
    r = run("rm", "--plan", path, "--yes")
    assert r.code == 5 and r.out == f"posix:/{kept}\n"
    assert f"shmctl: posix:/{replaced}: another object has that address since the plan was made" in r.err
    assert len(r.err.splitlines()) == 1 and exists(replaced)


def test_an_entry_attached_after_the_plan_is_refused(names, unique, hold, tmp_path, cleanup_shm):
    orphan = names("orphan")
    # read after its last write, a minute ago: mmap() itself would move an atime that is older than
    # the mtime or a day (relatime; shmem_mmap calls file_accessed), which counts as use since the plan
    make(orphan, age=60, atime_age=0)
    sysv = created("sysv", "--size", "4K")
    cleanup_shm[1].append(int(sysv[5:]))
    plan = bulk("--orphans", "--name", f"{unique.name}-*", "--dry-run", "--json").json()
    plan["plan"] += run("rm", sysv, "--dry-run", "--json").json()["plan"]
    assert len(plan["plan"]) == 2
    h = hold({"kind": "file", "path": f"/dev/shm/{orphan}", "size": 4096, "readonly": True})
    attacher = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "attach", sysv, "--for", "1m"],
                                env=ENV, stderr=subprocess.PIPE, text=True)
    try:
        attacher.stderr.readline()  # attached
        r = run("rm", "--plan", "-", "--yes", input=json.dumps(plan))
        assert r.code == 5 and r.out == ""
        assert f"shmctl: posix:/{orphan}: still in use by 1 process: pids {h.pid}" in r.err
        # its atime moved (used since the plan), or within the plan's second: still in use
        assert f"shmctl: {sysv}: used since the plan" in r.err or f"shmctl: {sysv}: still in use" in r.err
        assert exists(orphan) and int(sysv[5:]) in ipcs_m()
    finally:
        attacher.send_signal(signal.SIGTERM)
        attacher.wait(30)


def test_a_sysv_entry_used_since_the_plan_is_left_alone(pool, tmp_path):
    r = run("rm", pool["small"], "--dry-run", "--json")
    entry = r.json()["plan"][0]
    entry["last_used"] = "2000-01-01T00:00:00+00:00"  # as if the plan had seen it before its last use
    r = run("rm", "--plan", "-", input=json.dumps({"plan": [entry]}))
    assert r.code == 5 and r.err.splitlines()[0] == f"shmctl: {pool['small']}: used since the plan was made (left " \
                                                    "alone; make a new plan)"
    assert int(pool["small"][5:]) in ipcs_m()


GOOD = {"address": "sysv:7", "identity": {"kind": "sysv", "id": 7, "device": None, "ctime": 1}}


@pytest.mark.parametrize("text,message", [
    ("{not json", "not JSON"),
    ("[]", 'no "plan" list'),
    ('{"plan": 5}', 'no "plan" list'),
    ('{"plan": [5]}', "entry 1: not an object"),
    ('{"plan": [{"identity": {}}]}', '"address" is missing or not a string'),
    ('{"plan": [{"address": 7}]}', '"address" is missing or not a string'),
    ('{"plan": [{"address": "sysv:7"}]}', 'sysv:7 has no "identity": the plan never saw it'),
    ('{"plan": [{"address": "bogus:7", "identity": {}}]}', "bogus:7"),
    (json.dumps({"plan": [dict(GOOD, identity=dict(GOOD["identity"], id="7"))]}), 'identity "id" of sysv:7'),
    (json.dumps({"plan": [dict(GOOD, identity=dict(GOOD["identity"], ctime=True))]}), 'identity "ctime"'),
    (json.dumps({"plan": [dict(GOOD, identity=dict(GOOD["identity"], id=8))]}), "not of that address"),
    (json.dumps({"plan": [dict(GOOD, identity=dict(GOOD["identity"], kind="posix"))]}), "not of that address"),
    (json.dumps({"plan": [GOOD, GOOD]}), "entry 2: sysv:7 is in the plan twice"),
    (json.dumps({"plan": [dict(GOOD, last_used="yesterday")]}), '"last_used" is not an ISO 8601 time'),
])
def test_a_tampered_plan_is_a_usage_error(text, message):
    r = run_in_process("rm", "--plan", "-", "--yes", input=text)
    assert r.code == 2 and r.out == "" and message in r.err, r
    assert len(r.err.splitlines()) == 1 and r.err.startswith("shmctl: rm --plan -")


def test_plan_files_that_are_not_the_callers(tmp_path):
    mine = tmp_path / "plan.json"
    mine.write_text(json.dumps({"plan": []}))
    os.chmod(mine, 0o600)
    r = run("rm", "--plan", str(mine))
    assert r.code == 0 and "nothing to remove" in r.err
    os.chmod(mine, 0o666)
    r = run("rm", "--plan", str(mine))
    assert r.code == 2 and "another user owns it or may write it" in r.err
    os.chmod(mine, 0o600)
    os.chown(mine, SECOND_UID, SECOND_UID)
    assert run("rm", "--plan", str(mine)).code == 2
    link = tmp_path / "link.json"
    link.symlink_to(mine)
    r = run("rm", "--plan", str(link))
    assert r.code == 2 and "symlink" in r.err and len(r.err.splitlines()) == 1
    r = run("rm", "--plan", str(tmp_path / "none.json"))
    assert r.code == 2 and r.err.endswith(": no such file or directory\n")
    os.chown(mine, 0, 0)
    r = run_as(SECOND_UID, "rm", "--plan", str(mine))  # root's 0600 plan: another user cannot read it
    assert r.code == 4 and r.err.endswith(": permission denied\n"), r


def test_a_planted_symlink_is_neither_planned_nor_followed(names, unique, tmp_path):
    """An attacker plants /dev/shm/NAME -> a file of root's, named to match, and hand-writes a
    plan entry for it: it is no segment, so never removed, and its target is never touched."""
    link = names("evil")
    precious = tmp_path / "precious"
    precious.write_bytes(b"root's")
    subprocess.run(["setpriv", f"--reuid={SECOND_UID}", f"--regid={SECOND_UID}", "--clear-groups",
                    "ln", "-s", str(precious), f"/dev/shm/{link}"], check=True)
    r = bulk("--all=posix", "--name", f"{unique.name}-*", "--dry-run", "--json")
    assert r.json()["plan"] == []
    st = os.lstat(f"/dev/shm/{link}")
    entry = {"address": f"posix:/{link}", "identity": {"kind": "posix", "id": st.st_ino, "device": st.st_dev,
                                                        "ctime": int(st.st_ctime)}}
    r = run("rm", "--plan", "-", input=json.dumps({"plan": [entry]}))
    assert r.code == 3 and "is a symlink, not a shared-memory object" in r.err
    assert os.path.islink(f"/dev/shm/{link}") and precious.read_bytes() == b"root's"


def test_another_user_removes_nothing_of_roots(names, unique, pool):
    root_old = names("root-old")
    make(root_old, age=2 * DAY)
    r = run_as(SECOND_UID, "rm", "--orphans", "--name", f"{unique.name}-*", "--older-than", "1d", "--yes")
    assert r.code == 0 and r.out == "" and exists(root_old)  # other users' processes are hidden: not sure
    r = run_as(SECOND_UID, "rm", "--orphans", "-k", "sysv", "--user", str(POOL_UID), "--yes")
    assert r.code == 4 and r.out == "" and "Operation not permitted" in r.err
    plan = bulk("--orphans", "--name", f"{unique.name}-*", "--dry-run", "--json").out
    r = run_as(SECOND_UID, "rm", "--plan", "-", "--yes", input=plan)
    assert r.code == 4 and r.out == "" and exists(root_old)
    assert int(pool["small"][5:]) in ipcs_m()


@pytest.mark.parametrize("args,message", [
    (("sysv:1", "--older-than", "1d"), "--older-than chooses among --orphans/--all"),
    (("sysv:1", "--name", "x*"), "--name chooses among --orphans/--all"),
    (("sysv:1", "--min-size", "1K"), "--min-size chooses among --orphans/--all"),
    (("--orphans", "--json"), "the JSON is the plan of a dry run (add --dry-run)"),
    (("--plan", "-", "sysv:1"), "a plan names its segments itself"),
    (("--plan", "-", "--orphans"), "a plan names its segments itself"),
    (("--plan", "-", "--name", "x"), "a plan names its segments itself"),
    (("--plan", "-", "--user", "root"), "a plan names its segments itself"),
    (("--plan", "-", "--force"), "--force does not apply"),
    (("--orphans", "--min-size", "lots"), "invalid size"),
])
def test_usage(args, message):
    r = run_in_process("rm", *args)
    assert r.code == 2 and message in r.err and len(r.err.splitlines()) == 1, r


# --- contrib/shmctl-cleanup.service and .timer ---

def unit(name: str) -> dict:
    values = {}
    for line in open(os.path.join(CONTRIB, name)):
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.rstrip("\n").split("=", 1)
            values[key] = value
    return values


def test_the_units_say_what_they_should():
    service, timer = unit("shmctl-cleanup.service"), unit("shmctl-cleanup.timer")
    assert service["Type"] == "oneshot" and "PrivateIPC" not in service
    argv = shlex.split(service["ExecStart"])
    assert argv[:3] == ["/usr/bin/env", "shmctl", "rm"] and "--orphans" in argv and "--yes" in argv
    assert "--force" not in argv and "--all" not in argv
    assert timer["OnCalendar"] == "daily" and timer["Persistent"] == "true" and "RandomizedDelaySec" in timer


def test_systemd_analyze_verify(tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed")
    for name in ("shmctl-cleanup.service", "shmctl-cleanup.timer"):
        shutil.copy(os.path.join(CONTRIB, name), tmp_path / name)
    done = subprocess.run(["systemd-analyze", "verify", "--man=no", "shmctl-cleanup.service",
                           "shmctl-cleanup.timer"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    if done.returncode != 0 and "Failed to" in done.stderr and "shmctl-cleanup" not in done.stderr:
        pytest.skip(f"systemd-analyze cannot run here: {done.stderr.strip()[:200]}")
    assert done.returncode == 0 and done.stderr == "", done.stderr  # warnings too (a bad Type= is only one)


DRIVER = r"""
import json, os, subprocess, sys, time
spec = json.loads(sys.argv[1])
for argv in spec["before"]:
    subprocess.run(argv, check=True, capture_output=True)
holder = subprocess.Popen([sys.executable, spec["holder_py"], json.dumps(spec["hold"])], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
for line in holder.stdout:
    if line.strip() == "ready":
        break
old = time.time() - 2 * 86400
for path in spec["old"]:
    os.utime(path, (old, old), follow_symlinks=False)
done = subprocess.run(spec["argv"], capture_output=True, text=True)
print(json.dumps({"code": done.returncode, "out": done.stdout, "err": done.stderr}), flush=True)
holder.stdin.close()
holder.wait()
"""


def test_the_timers_command_for_real(names, unique, tmp_path):
    """ExecStart as it is, in a PID namespace of its own (nothing hidden there: this machine's
    pid 1 is closed even to root) with the holders inside: old orphans go; held, deleted,
    semaphores, symlinks, young orphans and attached SysV segments stay."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    argv = shlex.split(unit("shmctl-cleanup.service")["ExecStart"])
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "shmctl").write_text(f"#!/bin/sh\nexec {sys.executable} -m shmctl_cli \"$@\"\n")
    os.chmod(bin_dir / "shmctl", 0o755)
    old_a, old_b, young, mapped, fd_held, link = (names(n) for n in ("old-a", "old-b", "young", "mapped", "fd",
                                                                     "link"))
    sem = f"sem.{unique.name}"
    make(old_a, age=2 * DAY)
    make(old_b, size=1 << 20)
    make(young)
    with open(f"/dev/shm/{sem}", "xb") as f:
        f.write(b"\0" * 32)
    os.symlink("/etc/hostname", f"/dev/shm/{link}")
    key = f"{unique.key:#x}"
    spec = {"before": [["shmctl", "create", f"sysv:key={key}", "--size", "4K"]],  # a young SysV orphan
            "holder_py": os.path.join(HERE, "holder.py"),
            "hold": [{"kind": "posix", "name": mapped, "size": 4096, "keep": True},
                     {"kind": "posix", "name": fd_held, "size": 4096, "keep": True, "map": False, "close_fd": False},
                     {"kind": "sysv", "key": unique.key + 1, "size": 4096}],
            "old": [f"/dev/shm/{n}" for n in (old_a, old_b, mapped, fd_held, sem, link)],
            "argv": argv}
    env = dict(ENV, PATH=f"{bin_dir}:{os.environ['PATH']}")
    try:
        done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", DRIVER,
                               json.dumps(spec)], capture_output=True, text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        assert result["code"] == 0 and result["out"] == "", result  # --quiet: the journal gets stderr
        assert f"removed posix:/{old_a} (posix, 4KiB, owner root)" in result["err"]
        assert f"removed posix:/{old_b}" in result["err"]
        assert not exists(old_a) and not exists(old_b)
        for kept in (young, mapped, fd_held, sem, link):
            assert exists(kept), kept
        assert os.path.islink(f"/dev/shm/{link}")
        assert run("stat", f"sysv:key={key}").code == 0  # young: kept
    finally:
        run("rm", f"sysv:key={key}")
        if os.path.exists(f"/dev/shm/{sem}"):
            os.unlink(f"/dev/shm/{sem}")
