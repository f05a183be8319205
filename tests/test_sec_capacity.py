"""Capacity that is promised, not just used (issue 8). tmpfs allocates a page at its first
touch: ftruncate only promises it. Two 40 MiB objects "fit" on a 64 MiB tmpfs until both are
written, and the writer past the free space dies of SIGBUS. `create`, `create --resize` and
`write --grow` count what sparse files on the filesystem already promise; `limits` shows it;
`attach --lock` on a full tmpfs says so instead of blaming RLIMIT_MEMLOCK.

Every test mounts its own small tmpfs (in the session's private mount namespace), or works
on the session's own /dev/shm with sizes computed from its statvfs. Attackers (`nobody`,
SECOND_UID) plant sparse files, hard links, symlinks, FIFOs and mounts."""
import errno
import os
import re
import signal
import subprocess
import sys
import tempfile

import pytest

from conftest import SECOND_UID, as_user, mount_tmpfs, needs_isolation, needs_root, nobody_prefix, run, run_as
from shmctl_cli.units import format_size

pytestmark = [needs_root, needs_isolation]

M = 1 << 20
PAGE = os.sysconf("SC_PAGE_SIZE")
CREATE_HINT = "--overcommit creates it anyway: the first writer past the space dies of SIGBUS"
GROW_HINT = "--overcommit grows it anyway: the first writer past the space dies of SIGBUS"
LOCK_HINT = "mlock allocates every page of the object; free space there, or attach without --lock"


@pytest.fixture
def tmpfs():
    """tmpfs("64m") -> a fresh tmpfs of that size, mode 1777, in a 0755 directory of our
    own that other uids can reach; unmounted (and the directory removed) at teardown."""
    made = []

    def make(size="64m"):
        top = tempfile.mkdtemp(prefix="shmctl-capacity-")
        os.chmod(top, 0o755)
        made.append(top)
        mount_tmpfs(top, size)
        return top
    yield make
    for top in reversed(made):
        subprocess.run(["umount", "-R", top], check=True)
        os.rmdir(top)


def free(path: str) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def sparse(path: str, size: int, uid=None) -> None:
    """A sparse file: the promise an ftruncate makes (as `uid` when given: an attacker)."""
    prefix = as_user(uid) if uid is not None else []
    subprocess.run([*prefix, "truncate", "-s", str(size), path], check=True)


def filled(path: str, size: int) -> None:
    with open(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600), "wb") as f:
        f.write(b"\x5a" * size)


def refusal(err: str, address: str, why: str, hint: str = CREATE_HINT) -> None:
    """One line: `shmctl: [create|write ]ADDRESS: WHY (HINT)`."""
    assert re.fullmatch(rf"shmctl: (?:\w+ )?{re.escape(address)}: {re.escape(why)} \({re.escape(hint)}\)\n", err), err


def overcommitted(mount: str, free_: int, promised: int, needed: int) -> str:
    share = "of it " if promised <= free_ else ""
    return (f"{mount} has {format_size(free_)} free but {format_size(promised)} {share}is promised to sparse "
            f"objects; {format_size(needed)} needed")


# --- create on a tmpfs of our own ---

def test_a_second_sparse_object_that_would_overcommit_is_refused(tmpfs):
    top = tmpfs("64m")
    r = run("create", f"mmap:{top}/a", "--size", "40M")
    assert r.code == 0 and os.stat(f"{top}/a").st_blocks == 0  # made sparse: only promised
    r = run("create", f"mmap:{top}/b", "--size", "40M")
    assert r.code == 6 and r.out == ""
    refusal(r.err, f"mmap:{top}/b", overcommitted(top, 64 * M, 40 * M, 40 * M))
    assert os.listdir(top) == ["a"]
    plan = run("create", f"mmap:{top}/b", "--size", "40M", "--dry-run", "--overcommit")
    assert plan.code == 0 and plan.out.splitlines()[0] == (
        f"{top}: 64MiB free, 40MiB promised to sparse objects, 40MiB needed: overcommitted")
    made = run("create", f"mmap:{top}/b", "--size", "40M", "--overcommit")
    forced = run("create", f"mmap:{top}/c", "--size", "1M", "--force")
    assert (made.code, forced.code) == (0, 0) and sorted(os.listdir(top)) == ["a", "b", "c"]
    assert os.stat(f"{top}/b").st_size == 40 * M


