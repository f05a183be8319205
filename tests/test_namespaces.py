"""Namespaces and containers (issue 10): `--ns PID`, `list/limits --all-namespaces`, and
addresses that name one object on the whole host. Each test starts processes in IPC + mount
namespaces of their own (unshare), as a container's processes are, with their own /dev/shm."""
import contextlib
import json
import os
import subprocess
import sys

import pytest

from conftest import HERE, ISOLATED, run, run_as
from containers import cgroup_tree, podman_container  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(not ISOLATED or os.geteuid() != 0, reason="needs root and namespaces")


@contextlib.contextmanager
def contained(**spec):
    """A process in new IPC and mount namespaces holding what `spec` asks (tests/nsholder.py);
    yields what it printed. It ends, and its namespaces with it, when the block ends."""
    child = subprocess.Popen(["unshare", "--ipc", "--mount", "--propagation", "private", sys.executable,
                              os.path.join(HERE, "nsholder.py"), json.dumps(spec)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()  # the event: everything is made
        assert line, "the namespace holder failed"
        yield json.loads(line)
    finally:
        child.stdin.close()
        child.wait(timeout=30)


def _list(*args):
    r = run("list", *args, "--json")
    assert r.code == 0, r
    return json.loads(r.out)


def _mine(data, made):
    return {s["address"]: s for s in data["segments"] if s["namespace"] in (made["ipc"], made["mnt"])}


def test_all_namespaces_lists_each_namespace_with_qualified_addresses():
    with contained(sysv_size=65536, key=0x5EED0A, posix={"inner": 8192}) as c:
        data = _list("-A")
        mine = _mine(data, c)
        sysv, posix = f"sysv@ipc:{c['ipc']}:{c['shmid']}", f"posix@mnt:{c['mnt']}:/inner"
        assert set(mine) == {sysv, posix}
        assert mine[sysv]["size"] == 65536 and mine[sysv]["key"] == 0x5EED0A and mine[sysv]["nattch"] == 1
        assert mine[posix]["size"] == 8192 and mine[posix]["container"] is None
        seen = {(n["type"], n["namespace"]): n for n in data["namespaces"]}
        assert seen[("ipc", c["ipc"])]["pid"] == c["pid"] and seen[("mnt", c["mnt"])]["pid"] == c["pid"]
        assert data["namespaces"][0]["home"] and not seen[("ipc", c["ipc"])]["home"]
        table = run("list", "-A", "-o", "ADDRESS,NAMESPACE,CONTAINER,SIZE")
        assert f"{posix} mnt:{c['mnt']} -" in " ".join(table.out.split()) or posix in table.out


def test_every_address_list_prints_is_accepted_verbatim():
    with contained(sysv_size=4096, posix={"inner": 4096, "other": 12288}) as c:
        for address, seg in _mine(_list("-A"), c).items():
            r = run("stat", address, "--json")
            assert r.code == 0, r
            got = json.loads(r.out)
            assert (got["address"], got["id"], got["size"]) == (address, seg["id"], seg["size"])


def test_ns_pid_looks_from_their_namespaces():
    with contained(sysv_size=4096, posix={"inner": 4096}) as c:
        pid = str(c["pid"])
        addresses = {s["address"] for s in json.loads(run("--ns", pid, "list", "--json").out)["segments"]}
        assert {f"sysv:{c['shmid']}", "posix:/inner"} <= addresses
        r = run("--ns", pid, "read", "posix:/inner", "--length", "5", binary=True)
        assert (r.code, r.out) == (0, b"hello")
        made = run("--ns", pid, "create", "posix:/made", "--size", "4096")
        assert (made.code, made.out) == (0, "posix:/made\n")
        their_shm = f"/proc/{pid}/root/dev/shm"
        assert "made" in os.listdir(their_shm) and not os.path.exists("/dev/shm/made")
        gone = run("rm", f"posix@mnt:{c['mnt']}:/made")
        assert (gone.code, gone.out) == (0, f"posix@mnt:{c['mnt']}:/made\n")
        assert "made" not in os.listdir(their_shm)
        sysv = run("--ns", pid, "stat", f"sysv:{c['shmid']}", "--json")
        assert json.loads(sysv.out)["size"] == 4096


def test_completion_after_ns_pid_offers_their_addresses():
    """`shmctl --ns PID stat <TAB>` completes what that command would find: PID's segments."""
    with contained(sysv_size=4096, posix={"inner": 4096}) as c:
        line = f"shmctl --ns {c['pid']} stat "
        r = run(env={"_SHMCTL_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": ""})
        offered = [item.split(",", 1)[1] for item in r.out.splitlines()]
        assert r.code == 0 and {f"sysv:{c['shmid']}", "posix:/inner"} <= set(offered), r
        here = run(env={"_SHMCTL_COMPLETE": "bash_complete", "COMP_WORDS": "shmctl stat ", "COMP_CWORD": ""})
        assert "posix:/inner" not in here.out
        bad = run(env={"_SHMCTL_COMPLETE": "bash_complete", "COMP_WORDS": "shmctl --ns 2147483647 stat ", "COMP_CWORD": ""})
        assert (bad.code, bad.out.strip(), bad.err) == (0, "", "")  # no such process: nothing offered, nothing said


def test_same_inode_in_two_namespaces_is_two_addresses():
    with contained(posix={"x": 4096}) as a, contained(posix={"x": 8192}) as b:
        assert a["inodes"]["x"] == b["inodes"]["x"]  # every fresh tmpfs starts its inodes alike
        found = {s["address"]: s["size"] for s in _list("-A", "-k", "posix")["segments"]}
        assert found[f"posix@mnt:{a['mnt']}:/x"] == 4096 and found[f"posix@mnt:{b['mnt']}:/x"] == 8192
        for made, size in ((a, 4096), (b, 8192)):
            r = run("stat", f"posix@mnt:{made['mnt']}:/x", "--json")
            assert json.loads(r.out)["size"] == size


def test_a_file_mapped_in_another_mount_namespace_is_addressed_there():
    with contained(mnt_file=12288) as c:
        address = f"mmap@mnt:{c['mnt']}:/mnt/f"
        assert address in {s["address"] for s in _list("-k", "mmap")["segments"]}
        r = run("stat", address, "--json")
        assert r.code == 0 and json.loads(r.out)["size"] == 12288, r
        assert run("stat", "mmap:/mnt/f").code == 3  # not a file of ours


def test_ns_refusals_are_one_line():
    r = run("--ns", "999999999", "list")
    assert (r.code, r.out, r.err) == (2, "", "shmctl: --ns 999999999: no such process\n")
    with contained() as c:
        r = run_as("nobody", "--ns", str(c["pid"]), "list")
        assert r.code == 4 and r.err == (f"shmctl: --ns {c['pid']}: looking from another process's namespaces "
                                         "needs root (run as root)\n"), r
        gone = run("stat", f"sysv@ipc:{c['ipc'] + 1000000}:1")
        assert gone.code == 3 and "no process is in IPC namespace" in gone.err


def test_a_container_dev_shm_symlink_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep").write_bytes(b"precious")
    with contained(dev_shm_symlink=str(victim)) as c:
        pid = str(c["pid"])
        listed = run("--ns", pid, "list", "-k", "posix")
        assert "keep" not in listed.out and "absent, or reached through a symlink" in listed.err, listed
        r = run("--ns", pid, "rm", "--all", "--yes", "-k", "posix")
        assert "keep" not in r.out
        assert run("stat", f"posix@mnt:{c['mnt']}:/keep").code == 3
        everywhere = run("list", "-A", "-k", "posix")
        assert "keep" not in everywhere.out
    assert (victim / "keep").read_bytes() == b"precious"


def test_limits_all_namespaces_shows_each_dev_shm():
    with contained(posix={"big": 6 << 20}) as c:
        r = run("limits", "-A", "--json")
        assert r.code == 0, r
        rows = {(row["type"], row["namespace"]): row for row in json.loads(r.out)["namespaces"]}
        theirs = rows[("mnt", c["mnt"])]["dev_shm"]
        assert theirs["size"] == 8 << 20 and theirs["promised"] == (6 << 20) - 4096
        assert rows[("mnt", c["mnt"])]["pid"] == c["pid"]
        text = run("limits", "-A")
        assert f"mnt:{c['mnt']}" in text.out and f"ipc:{c['ipc']}" in text.out


def test_a_real_podman_container_is_listed_with_its_container(podman_container):
    """podman, from Debian's packages (tests/containers.py): its SysV segment (in the
    container's IPC namespace) and its /dev/shm object, with CONTAINER podman:ID12."""
    pid, container_id = podman_container
    label = f"podman:{container_id[:12]}"
    data = _list("-A", "--output-all")
    ours = [s for s in data["segments"] if s["container"] == label and s["kind"] in ("sysv", "posix")]
    by_kind = {s["kind"]: s for s in ours}
    assert by_kind["sysv"]["id"] == podman_container.shmid and by_kind["sysv"]["address"].startswith("sysv@ipc:")
    assert [p["pid"] for p in by_kind["sysv"]["processes"]] == [pid]
    assert by_kind["posix"]["name"] == podman_container.posix_name
    namespaces = [n for n in data["namespaces"] if n["container"] == label]
    assert {n["type"] for n in namespaces} == {"ipc", "mnt"} and all(n["pid"] == pid for n in namespaces)
    for address in (by_kind["sysv"]["address"], by_kind["posix"]["address"]):
        assert run("stat", address).code == 0
    inside = {s["address"] for s in json.loads(run("--ns", str(pid), "list", "--json").out)["segments"]}
    assert {f"sysv:{podman_container.shmid}", f"posix:{podman_container.posix_name}"} <= inside
    limits = json.loads(run("limits", "-A", "--json").out)["namespaces"]
    assert any(row["container"] == label and "dev_shm" in row for row in limits)


def test_container_column_from_cgroups_named_like_a_runtime(cgroup_tree):
    """A process moved into a cgroup named the way docker names its scopes."""
    docker_id = "3f4e5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081"
    with contained(posix={"inner": 4096}) as c:
        cgroup_tree.move(c["pid"], f"system.slice/docker-{docker_id}.scope")
        mine = _mine(_list("-A"), c)
        assert mine[f"posix@mnt:{c['mnt']}:/inner"]["container"] == f"docker:{docker_id[:12]}"
        table = run("list", "-A", "-k", "posix", "-o", "ADDRESS,CONTAINER")
        assert f"posix@mnt:{c['mnt']}:/inner docker:{docker_id[:12]}" in " ".join(table.out.split())
