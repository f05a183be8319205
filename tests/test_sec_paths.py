"""Issue 8, paths that come from other processes: a path from /proc/PID/maps or typed as
mmap:/PATH is resolved with no symlink followed in any component, objects are reached and
unlinked through checked directory fds and (device, inode), and bulk removal never unlinks a
file on a disk filesystem. The attacker is `nobody` or SECOND_UID, working in a 1777
directory under tmp_path (reached through its cwd: tmp_path's parents are closed to them)."""
import json
import os
import subprocess
import sys

import pytest

from conftest import ATTACKERS, HERE, ROOT, attacker_runs, needs_isolation, run, shmctl_cmd

pytestmark = [needs_isolation, pytest.mark.skipif(not ROOT, reason="plays root against other users")]

SECRET = b"root's secret, never to be touched\n"


@pytest.fixture
def arena(tmp_path):
    """A sticky world-writable directory, and a root-only directory holding a victim file."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victims = tmp_path / "victims"
    victims.mkdir(mode=0o700)
    victim = victims / "file"
    victim.write_bytes(SECRET)
    os.chmod(victim, 0o600)
    return shared, victims, victim


def victim_intact(victim):
    return victim.exists() and victim.read_bytes() == SECRET and victim.stat().st_uid == 0


def fstype_of(path) -> str:
    return subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "--target", str(path)], capture_output=True,
                          text=True, check=True).stdout.strip()


# --- a directory swapped for a symlink, through the CLI ---

@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_mapped_files_directory_swapped_for_a_symlink_never_redirects(hold, arena, uid):
    shared, victims, victim = arena
    attacker_runs(uid, "mkdir", "-m", "0777", "a", cwd=shared)
    h = hold({"kind": "file", "path": str(shared / "a" / "file"), "size": 4096, "touch": 4096})
    address = f"mmap:{shared}/a/file"
    assert run("stat", address).code == 0  # before the attack: a segment like any other
    attacker_runs(uid, "sh", "-c", f"mv a a.old && ln -s {victims} a", cwd=shared)
    assert (shared / "a" / "file").read_bytes() == SECRET  # the attack is live: a path-based open lands there
    for args in (("rm", address, "--force"), ("write", address, "--data", "PWNED"), ("read", address),
                 ("stat", address), ("attach", address, "--for", "1")):
        r = run(*args, timeout=30)
        assert r.code == 3 and r.out == "", args
        assert r.err == (f"shmctl: {address}: {shared}/a is a symlink, and symlinks in a path are never "
                         "followed (give the path without symlinks)\n"), args
    assert victim_intact(victim)
    mapped = shared / "a.old" / "file"  # the mapped file followed its directory: untouched too
    assert mapped.read_bytes() == b"Z" * 4096 and h.proc.poll() is None


@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_symlinked_component_in_a_typed_path_is_named(arena, uid):
    shared, victims, victim = arena
    attacker_runs(uid, "ln", "-s", str(victims), "link", cwd=shared)
    address = f"mmap:{shared}/link/file"
    for args in (("write", address, "--data", "PWNED", "--grow"), ("rm", address, "--force"), ("read", address)):
        r = run(*args)
        assert r.code == 3 and len(r.err.splitlines()) == 1, args
        assert f"{shared}/link is a symlink, and symlinks in a path are never followed" in r.err, args
    assert victim_intact(victim)


@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_planted_fifo_or_device_path_is_never_opened(arena, uid):
    shared, _victims, _victim = arena
    attacker_runs(uid, "mkfifo", "fifo", cwd=shared)
    for args in (("read",), ("write", "--data", "x"), ("rm", "--force")):
        r = run(args[0], f"mmap:{shared}/fifo", *args[1:], timeout=20)
        assert r.code == 3 and "fifo" in r.err and len(r.err.splitlines()) == 1, args
    assert (shared / "fifo").exists()
    r = run("write", "mmap:/dev/null", "--data", "x")
    assert r.code == 3 and "character device" in r.err


# --- the primitives, with the swap made exactly between two steps ---

@pytest.fixture(params=["openat2", "walk"])
def paths(request, monkeypatch):
    """kinds/paths with openat2 (if the kernel has it) or the component walk alone."""
    from shmctl_cli.kinds import paths as module
    monkeypatch.setattr(module, "_openat2_missing", request.param == "walk")
    return module


@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_directory_fd_taken_before_the_swap_stays_in_the_checked_directory(hold, arena, paths, uid):
    shared, victims, victim = arena
    attacker_runs(uid, "mkdir", "-m", "0777", "a", cwd=shared)
    h = hold({"kind": "file", "path": str(shared / "a" / "file"), "size": 4096, "touch": 100})
    mapped = h.objects[0]
    dir_fd = paths.open_directory(f"{shared}/a")
    try:
        attacker_runs(uid, "sh", "-c", f"mv a a.old && ln -s {victims} a", cwd=shared)
        fd = paths.open_at(dir_fd, "file", os.O_RDWR, expect=(mapped["dev"], mapped["inode"]))
        try:
            assert os.pread(fd, 5, 0) == b"ZZZZZ"  # the mapped file, not the victim
        finally:
            os.close(fd)
        paths.unlink_checked(dir_fd, "file", mapped["dev"], mapped["inode"], "test")
    finally:
        os.close(dir_fd)
    assert not (shared / "a.old" / "file").exists() and victim_intact(victim)


@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_swap_between_two_components_fails_the_walk(arena, paths, uid):
    from shmctl_cli.errors import NotFound
    shared, victims, victim = arena
    attacker_runs(uid, "mkdir", "-m", "0777", "a", cwd=shared)
    top = paths.open_directory(str(shared))  # the first steps are done ...
    try:
        attacker_runs(uid, "sh", "-c", f"mv a a.old && ln -s {victims} a", cwd=shared)  # ... the attacker swaps ...
        with pytest.raises(NotFound) as caught:  # ... and the next step refuses the symlink
            paths.open_directory("a", "test", base=top)
        assert "a is a symlink" in str(caught.value)
        with pytest.raises(NotFound):
            paths.open_at(top, "a", os.O_RDONLY)
    finally:
        os.close(top)
    assert victim_intact(victim)


@pytest.mark.parametrize("uid", ATTACKERS)
def test_unlink_checked_leaves_a_replaced_name_alone(hold, tmpfs, paths, uid):
    from shmctl_cli.errors import Conflict, NotFound
    attacker_runs(uid, "mkdir", "-m", "0777", "a", cwd=tmpfs)
    h = hold({"kind": "file", "path": str(tmpfs / "a" / "file"), "size": 4096})
    mapped = h.objects[0]
    attacker_runs(uid, "sh", "-c", "mv a a.old && mkdir a && echo mine > a/file && ln -s file a/link", cwd=tmpfs)
    dir_fd = paths.open_directory(f"{tmpfs}/a")
    try:
        with pytest.raises(Conflict, match="no longer the file that was found"):
            paths.unlink_checked(dir_fd, "file", mapped["dev"], mapped["inode"], "test")
        with pytest.raises(NotFound, match="symlink, not a segment"):
            paths.unlink_checked(dir_fd, "link", mapped["dev"], mapped["inode"], "test")
    finally:
        os.close(dir_fd)
    assert (tmpfs / "a" / "file").read_text() == "mine\n" and (tmpfs / "a.old" / "file").exists()


def test_open_at_refuses_what_is_not_a_regular_file(tmp_path, paths):
    from shmctl_cli.errors import NotFound
    os.mkfifo(tmp_path / "fifo")
    for directory, name, what in ((str(tmp_path), "fifo", "fifo"), ("/dev", "null", "character device"),
                                  (str(tmp_path), ".", "directory")):
        dir_fd = paths.open_directory(directory)
        try:
            with pytest.raises(NotFound, match=f"{name} is a {what}, not a segment"):
                paths.open_at(dir_fd, name, os.O_RDWR)
        finally:
            os.close(dir_fd)


def test_stat_of_a_mapping_never_follows_its_old_path(hold, arena):
    """What `list` stats for a mapping whose path was read before the swap: the mapped file
    through map_files, and by path (no map_files) nothing rather than the victim."""
    from shmctl_cli.kinds import View, mmap
    from shmctl_cli.procfs.maps import SharedMapping
    shared, victims, victim = arena
    attacker_runs("nobody", "mkdir", "-m", "0777", "a", cwd=shared)
    h = hold({"kind": "file", "path": str(shared / "a" / "file"), "size": 8192})
    obj = h.objects[0]
    start = obj["start"]
    seen = SharedMapping(start, start + 8192, "rw-s", 0, obj["dev"], obj["inode"], f"{shared}/a/file")
    attacker_runs("nobody", "sh", "-c", f"mv a a.old && ln -s {victims} a", cwd=shared)
    st = mmap._stat_backing(h.pid, seen, View())
    assert st is not None and (st.st_ino, st.st_size) == (obj["inode"], 8192)
    no_map_files = SharedMapping(0, 0, "rw-s", 0, obj["dev"], obj["inode"], f"{shared}/a/file")
    assert mmap._stat_backing(h.pid, no_map_files, View()) is None
    assert victim_intact(victim)


# --- POSIX objects: opened and unlinked relative to the /dev/shm directory fd ---

@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_posix_name_swapped_after_it_was_found_is_not_removed(unique, cleanup_shm, uid):
    from shmctl_cli.address import Address
    from shmctl_cli.errors import Conflict
    from shmctl_cli.kinds import View, posix
    names, _ = cleanup_shm
    names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0
    view = View()
    found = posix.KIND.find(Address("posix", name=unique.name), view)
    os.unlink(f"/dev/shm/{unique.name}")  # what we made goes; the attacker squats the name at once
    attacker_runs(uid, "sh", "-c", f"echo squatted > {unique.name}", cwd="/dev/shm")
    with pytest.raises(Conflict, match="replaced"):
        posix.KIND.remove(found, view)
    with open(f"/dev/shm/{unique.name}") as f:
        assert f.read() == "squatted\n"


# --- bulk removal never unlinks a file on a disk filesystem ---

DRIVER = """
import json, subprocess, sys
holder = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
objects = []
for line in holder.stdout:
    if line.strip() == "ready":
        break
    objects.append(json.loads(line))