def test_what_was_refused_really_dies_of_sigbus(tmpfs):
    """The kernel fact the check rests on: both ftruncates succeed, the writer of the
    second dies of SIGBUS once the tmpfs is full."""
    top = tmpfs("64m")
    assert run("create", f"mmap:{top}/a", "--size", "40M").code == 0
    assert run("create", f"mmap:{top}/b", "--size", "40M", "--overcommit").code == 0
    writer = ("import mmap, sys\n"
              "for name in sys.argv[1:]:\n"
              "    with open(name, 'r+b') as f, mmap.mmap(f.fileno(), 0) as m:\n"
              "        m[:] = b'\\x5a' * len(m)\n")
    child = subprocess.run([sys.executable, "-c", writer, f"{top}/a", f"{top}/b"], capture_output=True)
    assert child.returncode == -signal.SIGBUS
    assert os.stat(f"{top}/a").st_blocks * 512 == 40 * M and free(top) == 0


def test_the_promised_space_is_counted_on_the_whole_filesystem(tmpfs):
    """Sparse files deep in other directories of the same tmpfs count, seen from a bind mount
    of one subdirectory too (the walk starts at the mount that shows the whole filesystem)."""
    top = tmpfs("64m")
    os.makedirs(f"{top}/deep/er/still")
    os.makedirs(f"{top}/apps/db")
    sparse(f"{top}/deep/er/still/promise", 30 * M)
    bind = tempfile.mkdtemp(prefix="shmctl-capacity-bind-")
    try:
        subprocess.run(["mount", "--bind", f"{top}/apps", bind], check=True)
        try:
            r = run("create", f"mmap:{bind}/db/seg", "--size", "40M")
            assert r.code == 6
            refusal(r.err, f"mmap:{bind}/db/seg", overcommitted(top, 64 * M, 30 * M, 40 * M))
            assert os.listdir(f"{top}/apps/db") == []
        finally:
            subprocess.run(["umount", bind], check=True)
    finally:
        os.rmdir(bind)


def test_a_full_file_is_not_a_promise(tmpfs):
    """Written pages are used, not promised: the refusal then is plain lack of space."""
    top = tmpfs("64m")
    filled(f"{top}/full", 40 * M)
    plan = run("create", f"mmap:{top}/b", "--size", "20M", "--dry-run")
    assert plan.code == 0 and plan.out.splitlines()[0] == f"{top}: 24MiB free, 0B promised to sparse objects, 20MiB needed"
    r = run("create", f"mmap:{top}/b", "--size", "30M")
    assert r.code == 6
    refusal(r.err, f"mmap:{top}/b", f"{top} has only 24MiB free, 30MiB needed")
    assert run("create", f"mmap:{top}/b", "--size", "24M").code == 0  # exactly fits


def test_resize_counts_the_growth_beside_the_promises(tmpfs):
    top = tmpfs("64m")
    filled(f"{top}/seg", 8 * M)
    sparse(f"{top}/other", 40 * M)
    r = run("create", f"mmap:{top}/seg", "--size", "30M", "--resize")
    assert r.code == 6
    refusal(r.err, f"mmap:{top}/seg", overcommitted(top, 56 * M, 40 * M, 22 * M))
    assert os.stat(f"{top}/seg").st_size == 8 * M
    assert run("create", f"mmap:{top}/seg", "--size", "24M", "--resize").code == 0  # 16M + 40M = 56M
    assert os.stat(f"{top}/seg").st_size == 24 * M


def test_an_unlimited_tmpfs_has_no_free_space_to_check(tmpfs):
    """tmpfs size=0 (and hugetlbfs without size=) report 0 blocks: no limit, not 0 bytes free."""
    top = tmpfs("0")
    plan = run("create", f"mmap:{top}/big", "--size", "1T", "--dry-run")
    assert plan.code == 0 and plan.out.splitlines()[0] == f"{top}: no size limit, 1TiB needed"
    assert run("create", f"mmap:{top}/big", "--size", "1T").code == 0 and os.stat(f"{top}/big").st_size == 1 << 40


# --- attackers ---

