"""`shmctl rm`: by address and by ipcrm's habits, in bulk, and every refusal."""
import os
import subprocess

import pytest

from conftest import needs_isolation, nobody_prefix, run, run_in_process
from kernel import created, ipcs_m, listed

pytestmark = needs_isolation


def hidden_processes() -> int:
    return run("list", "--json", "--output-all").json()["hidden_processes"]


@pytest.fixture(autouse=True)
def no_strays():
    yield
    for address, seg in listed().items():  # whatever a failed test left
        if address.startswith(("sysv:", "posix:/shmctl")):
            run("rm", "--force", address)


def test_ipcrm_habits_and_addresses():
    by_id = created("sysv", "--size", "4K")
    by_key = created("sysv", "--key", "0x7e570030", "--size", "4K")
    posix = created("/shmctl-rm", "--size", "4K")
    r = run("rm", "-m", by_id[5:], "-M", "0x7e570030", "--posix", "shmctl-rm", "--yes")
    assert r.code == 0 and r.out.splitlines() == [by_id, by_key, posix]
    assert int(by_id[5:]) not in ipcs_m() and not os.path.exists("/dev/shm/shmctl-rm")


def test_interop_with_ipcmk_ipcs_ipcrm():
    made = subprocess.run(["ipcmk", "-M", "1"], capture_output=True, text=True, check=True).stdout
    shmid = int(made.split()[-1])
    key = ipcs_m()[shmid]["key"]
    assert run("stat", f"sysv:{shmid}", "--json").json()["size"] == 1
    assert run("rm", "-M", hex(key)).out == f"sysv:{shmid}\n"
    ours = created("sysv", "--size", "12345", "--mode", "0640")
    shmid = int(ours[5:])
    info = subprocess.run(["ipcs", "-m", "-i", str(shmid)], capture_output=True, text=True, check=True).stdout
    assert "bytes=12345" in info and "mode=0640" in info.replace("mode=640", "mode=0640")
    subprocess.run(["ipcrm", "-m", str(shmid)], check=True)
    assert run("stat", ours).code == 3


def test_in_use_is_refused_naming_the_pids(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "fork": True, "keep": True},
             {"kind": "posix", "name": unique.name, "size": 4096, "keep": True},
             {"kind": "posix", "name": unique.name + "-fd", "size": 4096, "keep": True, "map": False,
              "close_fd": False})
    shmid = h.objects[0]["shmid"]
    child = h.objects[0]["child"]
    r = run("rm", f"sysv:{shmid}")
    assert r.code == 5 and r.out == ""
    assert f"shmctl: sysv:{shmid}: still in use by 2 processes: pids " in r.err
    assert str(h.pid) in r.err and str(child) in r.err and "--force marks it for removal" in r.err
    r = run("rm", f"/{unique.name}")
    assert r.code == 5 and "still in use by 2 processes" in r.err
    r = run("rm", f"/{unique.name}-fd")  # held open, not mapped: still in use
    assert r.code == 5 and "still in use by 2 processes" in r.err
    assert ipcs_m()[shmid]["status"] == [] and os.path.exists(f"/dev/shm/{unique.name}")


def test_force_marks_sysv_and_unlinks_posix(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "keep": True},
             {"kind": "posix", "name": unique.name, "size": 4096, "keep": True})
    shmid = h.objects[0]["shmid"]
    r = run("rm", "--force", f"sysv:{shmid}")
    assert r.code == 0 and r.out == f"sysv:{shmid}\n"
    assert "marked for removal: the kernel frees it when the last of 1 attached process detaches" in r.err
    assert ipcs_m()[shmid]["status"] == ["dest"]
    r = run("rm", "--force", f"/{unique.name}")
    assert r.code == 0 and "unlinked; its memory is freed when the 1 process using it let go" in r.err
    assert not os.path.exists(f"/dev/shm/{unique.name}")
    h.close()
    assert shmid not in ipcs_m()


def test_mmap_segments(hold, tmp_path):
    path = tmp_path / "file.bin"
    h = hold({"kind": "anon", "size": 4096}, {"kind": "file", "path": str(path), "size": 4096})
    r = run("rm", f"mmap:@{h.objects[0]['inode']}")
    assert r.code == 5 and "anonymous shared memory has no name to remove" in r.err and str(h.pid) in r.err
    r = run("rm", f"mmap:{path}")
    assert r.code == 5 and path.exists()
    r = run("rm", f"mmap:{path}", "--force")
    assert r.code == 0 and not path.exists()
    lone = tmp_path / "lone.bin"
    lone.write_bytes(b"x")
    assert run("rm", f"mmap:{lone}").code == 5 and lone.exists()  # a file on disk: issue 8 wants --force
    assert run("rm", f"mmap:{lone}", "--force").code == 0 and not lone.exists()  # unmapped: no users to refuse