results = []
for command in json.loads(sys.argv[3]):
    command = [c.replace("ANON", str(objects[2]["inode"])).replace("MEMFD", str(objects[3]["inode"]))
               for c in command]
    done = subprocess.run(command, capture_output=True)
    results.append({"code": done.returncode, "out": done.stdout.decode("latin-1"), "err": done.stderr.decode()})
holder.stdin.close()
holder.wait()
print(json.dumps(results))
"""


def in_own_pid_namespace(specs, *commands):
    """Start a holder and run shmctl commands in a fresh PID namespace, where no other
    process of the host can be seen, so that `rm --all` reaches only what the test made."""
    prefix = shmctl_cmd()
    done = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", DRIVER,
                           os.path.join(HERE, "holder.py"), json.dumps(specs),
                           json.dumps([prefix + list(c) for c in commands])],
                          capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_bulk_rm_skips_a_database_on_disk_and_removes_tmpfs(tmp_path, tmpfs):
    disk_fs = fstype_of(tmp_path)
    assert disk_fs not in ("tmpfs", "ramfs", "hugetlbfs")
    db, seg = tmp_path / "data.mdb", tmpfs / "seg"
    specs = [{"kind": "file", "path": str(db), "size": 8192, "touch": 8192},
             {"kind": "file", "path": str(seg), "size": 4096, "touch": 10},
             {"kind": "anon", "size": 4096, "touch": 4096},
             {"kind": "memfd", "name": "shmctl-test", "size": 4096, "touch": 3}]
    listing, dry, bulk, anon, memfd = in_own_pid_namespace(
        specs, ["list", "--kind", "mmap", "--json"], ["rm", "--all", "--kind", "mmap", "--yes", "--dry-run"],
        ["rm", "--all", "--kind", "mmap", "--yes", "--force"], ["read", "mmap:@ANON"], ["read", "mmap:@MEMFD"])
    assert f"mmap:{db}" in [s["address"] for s in json.loads(listing["out"])["segments"]]  # listed, as before
    skipped = (f"shmctl: skipped mmap:{db}: a file on {disk_fs}, not shared memory "
               "(remove it by its address with --force)")
    assert skipped in dry["err"].splitlines() and f"would remove mmap:{db}" not in dry["out"]
    assert skipped in bulk["err"].splitlines()
    assert f"mmap:{seg}" in bulk["out"].splitlines() and f"mmap:{db}" not in bulk["out"]
    assert bulk["code"] == 5 and "anonymous shared memory has no name to remove" in bulk["err"]
    assert db.read_bytes() == b"Z" * 8192 and not seg.exists()
    assert anon == {"code": 0, "out": "A" * 4096, "err": ""}  # map_files is still the way into them
    assert memfd["code"] == 0 and memfd["out"] == "ZZZ" + "\0" * 4093


def test_rm_of_a_file_on_disk_needs_force_and_says_what_it_is(hold, tmp_path):
    disk_fs = fstype_of(tmp_path)
    db = tmp_path / "data.mdb"
    hold({"kind": "file", "path": str(db), "size": 4096, "touch": 4096})
    r = run("rm", f"mmap:{db}")
    assert r.code == 5 and r.out == ""
    assert r.err == f"shmctl: mmap:{db}: a file on {disk_fs}, not shared memory (--force unlinks it)\n"
    assert db.read_bytes() == b"Z" * 4096
    r = run("rm", f"mmap:{db}", "--force")
    assert r.code == 0 and r.out == f"mmap:{db}\n" and not db.exists()


@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_symlink_to_dev_shm_does_not_turn_a_path_into_a_posix_object(arena, unique, cleanup_shm, uid):
    shared, _victims, _victim = arena
    names, _ = cleanup_shm
    names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "4K").code == 0  # someone's object in /dev/shm
    attacker_runs(uid, "ln", "-s", "/dev/shm", "shm", cwd=shared)
    r = run("rm", f"mmap:{shared}/shm/{unique.name}", "--force")
    assert r.code == 3 and f"{shared}/shm is a symlink" in r.err
    assert os.path.exists(f"/dev/shm/{unique.name}")
    assert run("rm", f"mmap:/dev/shm/{unique.name}").out == f"posix:/{unique.name}\n"  # the real spelling still is


LEASE_HOLDER = """
import fcntl, os, signal, sys
signal.signal(signal.SIGIO, signal.SIG_IGN)  # a lease break must not end the holder
fd = os.open("leased", os.O_RDONLY | os.O_CREAT, 0o644)
fcntl.fcntl(fd, 1024, fcntl.F_RDLCK)  # F_SETLEASE
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.mark.parametrize("uid", ATTACKERS)
def test_a_lease_on_the_file_does_not_stall_root(arena, uid):
    from conftest import python_as
    shared, _victims, _victim = arena
    holder = subprocess.Popen([*python_as(uid), "-c", LEASE_HOLDER],
                              cwd=shared, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        r = run("write", f"mmap:{shared}/leased", "--data", "x", "--grow", timeout=20)  # 45 s if it waited
        assert r.code == 5 and "another process holds a lease on it" in r.err
    finally:
        holder.stdin.close()
        holder.wait(10)
    assert (shared / "leased").read_bytes() == b""