@pytest.mark.parametrize("uid", ["nobody", SECOND_UID])
def test_an_attackers_sparse_file_is_a_promise_too(tmpfs, uid):
    """Another user's ftruncate takes no space but will, once written: root does not hand
    out the same space twice (unless told to), and the attacker's file is left alone."""
    top = tmpfs("64m")
    sparse(f"{top}/squat", 60 * M, uid=uid)
    r = run("create", f"mmap:{top}/mine", "--size", "8M")
    assert r.code == 6
    refusal(r.err, f"mmap:{top}/mine", overcommitted(top, 64 * M, 60 * M, 8 * M))
    st = os.stat(f"{top}/squat")
    assert os.listdir(top) == ["squat"] and (st.st_size, st.st_blocks) == (60 * M, 0)


def test_hard_links_do_not_multiply_a_promise(tmpfs):
    top = tmpfs("64m")
    os.makedirs(f"{top}/n", mode=0o777)
    os.chmod(f"{top}/n", 0o777)
    sparse(f"{top}/n/one", 20 * M, uid="nobody")
    for i in range(5):
        subprocess.run([*as_user(), "ln", f"{top}/n/one", f"{top}/n/link{i}"], check=True)
    plan = run("create", f"mmap:{top}/mine", "--size", "40M", "--dry-run")
    assert plan.code == 0 and plan.out.splitlines()[0] == f"{top}: 64MiB free, 20MiB promised to sparse objects, 40MiB needed"


def test_symlinks_fifos_and_other_mounts_do_not_lead_the_walk(tmpfs, tmp_path):
    """A symlink to a huge sparse file or to a directory elsewhere is not followed, a FIFO is
    never opened (no hang), and a filesystem mounted inside is not ours to count."""
    top = tmpfs("64m")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    sparse(str(elsewhere / "huge"), 1 << 40)
    subprocess.run([*as_user(), "ln", "-s", str(elsewhere / "huge"), f"{top}/to-file"], check=True)
    subprocess.run([*as_user(), "ln", "-s", str(elsewhere), f"{top}/to-dir"], check=True)
    subprocess.run([*as_user(), "ln", "-s", "/", f"{top}/to-root"], check=True)
    subprocess.run([*as_user(), "mkfifo", f"{top}/fifo"], check=True)
    os.mkdir(f"{top}/inner")
    mount_tmpfs(f"{top}/inner", "2g")  # unmounted with the outer one (umount -R)
    sparse(f"{top}/inner/huge", 1536 * M)
    r = run("create", f"mmap:{top}/mine", "--size", "60M", "--dry-run", timeout=20)
    assert r.code == 0 and r.out.splitlines()[0] == f"{top}: 64MiB free, 0B promised to sparse objects, 60MiB needed"
    inner = run("create", f"mmap:{top}/inner/seg", "--size", "1G", "--dry-run", timeout=20)
    assert inner.code == 6
    refusal(inner.err, f"mmap:{top}/inner/seg", overcommitted(f"{top}/inner", 2 << 30, 1536 * M, 1 << 30))
    assert os.path.getsize(elsewhere / "huge") == 1 << 40 and os.stat(f"{top}/fifo").st_size == 0


def test_a_walk_that_cannot_see_everything_says_at_least(tmpfs):
    """An attacker's directory 40 deep (past the walk's depth bound) or closed to the caller:
    what lies there is not counted, and the plan says the figure is a lower bound."""
    top = tmpfs("64m")
    deep = os.path.join(top, *["d"] * 40)
    subprocess.run([*as_user(), "mkdir", "-p", deep], check=True)
    sparse(os.path.join(deep, "promise"), 30 * M, uid="nobody")
    plan = run("create", f"mmap:{top}/mine", "--size", "40M", "--dry-run")
    assert plan.code == 0 and plan.out.splitlines()[0] == (
        f"{top}: 64MiB free, 0B promised to sparse objects (at least: not every directory could be walked), 40MiB needed")
    closed = os.path.join(top, "closed")
    os.mkdir(closed, 0o700)
    sparse(os.path.join(closed, "promise"), 10 * M)
    assert run("create", f"mmap:{top}/mine", "--size", "60M", "--dry-run").code == 6  # root sees the 10M
    plan = run("create", f"mmap:{top}/mine", "--size", "40M", "--dry-run", prefix=nobody_prefix(uid=SECOND_UID))
    assert plan.code == 0 and "0B promised to sparse objects (at least: " in plan.out


