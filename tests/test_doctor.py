"""shmctl doctor on the real kernel: every check provoked for real where the kernel allows it
(in namespaces of the test's own: `unshare --ipc --mount`), through redirected roots where
it does not (logind.conf in a tmp etc root, captured /sys huge page counters); the JSON
shape and the exit codes 0/8/9."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import (ENV, ISOLATED, ROOT, SECOND_UID, as_user, nobody_prefix, run, run_as, run_in_process,
                      stop_child)
from test_limits_hugepages import pool_2m  # noqa: F401  (the fixture: the 2 MiB pool, restored afterwards)

pytestmark = pytest.mark.skipif(not (ROOT and ISOLATED), reason="needs root in the session's own namespaces")
MIB = 1 << 20
SHMCTL = f"{sys.executable} -m shmctl_cli"


def in_namespace(script: str, *extra_env) -> subprocess.CompletedProcess:
    """`sh -c script` in a new IPC and mount namespace of its own (private propagation):
    everything made there ends with it. $SHMCTL runs shmctl; the last command's status is
    the result's."""
    # a PID namespace too: a creator's pid cannot be reused by a busy host's processes, which
    # would make an orphan look held
    return subprocess.run(["unshare", "--ipc", "--mount", "--propagation", "private", "--pid", "--fork",
                           "--mount-proc", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120, env=dict(ENV, SHMCTL=SHMCTL))


def findings(out, check=None):
    import json
    data = json.loads(out if isinstance(out, str) else getattr(out, "stdout", None) or out.out)
    return [f for f in data["findings"] if check is None or f["check"] == check]


def check_of(out: str, name: str) -> str:
    import json
    return next(c["severity"] for c in json.loads(out)["checks"] if c["check"] == name)


# --- exit codes, JSON shape, a clean view ---

def test_a_clean_namespace_says_ok_and_exits_0():
    r = in_namespace("mount -t tmpfs -o size=256m,mode=1777 x /dev/shm && $SHMCTL doctor -v --check sysv-limits "
                     "--check dev-shm --check shm-rmid-forced --check memlock --check orphans")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [f"OK        {name}" for name in ("dev-shm", "sysv-limits", "shm-rmid-forced",
                                                                       "memlock", "orphans")] \
        + ["5 checks, 0 findings (worst: ok)"]
    r = in_namespace("mount -t tmpfs -o size=256m x /dev/shm && $SHMCTL doctor --json --check orphans")
    assert r.returncode == 0 and r.stdout.startswith('{\n  "findings": []')
    assert check_of(r.stdout, "orphans") == "ok"


def test_shmmax_lowered_below_a_segment_warns_8_and_expect_is_critical_9():
    """A segment of 2 MiB made first, then shmmax lowered to 1 MiB in the child's IPC namespace."""
    setup = "set -e; $SHMCTL create sysv --size 2M >/dev/null; echo 1048576 > /proc/sys/kernel/shmmax; set +e; "
    r = in_namespace(setup + "$SHMCTL doctor --check sysv-limits --json")
    assert r.returncode == 8, r
    (f,) = findings(r)
    assert (f["check"], f["severity"]) == ("sysv-limits", "warning") and "EINVAL" in f["summary"]
    assert "largest segment 2097152 bytes (/proc/sysvipc/shm)" in f["evidence"]
    assert f["fix"] == "shmctl limits set shmmax=2097152 --persist"
    r = in_namespace(setup + "$SHMCTL doctor --check sysv-limits --expect 4M")
    assert r.returncode == 9, r
    lines = r.stdout.splitlines()
    assert lines[0].startswith("CRITICAL  sysv-limits: ") and "(--expect) is larger than shmmax" in lines[0]
    assert lines[-1] == "1 checks, 2 findings (worst: critical)"
    assert "          fix: shmctl limits recommend --for 4194304 --apply" in lines


def test_shmmni_used_up_is_critical():
    r = in_namespace("set -e; $SHMCTL create sysv --size 4K >/dev/null; echo 1 > /proc/sys/kernel/shmmni; set +e; "
                     "$SHMCTL doctor --check sysv-limits --json")
    assert r.returncode == 9
    assert "1 of shmmni 1 segments exist" in findings(r)[0]["summary"]


def test_usage_errors():
    r = run_in_process("doctor", "--expect", "lots")
    assert r.code == 2 and "lots" in r.err
    r = run_in_process("doctor", "--check", "nothing")
    assert r.code == 2 and "nothing" in r.err


# --- 6. shm_rmid_forced, 8. orphans ---

def test_shm_rmid_forced_0_with_an_orphan_then_1():
    orphan = "set -e; $SHMCTL create sysv --size 64K >/dev/null; set +e; "
    r = in_namespace(orphan + "$SHMCTL doctor --check shm-rmid-forced --check orphans --json")
    assert r.returncode == 0, r  # info only
    (rmid,) = findings(r, "shm-rmid-forced")
    assert rmid["severity"] == "info" and "shm_rmid_forced=0: 1 orphaned SysV segment" in rmid["summary"]
    assert rmid["evidence"][0].startswith("kernel.shm_rmid_forced = 0 (/proc/sys/kernel/shm_rmid_forced")
    (orph,) = findings(r, "orphans")
    assert orph["severity"] == "info" and orph["fix"].startswith("shmctl rm sysv:")
    r = in_namespace("echo 1 > /proc/sys/kernel/shm_rmid_forced; $SHMCTL doctor --check shm-rmid-forced --json")
    (rmid,) = findings(r)
    assert r.returncode == 0 and "shm_rmid_forced=1" in rmid["summary"] and "shm_rmid_forced=0" in rmid["fix"]


HOLD_THEN_UNLINK = r"""
import mmap, os, sys
fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
os.ftruncate(fd, 1 << 20)
m = mmap.mmap(fd, 1 << 20)
m[:65536] = b"x" * 65536
os.unlink(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


def test_deleted_but_held_names_the_pid_to_restart(unique):
    child = subprocess.Popen([sys.executable, "-c", HOLD_THEN_UNLINK, f"/dev/shm/{unique.name}"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        r = run("doctor", "--check", "orphans", "--json")
        held = [f for f in findings(r) if "deleted object" in f["summary"]]
        assert len(held) == 1 and held[0]["severity"] == "info", r
        assert "restart (or stop) pid" in held[0]["fix"] and str(child.pid) in held[0]["fix"]
        assert any(unique.name in e and "rss 64KiB" in e for e in held[0]["evidence"]), held
    finally:
        stop_child(child)


# --- 2. /dev/shm, 3. tmpfs ---

SPARSE = ("import os; fd = os.open('/dev/shm/sparse', os.O_CREAT | os.O_RDWR, 0o600); "
          "os.ftruncate(fd, {size}); os.write(fd, b'x' * 4096)")


def test_dev_shm_of_1m_with_a_sparse_4m_object_is_critical():
    r = in_namespace(f"set -e; mount -t tmpfs -o size=1m,mode=1777 x /dev/shm; {sys.executable} -c "
                     f"\"{SPARSE.format(size=4 * MIB)}\"; set +e; $SHMCTL doctor --check dev-shm --json")
    assert r.returncode == 9, r
    (f,) = findings(r)
    assert f["severity"] == "critical" and "SIGBUS" in f["summary"]
    assert any("sparse files promise" in e for e in f["evidence"])
    assert f["fix"].startswith("mount -o remount,size=") and "/etc/fstab" in f["fix"]


def test_small_dev_shm_with_a_database_process_warns():
    """The 64 MiB container default: a process named postgres runs in that mount namespace."""
    r = in_namespace("set -e; mount -t tmpfs -o size=64m,mode=1777 x /dev/shm; d=$(mktemp -d); "
                     "cp /bin/sleep $d/postgres; $d/postgres 600 & pg=$!; set +e; "
                     "$SHMCTL doctor --check dev-shm --json; s=$?; kill $pg; rm -r $d; exit $s")
    assert r.returncode == 8, r
    (f,) = findings(r)
    assert "too small for a database" in f["summary"] and any("(postgres)" in e for e in f["evidence"])
    r = in_namespace(f"set -e; mount -t tmpfs -o size=16m,mode=1777 x /dev/shm; {sys.executable} -c "
                     f"\"{SPARSE.format(size=10 * MIB)}\"; set +e; $SHMCTL doctor --check dev-shm --json")
    assert r.returncode == 8 and "over half of it" in " ".join(findings(r)[0]["evidence"])


def test_tmpfs_larger_than_ram_and_swap_warns_naming_it(tmp_path):
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in open("/proc/meminfo")}
    size = meminfo["MemTotal"] + meminfo["SwapTotal"] + (1 << 30)
    point = tmp_path / "huge"
    point.mkdir()
    r = in_namespace(f"mount -t tmpfs -o size={size} x {point} && $SHMCTL doctor --check tmpfs-overcommit --json")
    assert r.returncode == 8, r
    (f,) = findings(r)
    assert f["evidence"][0].startswith(f"{point} (dev ")  # the largest first
    assert f["evidence"][-1].startswith("MemTotal ")


# --- 9. Shmem nothing explains ---

def test_shmem_in_a_tmpfs_of_another_mount_namespace_is_unexplained(tmp_path):
    point = tmp_path / "hidden"
    point.mkdir()
    child = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                              f"mount -t tmpfs x {point} && head -c 200M /dev/zero > {point}/fill && echo ready "
                              "&& exec cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline() == "ready\n"
        r = run("doctor", "--check", "shmem-unexplained", "--json")
        (f,) = findings(r)
        rest = next(e for e in f["evidence"] if e.startswith("unexplained: ")).split()[1].rstrip(";")
        assert rest.endswith(("MiB", "GiB")) and float(rest[:-3]) * (MIB if rest.endswith("MiB") else 1024 * MIB) \
            >= 150 * MIB, f
        assert f["fix"].startswith("run as root: shmctl doctor -A")
    finally:
        stop_child(child)


# --- 1. logind RemoveIPC ---

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


@pytest.fixture
def fake_logind(tmp_path):
    """A process named systemd-logind (a copy of cat), as logind's presence is seen."""
    binary = tmp_path / "bin" / "systemd-logind"
    binary.parent.mkdir()
    shutil.copy("/bin/cat", binary)
    proc = subprocess.Popen([str(binary)], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    deadline = __import__("time").monotonic() + 10
    while open(f"/proc/{proc.pid}/comm").read().strip() != "systemd-logind":
        assert __import__("time").monotonic() < deadline
    yield proc
    stop_child(proc)


def test_removeipc_from_dropins_with_a_segment_of_a_non_system_user(tmp_path, fake_logind, cleanup_shm):
    etc = tmp_path / "etc"
    address = run_as(SECOND_UID, "create", "sysv", "--size", "4K").out.strip()
    cleanup_shm[1].append(address.split(":")[1])
    env = {"SHMCTL_ETC_DIR": str(etc)}
    write(f"{etc}/systemd/logind.conf", "[Login]\nRemoveIPC=no\n")
    write(f"{tmp_path}/usr/lib/systemd/logind.conf.d/10-vendor.conf", "[Login]\nKillUserProcesses=no\nRemoveIPC=yes\n")
    r = run("doctor", "--check", "logind-removeipc", "--json", env=env)
    assert r.code == 8, r
    (f,) = findings(r)
    assert f"uid {SECOND_UID}" in f["summary"] and any(address in e for e in f["evidence"])
    assert f"RemoveIPC=yes: {tmp_path}/usr/lib/systemd/logind.conf.d/10-vendor.conf:3" in f["evidence"]
    assert f["evidence"][0] == f"systemd-logind: process {fake_logind.pid} is systemd-logind " \
                               f"(/proc/{fake_logind.pid}/comm)"
    assert "RemoveIPC=no" in f["fix"] and "systemctl restart systemd-logind" in f["fix"]
    write(f"{etc}/systemd/logind.conf.d/10-vendor.conf", "[Login]\nRemoveIPC=no\n")  # masks the vendor's
    r = run("doctor", "--check", "logind-removeipc", "-v", env=env)
    assert r.code == 0 and r.out.splitlines()[0] == "OK        logind-removeipc"
    write(f"{tmp_path}/run/systemd/logind.conf.d/20-late.conf", "[Login]\nRemoveIPC=yes\n")
    write(f"{etc}/login.defs", f"UID_MIN {SECOND_UID + 1}\n")  # now a system user: a word only
    r = run("doctor", "--check", "logind-removeipc", "--json", env=env)
    (f,) = findings(r)
    assert r.code == 0 and f["severity"] == "info" and f"{etc}/login.defs UID_MIN {SECOND_UID + 1}" in f["evidence"][2]


# --- 7. RLIMIT_MEMLOCK ---

def test_locked_segment_over_the_owners_memlock_limit(cleanup_shm):
    made = run("create", "sysv", "--size", "1M", "--lock", prefix=nobody_prefix("prlimit", "--memlock=4194304",
                                                                               uid=SECOND_UID, gid=SECOND_UID))
    assert made.code == 0, made
    cleanup_shm[1].append(made.out.strip().split(":")[1])
    low = subprocess.Popen([*as_user(SECOND_UID), "prlimit", "--memlock=65536", "cat"], stdin=subprocess.PIPE,
                           stdout=subprocess.DEVNULL)
    try:
        deadline = __import__("time").monotonic() + 10
        while open(f"/proc/{low.pid}/comm").read().strip() != "cat":
            assert __import__("time").monotonic() < deadline
        r = run("doctor", "--check", "memlock", "--json")
        assert r.code == 8, r
        (f,) = findings(r)
        assert f"uid {SECOND_UID}" in f["summary"] and "1MiB" in f["summary"]
        assert f"pid {low.pid} (cat): Max locked memory 65536 bytes (/proc/{low.pid}/limits)" in f["evidence"]
        assert "root (uid 0)" in f["evidence"][-1]
    finally:
        stop_child(low)


# --- 5. huge pages ---

@pytest.mark.machine_wide
def test_hugetlb_segment_left_in_surplus_pages(pool_2m, hold):
    from test_limits_hugepages import MB2, read_pool, write_pool
    write_pool("nr_hugepages", pool_2m + 3)
    holder = hold({"kind": "sysv", "size": 2 * MB2, "hugetlb": True, "touch": MB2})
    write_pool("nr_hugepages", 0)  # lowered below what is in use: the segment's pages stay as surplus
    assert read_pool("surplus_hugepages") >= 1
    r = run("doctor", "--check", "hugepages", "--json")
    assert r.code == 8, r
    summaries = [f["summary"] for f in findings(r)]
    assert any("surplus pages in use" in s for s in summaries)
    assert any("SHM_HUGETLB segments need 2 pages" in s for s in summaries), summaries
    holder.close()
    write_pool("nr_overcommit_hugepages", 2)
    r = run("doctor", "--check", "hugepages", "--json")
    assert r.code == 0 and [f["severity"] for f in findings(r)] == ["info"]
    assert "may grow by 2 surplus pages" in findings(r)[0]["summary"]


def test_reserved_more_than_free_from_captured_sys(tmp_path):
    """HugePages_Rsvd > Free cannot be made on a live kernel: counters captured under a sys root."""
    pool = tmp_path / "kernel/mm/hugepages/hugepages-2048kB"
    pool.mkdir(parents=True)
    for field, value in (("nr_hugepages", 4), ("free_hugepages", 1), ("resv_hugepages", 3),
                         ("surplus_hugepages", 0), ("nr_overcommit_hugepages", 0)):
        (pool / field).write_text(f"{value}\n")
    from shmctl_cli.doctor import run_checks
    from shmctl_cli.doctor.facts import gather
    from shmctl_cli.system import View
    report = run_checks(gather(View(sys_root=str(tmp_path), etc=str(tmp_path / "etc"))), ["hugepages"])
    (f,) = report.findings
    assert f.severity == "critical" and "3 pages reserved but only 1 free" in f.summary
    assert "/sys/kernel/mm/hugepages/hugepages-2048kB" in f.evidence[0]
