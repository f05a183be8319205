"""Review of issue 8, files and objects: what the attacker can still plant on the way to a
file shmctl makes or removes. Each test plays `nobody` or SECOND_UID against root and checks
the real files: what is in the victim's directory, what is left, the exit code and message."""
import os
import shutil
import tempfile

import pytest

from conftest import ATTACKERS, attacker_runs, needs_isolation, needs_root, run

pytestmark = [needs_isolation, needs_root]

PAYLOAD = b"* * * * * root sh /tmp/evil\n"


@pytest.fixture
def places():
    """(pub, victims): a sticky 1777 directory like /tmp, and a root directory (an
    /etc/cron.d of this test) that every uid can reach but only root can write."""
    top = tempfile.mkdtemp(prefix="shmctl-sec-review-")
    os.chmod(top, 0o755)
    pub, victims = os.path.join(top, "pub"), os.path.join(top, "victims")
    os.mkdir(pub)
    os.chmod(pub, 0o1777)
    os.mkdir(victims, 0o755)
    yield pub, victims
    shutil.rmtree(top)


@pytest.fixture
def segment(unique, cleanup_shm):
    """A POSIX object made by this test, holding what an attacker wrote into it."""
    path = f"/dev/shm/{unique.name}"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    cleanup_shm[0].append(unique.name)
    os.write(fd, PAYLOAD)
    os.close(fd)
    return f"/{unique.name}"


@pytest.mark.parametrize("uid", ATTACKERS)
def test_read_o_never_follows_another_users_symlink_in_the_directory_path(uid, places, segment):
    pub, victims = places
    attacker_runs(uid, "ln", "-s", victims, os.path.join(pub, "dumps"))
    r = run("read", segment, "-o", os.path.join(pub, "dumps", "seg"))
    assert r.code == 5, r
    assert r.err == (f"shmctl: open {pub}/dumps: {pub}/dumps is a symlink of another user (or one of too many), "
                     "never followed (give the path without it)\n")
    assert os.listdir(victims) == [] and sorted(os.listdir(pub)) == ["dumps"]


def test_read_o_follows_roots_own_symlinks(places, segment):
    pub, victims = places
    os.symlink(os.path.relpath(victims, pub), os.path.join(pub, "mine"))  # relative, like /var/run -> ../run
    r = run("read", segment, "-o", os.path.join(pub, "mine", "seg"))
    assert r.code == 0 and r.err == "", r
    with open(os.path.join(victims, "seg"), "rb") as f:
        assert f.read() == PAYLOAD


@pytest.mark.parametrize("uid", ATTACKERS)
def test_roots_symlink_to_an_attackers_symlink_is_not_followed_through(uid, places, segment):
    pub, victims = places
    attacker_runs(uid, "ln", "-s", victims, os.path.join(pub, "theirs"))
    os.symlink(os.path.join(pub, "theirs"), os.path.join(pub, "mine"))
    r = run("read", segment, "-o", os.path.join(pub, "mine", "seg"))
    assert r.code == 5 and "symlink of another user" in r.err, r
    assert os.listdir(victims) == []


@pytest.mark.parametrize("path", ["/", "/.", "/.."])
def test_create_mmap_of_a_directory_path_is_a_usage_error(path, tmp_path):
    r = run("create", f"mmap:{tmp_path}{path}", "--size", "4096")
    assert r.code == 2 and r.out == "", r  # not exit 3 after making (and losing) a file
    assert "the path names a directory, not a file" in r.err
    assert os.listdir(tmp_path) == []


def test_rm_of_a_mapped_file_whose_name_holds_a_literal_escape(hold, tmpfs):
    """The name has the four characters \\x41: printed as \\x5cx41, read back as them, and
    removal must unlink that name, not decode it a second time into 'A'."""
    seg, decoy = tmpfs / "a\\x41", tmpfs / "aA"
    decoy.write_bytes(b"not the segment")
    hold({"kind": "file", "path": str(seg), "size": 4096, "touch": 1, "keep": True})
    printed = f"mmap:{tmpfs}/a\\x5cx41"
    r = run("rm", printed, "--force")
    assert r.code == 0 and r.out == printed + "\n", r
    assert not seg.exists() and decoy.read_bytes() == b"not the segment"