def test_a_user_without_root_is_checked_the_same(tmpfs):
    """nobody's own create on a tmpfs where SECOND_UID promised most of the space."""
    top = tmpfs("64m")
    sparse(f"{top}/theirs", 50 * M, uid=SECOND_UID)
    r = run("create", f"mmap:{top}/mine", "--size", "20M", prefix=nobody_prefix())
    assert r.code == 6
    refusal(r.err, f"mmap:{top}/mine", overcommitted(top, 64 * M, 50 * M, 20 * M))
    assert run_as("nobody", "create", f"mmap:{top}/mine", "--size", "14M").code == 0
    assert os.stat(f"{top}/mine").st_uid != 0


# --- write --grow ---

def test_write_grow_counts_the_growth_and_what_stays_sparse(tmpfs):
    top = tmpfs("64m")
    filled(f"{top}/seg", 8 * M)
    sparse(f"{top}/other", 40 * M)
    address = f"mmap:{top}/seg"
    r = run("write", address, "--grow", "--offset", "8M", "--fill", "0x41", "--length", "20M")
    assert r.code == 6
    refusal(r.err, address, overcommitted(top, 56 * M, 40 * M, 20 * M), GROW_HINT)
    assert os.stat(f"{top}/seg").st_size == 8 * M
    plan = run("write", address, "--grow", "--offset", "8M", "--fill", "0x41", "--length", "16M", "--dry-run")
    assert plan.code == 0 and plan.out.splitlines()[0] == f"{top}: 56MiB free, 40MiB promised to sparse objects, 16MiB needed"
    assert run("write", address, "--grow", "--offset", "8M", "--fill", "0x41", "--length", "16M").code == 0
    st = os.stat(f"{top}/seg")
    assert st.st_size == 24 * M and st.st_blocks * 512 == 24 * M and free(top) == 40 * M
    # a write far past the end leaves a hole: the whole growth is needed, and the hole stays promised
    r = run("write", address, "--grow", "--offset", "30M", "--data", "x")
    assert r.code == 6
    refusal(r.err, address, overcommitted(top, 40 * M, 40 * M, 6 * M + 1), GROW_HINT)
    assert run("write", address, "--grow", "--offset", "30M", "--data", "x", "--overcommit").code == 0
    plan = run("create", f"mmap:{top}/next", "--size", "4K", "--dry-run", "--overcommit")
    hole = (30 * M + 1) - (24 * M + PAGE)  # the page with the byte is allocated, the rest stays promised
    assert plan.out.splitlines()[0] == (f"{top}: {format_size(40 * M - PAGE)} free, {format_size(40 * M + hole)} "
                                        f"promised to sparse objects, 4KiB needed: overcommitted")


# --- POSIX objects in the session's /dev/shm, sizes from its statvfs ---

def promised_in_dev_shm() -> int:
    total = 0
    for root, dirs, files in os.walk("/dev/shm"):
        for name in files:
            st = os.lstat(os.path.join(root, name))
            if not os.path.islink(os.path.join(root, name)):
                total += max(0, st.st_size - st.st_blocks * 512)
    return total


def test_posix_objects_count_what_dev_shm_already_promises(cleanup_shm, unique):
    names, _ = cleanup_shm
    first, second = f"{unique.name}-1", f"{unique.name}-2"
    names += [first, second]
    before, room = promised_in_dev_shm(), free("/dev/shm")
    size = (room - before) * 6 // 10 // PAGE * PAGE
    assert run("create", f"posix:/{first}", "--size", size).code == 0
    r = run("create", f"posix:/{second}", "--size", size)
    assert r.code == 6
    refusal(r.err, f"posix:/{second}", overcommitted("/dev/shm", room, before + size, size))
    assert not os.path.exists(f"/dev/shm/{second}")
    plan = run("create", f"posix:/{second}", "--size", size, "--dry-run", "--overcommit")
    assert plan.out.splitlines()[0] == (f"/dev/shm: {format_size(room)} free, {format_size(before + size)} promised "
                                        f"to sparse objects, {format_size(size)} needed: overcommitted")
    assert run("create", f"posix:/{second}", "--size", size, "--overcommit").code == 0
    assert os.stat(f"/dev/shm/{second}").st_size == size


