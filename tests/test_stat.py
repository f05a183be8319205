"""`shmctl stat` for every address form, on real segments; and its errors."""
import ctypes
import os

import pytest

from conftest import needs_isolation, run, run_in_process

pytestmark = needs_isolation


def stat_json(address):
    r = run("stat", address, "--json")
    assert r.code == 0, r
    return r.json()


def test_sysv_by_id_key_and_ftok(hold, unique, tmp_path):
    libc = ctypes.CDLL("libc.so.6")
    libc.ftok.restype = ctypes.c_int32
    ftok_key = libc.ftok(str(tmp_path).encode(), 7) & 0xFFFFFFFF
    h = hold({"kind": "sysv", "key": unique.key, "size": 10000, "mode": 0o640, "fork": True},
             {"kind": "sysv", "key": ftok_key, "size": 4096})
    shmid = h.objects[0]["shmid"]
    by_id = stat_json(f"sysv:{shmid}")
    assert stat_json(f"sysv:key={unique.key:#x}") == by_id or stat_json(f"sysv:key={unique.key:#x}")["id"] == shmid
    assert stat_json(f"sysv:key={unique.key}")["id"] == shmid
    assert by_id["size"] == 10000 and by_id["perms"] == "0640" and by_id["nattch"] == 2
    assert by_id["ctime"][:4].isdigit() and by_id["ctime"][-6] in "+-"
    pids = {p["pid"] for p in by_id["processes"]}
    assert pids == {h.pid, h.objects[0]["child"]}
    proc = next(p for p in by_id["processes"] if p["pid"] == h.pid)
    assert proc["user"] == "root" and "holder.py" in proc["command"] and proc["perms"] == "rw-s"
    assert proc["start"] == f"0x{h.objects[0]['start']:x}" and proc["length"] == 12288
    assert stat_json(f"sysv:ftok={tmp_path},7")["id"] == h.objects[1]["shmid"]


def test_sysv_plain_text(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096})
    r = run("stat", f"sysv:{h.objects[0]['shmid']}")
    fields = dict(line.split(":", 1) for line in r.out.splitlines() if not line.startswith(" ") and ":" in line)
    assert fields["address"].strip() == f"sysv:{h.objects[0]['shmid']}"
    assert fields["key"].strip() == f"{unique.key:#010x}" and fields["size"].strip() == "4096"
    assert "processes:" in r.out and str(h.pid) in r.out


def test_posix_both_spellings(hold, unique):
    h = hold({"kind": "posix", "name": unique.name, "size": 20000, "touch": 8192})
    long_form, short_form = stat_json(f"posix:/{unique.name}"), stat_json(f"/{unique.name}")
    assert long_form["address"] == short_form["address"] == f"posix:/{unique.name}"
    assert long_form["size"] == 20000 and long_form["rss"] == 8192
    assert [p["pid"] for p in long_form["processes"]] == [h.pid]
    assert "allocated:" in run("stat", f"/{unique.name}").out


def test_mmap_by_inode_and_path(hold, unique, tmp_path):
    db = tmp_path / "lmdb.mdb"
    h = hold({"kind": "memfd", "name": unique.name, "size": 8192}, {"kind": "file", "path": str(db), "size": 4096})
    memfd = stat_json(f"mmap:@{h.objects[0]['inode']}")
    assert memfd["backing"] == "memfd" and memfd["name"] == f"memfd:{unique.name}" and memfd["size"] == 8192
    assert [p["pid"] for p in memfd["processes"]] == [h.pid]
    by_path = stat_json(f"mmap:{db}")
    assert by_path["backing"] == "file" and by_path["size"] == 4096 and by_path["nattch"] == 1
    unmapped = tmp_path / "plain"
    unmapped.write_bytes(b"abc")
    assert stat_json(f"mmap:{unmapped}")["nattch"] == 0


@pytest.mark.parametrize("address,message", [
    ("sysv:2147483000", "shmctl: sysv:2147483000: no SysV segment with shmid 2147483000 "
                        "(a segment marked for removal loses its key; see shmctl list -m)\n"),
    ("sysv:key=0x7eadbeef", "shmctl: sysv:key=0x7eadbeef: no SysV segment with key 0x7eadbeef "
                            "(a segment marked for removal loses its key; see shmctl list -m)\n"),
    ("posix:/shmctl-no-such", "shmctl: posix:/shmctl-no-such: no such object in /dev/shm "
                              "(see shmctl list --kind posix)\n"),
    ("mmap:@1", None), ("mmap:/nonexistent/file", "shmctl: mmap:/nonexistent/file: no such file\n"),
])
def test_unknown_segments_exit_3(address, message):
    r = run_in_process("stat", address)
    assert r.code == 3 and r.out == ""
    assert r.err == message if message else r.err.startswith(f"shmctl: {address}: no process maps")


def test_things_in_dev_shm_that_are_not_segments(unique, cleanup_shm):
    names, _ = cleanup_shm
    names += [f"{unique.name}-d", f"sem.{unique.name}"]
    os.mkdir(f"/dev/shm/{unique.name}-d")
    open(f"/dev/shm/sem.{unique.name}", "wb").close()
    r = run("stat", f"/{unique.name}-d")
    assert r.code == 3 and "is a directory, not a shared-memory object" in r.err
    r = run("stat", "--json", f"/sem.{unique.name}")  # it exists (list -a prints it): shown, never exit 3
    assert r.code == 0 and r.json()["status"] == ["semaphore"], r


@pytest.mark.parametrize("address,why", [
    ("sysv:xyz", "a SysV address names a shmid, key= or ftok="), ("bogus:1", "unknown kind 'bogus'"),
    ("posix:/a/b", "may not contain '/'"), ("sysv:key=0x10000000000", "a SysV key is 32 bits"),
    ("sysv:key=0", "IPC_PRIVATE"),
])
def test_malformed_addresses_exit_2(address, why):
    r = run_in_process("stat", address)
    assert r.code == 2 and r.out == "" and len(r.err.splitlines()) == 1
    assert r.err.startswith("shmctl: invalid ")
    assert why in r.err


def test_ftok_of_a_missing_path():
    r = run("stat", "sysv:ftok=/no/such/path,1")
    assert r.code == 2 and r.err == "shmctl: ftok /no/such/path: no such file or directory (the path must exist)\n"


def test_the_expected_forms_are_named():
    r = run_in_process("stat", "nope")
    assert "sysv:SHMID, sysv:key=KEY" in r.err and "mmap:@INODE" in r.err