def test_mmap_spelling_of_a_posix_object_keeps_every_safeguard(hold, unique, cleanup_shm):
    names, _ = cleanup_shm
    h = hold({"kind": "posix", "name": unique.name, "size": 4096, "keep": True})
    names += [unique.name, f"sem.{unique.name}", f"{unique.name}-link"]
    r = run("rm", f"mmap:/dev/shm/{unique.name}")
    assert r.code == 5 and str(h.pid) in r.err and os.path.exists(f"/dev/shm/{unique.name}")
    open(f"/dev/shm/sem.{unique.name}", "wb").close()
    r = run("rm", f"mmap:/dev/shm/sem.{unique.name}")
    assert r.code == 5 and "POSIX semaphore" in r.err and os.path.exists(f"/dev/shm/sem.{unique.name}")  # exists: not 3
    os.symlink(f"/dev/shm/{unique.name}", f"/dev/shm/{unique.name}-link")
    r = run("write", f"mmap:/dev/shm/{unique.name}-link", "--data", "x")
    assert r.code == 3 and "symlink" in r.err


def test_symlinks_are_never_followed(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"precious")
    (tmp_path / "link").symlink_to(target)
    for args in (("write", f"mmap:{tmp_path}/link", "--data", "PWNED"), ("read", f"mmap:{tmp_path}/link"),
                 ("rm", f"mmap:{tmp_path}/link", "--force"), ("stat", f"mmap:{tmp_path}/link")):
        r = run(*args)
        assert r.code == 3 and "symlink" in r.err, args
    assert target.read_bytes() == b"precious" and (tmp_path / "link").is_symlink()


def test_orphans_in_bulk():
    orphan = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True).stdout.split()[-1]
    with open("/dev/shm/shmctl-orphan", "wb") as f:
        f.write(b"x")
    keep = created("sysv", "--size", "4K")  # its creator (shmctl) is gone too: an orphan as well
    r = run("rm", "--orphans", "--dry-run", "--force")
    assert r.code == 0 and f"would remove sysv:{orphan}" in r.out and "would remove posix:/shmctl-orphan" in r.out
    assert int(orphan) in ipcs_m()
    r = run("rm", "--orphans")
    assert r.code == 2 and "no terminal to ask (add --yes)" in r.err
    r = run("rm", "--orphans", "--kind", "posix", "--yes")
    if hidden_processes():  # cannot be sure: skipped, saying so, until --force
        assert r.code == 0 and "skipped posix:/shmctl-orphan" in r.err and os.path.exists("/dev/shm/shmctl-orphan")
        r = run("rm", "--orphans", "--kind", "posix", "--yes", "--force")
    assert r.code == 0 and "posix:/shmctl-orphan" in r.out.splitlines() and int(orphan) in ipcs_m()
    r = run("rm", "--orphans", "--yes", "-q")
    assert r.code == 0 and r.out == "" and int(orphan) not in ipcs_m() and int(keep[5:]) not in ipcs_m()


def test_all_by_user_and_kind():
    a = created("/shmctl-all-a", "--size", "4K")
    b = created("/shmctl-all-b", "--size", "4K")
    sysv = created("sysv", "--size", "4K")
    r = run("rm", "--all", "--kind", "posix", "--user", "nobody", "--yes")
    assert r.code == 0 and r.out == "" and os.path.exists("/dev/shm/shmctl-all-a")
    force = ("--force",) if hidden_processes() else ()
    r = run("rm", "--all", "--kind", "posix", "--user", "root", "--yes", *force)
    assert r.code == 0 and {a, b} <= set(r.out.split()) and int(sysv[5:]) in ipcs_m()


def test_partial_failure_removes_the_rest():
    a = created("sysv", "--size", "4K")
    r = run("rm", a, "sysv:2147483000", "/shmctl-none", "--yes")
    assert r.code == 3 and r.out == f"{a}\n"
    assert "sysv:2147483000: no SysV segment" in r.err and "posix:/shmctl-none: no such object" in r.err


def test_bulk_as_a_user_never_guesses(hold, unique):
    hold({"kind": "posix", "name": unique.name, "size": 4096, "keep": True, "mode": 0o666})
    r = run("rm", "--orphans", "--kind", "posix", "--yes", prefix=nobody_prefix())
    assert r.code == 0 and f"posix:/{unique.name}" not in r.out
    assert f"skipped posix:/{unique.name}" in r.err and "not visible" in r.err
    assert os.path.exists(f"/dev/shm/{unique.name}")
    run("rm", "--force", f"/{unique.name}")


def test_permission_denied(unique):
    address = created("sysv", "--size", "4K")
    r = run("rm", address, prefix=nobody_prefix())
    assert r.code == 4 and r.err.startswith(f"shmctl: IPC_RMID {address}: Operation not permitted")
    assert int(address[5:]) in ipcs_m()


@pytest.mark.parametrize("args,message", [
    ((), "name segments, or choose --orphans or --all"), (("sysv:1", "--all"), "not both"),
    (("sysv:1", "--kind", "sysv"), "--kind and --user choose among --orphans/--all"),
    (("-M", "0x1" + "0" * 10), "32 bits"), (("--posix", "a/b"), "may not contain '/'"),
])
def test_usage(args, message):
    r = run_in_process("rm", *args)
    assert r.code == 2 and message in r.err and len(r.err.splitlines()) == 1