def test_limits_shows_promised_and_committed(cleanup_shm, unique):
    names, _ = cleanup_shm
    names.append(unique.name)
    assert run("create", f"/{unique.name}", "--size", "300M").code == 0
    assert run("write", f"/{unique.name}", "--fill", "1", "--length", "1M").code == 0
    r = run("limits", "--json")
    shm = r.json()["dev_shm"]
    assert r.code == 0 and shm["promised"] == promised_in_dev_shm() >= 299 * M
    assert shm["committed"] == shm["used"] + shm["promised"]
    rows = {line.split()[0]: line.split() for line in run("limits").out.split("\n\n")[0].splitlines()[1:]}
    assert rows["dev_shm_promised"][1:] == [str(shm["size"]), str(shm["promised"]),
                                            f"{shm['promised'] * 100 / shm['size']:.2f}%", "bytes"]
    assert rows["dev_shm_committed"][2] == str(shm["committed"])


# --- attach --lock on a full tmpfs ---

def test_mlock_on_a_full_tmpfs_fails_with_enomem_after_filling_it(tmpfs):
    """The kernel fact (6.18): mlock of a MAP_SHARED tmpfs mapping past the free space fails
    with ENOMEM, the errno RLIMIT_MEMLOCK gives too, and no SIGBUS; on the way it has
    allocated pages until the tmpfs was full."""
    top = tmpfs("1m")
    sparse(f"{top}/f", 4 * M)
    probe = ("import ctypes, mmap, os, sys\n"
             "libc = ctypes.CDLL('libc.so.6', use_errno=True)\n"
             "f = open(sys.argv[1], 'r+b'); m = mmap.mmap(f.fileno(), 0)\n"
             "addr = ctypes.addressof(ctypes.c_char.from_buffer(m))\n"
             "r = libc.mlock(ctypes.c_void_p(addr), ctypes.c_size_t(len(m)))\n"
             "print(r, ctypes.get_errno())\n")
    child = subprocess.run([sys.executable, "-c", probe, f"{top}/f"], capture_output=True, text=True)
    assert child.returncode == 0 and child.stdout.split() == ["-1", str(errno.ENOMEM)]
    assert free(top) == 0 and os.stat(f"{top}/f").st_blocks * 512 == 1 * M


def test_attach_lock_on_a_full_tmpfs_names_the_space_not_memlock(tmpfs):
    top = tmpfs("1m")
    assert run("create", f"mmap:{top}/seg", "--size", "4M", "--overcommit").code == 0
    r = run("attach", f"mmap:{top}/seg", "--lock", "--for", "0", timeout=30)
    assert r.code == 6 and r.err == (f"shmctl: attach mmap:{top}/seg --lock: no space to populate its pages: {top} has "
                                     f"1MiB free, 4MiB needed ({LOCK_HINT})\n")
    assert "RLIMIT_MEMLOCK" not in r.err
    assert os.stat(f"{top}/seg").st_blocks == 0 and free(top) == 1 * M  # refused before mlock filled the tmpfs


def test_attach_lock_when_another_file_took_the_space(tmpfs):
    top = tmpfs("1m")
    filled(f"{top}/hog", 1 * M - 16 * 1024)
    assert run("create", f"mmap:{top}/seg", "--size", "64K").code == 6  # 64K > 16K free
    assert run("create", f"mmap:{top}/seg", "--size", "64K", "--overcommit").code == 0
    r = run("attach", f"mmap:{top}/seg", "--readonly", "--lock", "--for", "0", timeout=30)
    assert r.code == 6 and r.err == (f"shmctl: attach mmap:{top}/seg --lock: no space to populate its pages: {top} has "
                                     f"16KiB free, 64KiB needed ({LOCK_HINT})\n")
    small = run("attach", f"mmap:{top}/hog", "--lock", "--for", "0", timeout=30)  # all its pages exist
    assert small.code == 0, small


def test_attach_lock_past_memlock_still_says_memlock(cleanup_shm, unique):
    """With room on the tmpfs, an ENOMEM from mlock is RLIMIT_MEMLOCK's, and says so."""
    names, _ = cleanup_shm
    names.append(unique.name)
    assert run_as("nobody", "create", f"/{unique.name}", "--size", "1M").code == 0
    r = run("attach", f"/{unique.name}", "--lock", "--for", "0", prefix=nobody_prefix("prlimit", "--memlock=65536"))
    assert r.code == 6 and "RLIMIT_MEMLOCK" in r.err and "no space" not in r.err
