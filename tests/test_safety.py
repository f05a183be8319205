"""What must never happen on a production host: data cut off, the wrong file removed, a
live segment called an orphan, a hang, a traceback. Each test is a case found in review."""
import os
import pty
import subprocess
import sys

import pytest

from conftest import HERE, needs_isolation, nobody_prefix, run
from kernel import created, held_lock, ipcs_m, listed, lock_path, wait_until_waiting

pytestmark = needs_isolation
ENV = dict(os.environ, PYTHONPATH=os.path.dirname(HERE))


@pytest.fixture
def posix_object(cleanup_shm, unique):
    names, _ = cleanup_shm
    names.append(unique.name)
    return unique.name


def test_a_grow_never_shrinks_what_another_writer_grew(posix_object):
    created(f"/{posix_object}", "--size", "4K")
    path = f"/dev/shm/{posix_object}"
    lock = lock_path(path)
    with held_lock(lock):  # another writer holds the write lock...
        writer = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "write", f"/{posix_object}", "--grow",
                                   "--offset", "8000", "--data", "0123456789"], env=ENV)
        wait_until_waiting(writer, lock)  # it opened the 4 KiB object and waits for the lock
        os.truncate(path, 1 << 20)  # ...and grows it to 1 MiB meanwhile
    assert writer.wait(30) == 0
    assert os.stat(path).st_size == 1 << 20
    assert run("read", f"/{posix_object}", "--offset", "8000", "--length", "10").out == "0123456789"


def test_data_and_hex_obey_length(posix_object):
    created(f"/{posix_object}", "--size", "4")
    assert run("write", f"/{posix_object}", "--data", "hello", "--length", "2").code == 0
    assert run("write", f"/{posix_object}", "--hex", "414243", "--length", "1", "--offset", "2").code == 0
    assert run("read", f"/{posix_object}", "--length", "3").out == "heA"
    r = run("write", f"/{posix_object}", "--data", "hello", "--length", "2", "--dry-run")
    assert r.out.startswith("would write 2 bytes")


def test_resize_never_shrinks_an_object_in_use(hold, posix_object):
    h = hold({"kind": "posix", "name": posix_object, "size": 65536, "keep": True})
    r = run("create", f"/{posix_object}", "--size", "4K", "--resize", "--force")
    assert r.code == 5 and f"cannot shrink it while in use by pids {h.pid}" in r.err
    assert os.stat(f"/dev/shm/{posix_object}").st_size == 65536
    assert run("create", f"/{posix_object}", "--size", "128K", "--resize").code == 0  # growing is harmless


def test_a_creator_outside_our_pid_namespace_is_not_gone(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "attach": False})
    shmid = h.objects[0]["shmid"]
    inner = ["unshare", "--pid", "--fork", "--mount-proc"]
    r = run("list", "--json", prefix=inner)
    seg = next(s for s in r.json()["segments"] if s["id"] == shmid)
    assert seg["cpid"] == 0 and seg["orphan"] is None
    r = run("rm", "--orphans", "--yes", "--kind", "sysv", prefix=inner)
    assert r.code == 0 and f"sysv:{shmid}" not in r.out and shmid in ipcs_m()


def test_a_path_in_another_mount_namespace_is_not_ours(tmp_path):
    ours = tmp_path / "same"
    ours.write_bytes(b"our data")
    child = subprocess.Popen(["unshare", "--mount", "sh", "-c", f"""
mount --make-rprivate / && mount -t tmpfs none {tmp_path} && exec {sys.executable} -c '
import mmap, os, sys
fd = os.open("{ours}", os.O_RDWR | os.O_CREAT); os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096); print(os.fstat(fd).st_ino, os.stat("/proc/self/ns/mnt").st_ino, flush=True)
sys.stdin.read()'
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        inode, namespace = child.stdout.readline().split()
        segments = listed("--kind", "mmap")
        assert f"mmap:{ours}" not in segments  # its path names a different file here
        theirs = f"mmap@mnt:{namespace}:{ours}"  # the path as that mount namespace has it
        assert segments[theirs]["name"] == str(ours) and segments[theirs]["id"] == int(inode)
        r = run("rm", theirs)  # still mapped there: refused; and never our file of that name
        assert (r.code, ours.read_bytes()) == (5, b"our data"), r
        assert run("stat", f"mmap:{ours}", "--json").code == 0
    finally:
        child.stdin.close()
        child.wait(10)


def test_create_from_a_pipe_longer_than_size_is_refused(posix_object):
    r = run("create", f"/{posix_object}", "--size", "4K", "--from", "-", input=os.urandom(10000))
    assert r.code == 5 and "has more than --size 4096 bytes" in r.err
    assert not os.path.exists(f"/dev/shm/{posix_object}")


def test_a_fifo_never_hangs(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    for args in (("read",), ("write", "--data", "x"), ("attach", "--for", "1")):
        r = run(args[0], f"mmap:{tmp_path}/fifo", *args[1:], timeout=20)
        assert r.code == 3 and "fifo, not a segment" in r.err, args


@pytest.mark.skipif(os.geteuid() != 0, reason="mounts a small tmpfs")
def test_a_full_tmpfs_while_writing_is_a_limit(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "none", str(mnt)], check=True)
    try:
        created(f"mmap:{mnt}/seg", "--size", "1M", "--force")
        r = run("write", f"mmap:{mnt}/seg", "--fill", "1", "--length", "1M")
        assert r.code == 6 and r.err.startswith(f"shmctl: write mmap:{mnt}/seg: No space left on device")
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_filesystem_errors_are_one_line(tmp_path):
    r = run("create", "mmap:/no/such/dir/x", "--size", "1")
    # the directory is a local path the user named, not a segment: 2, never 3
    assert r.code == 2 and len(r.err.splitlines()) == 1 and "no such file or directory" in r.err
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o755)
    for args in (("--size", "1"), ("--size", "1", "--dry-run")):
        r = run("create", f"mmap:{private}/x", *args, prefix=nobody_prefix())
        assert r.code == 4 and "Permission denied" in r.err and "internal error" not in r.err, args


def test_attach_edge_cases(posix_object):
    open(f"/dev/shm/{posix_object}", "wb").close()
    r = run("attach", f"/{posix_object}")
    assert r.code == 5 and "0 bytes cannot be mapped" in r.err
    run("write", f"/{posix_object}", "--data", "x", "--grow")
    r = run("attach", f"/{posix_object}", "--", "/no/such/command")
    assert r.code == 127 and "run /no/such/command: No such file or directory" in r.err


def test_bulk_rm_checks_again_after_asking(hold, unique, cleanup_shm):
    """A person answers the prompt; by then one object was replaced by one a process maps."""
    names, _ = cleanup_shm
    names += [f"{unique.name}-a", f"{unique.name}-b"]
    for suffix in ("a", "b"):
        created(f"/{unique.name}-{suffix}", "--size", "4K")
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "shmctl_cli", "rm", f"/{unique.name}-a", f"/{unique.name}-b"],
                            stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=ENV, text=True)
    os.close(slave)
    seen = b""
    while b"remove them?" not in seen:
        seen += os.read(master, 1024)
    os.unlink(f"/dev/shm/{unique.name}-b")
    holder = hold({"kind": "posix", "name": f"{unique.name}-b", "size": 4096, "keep": True})
    os.write(master, b"y\n")
    out = proc.communicate(timeout=30)[0]
    os.close(master)
    assert out == f"posix:/{unique.name}-a\n"
    assert os.path.exists(f"/dev/shm/{unique.name}-b") and holder.proc.poll() is None
