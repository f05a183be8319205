"""shmctl limits and limits set, on the real kernel. kernel.shm* are per IPC namespace: the
tests that change them run only in the session's private namespace and put every value
back afterwards (the other tests share that namespace)."""
import json
import os
import re
import resource
import subprocess

import pytest

from conftest import needs_isolation, needs_root, nobody_prefix, run, run_in_process
from kernel import ANSI, on_terminal

PAGE = os.sysconf("SC_PAGE_SIZE")
SHM_KEYS = ("shmmax", "shmall", "shmmni", "shm_rmid_forced")
HEADER = "# shared-memory kernel parameters, written by shmctl limits --persist\n"
IPCMNI = (1 << 24) if "ipcmni_extend" in open("/proc/cmdline").read().split() else 32768


def proc_sys(name):
    with open(f"/proc/sys/kernel/{name}") as f:
        return int(f.read())


def set_proc_sys(name, value):
    with open(f"/proc/sys/kernel/{name}", "w") as f:
        f.write(f"{value}\n")


def snapshot():
    return {name: proc_sys(name) for name in SHM_KEYS}


@pytest.fixture
def sysctls():
    """The namespace's shm sysctls as they were; put back after the test, whatever happened."""
    saved = snapshot()
    yield saved
    now = snapshot()
    for name in ("shm_rmid_forced", "shmmni", "shmall", "shmmax"):
        if now[name] != saved[name]:
            set_proc_sys(name, saved[name])


def limits_json(*args, **kwargs):
    r = run("limits", "--json", *args, **kwargs)
    assert r.code == 0 and r.err == "", r
    return r.json()


def ipcs_limits():
    out = subprocess.run(["ipcs", "-m", "-l"], capture_output=True, text=True, check=True).stdout
    return {k.strip(): int(v) for k, _, v in (line.partition("=") for line in out.splitlines()) if v.strip()}


def lsipc_limits():
    """lsipc -g --json gives every number as a string."""
    out = subprocess.run(["lsipc", "-g", "--bytes", "--json"], capture_output=True, text=True, check=True).stdout
    rows = {r["resource"]: r for r in json.loads(out)["ipclimits"]}
    return {name: (int(r["limit"]), None if r["used"] == "-" else int(r["used"]),
                   None if r["use%"] == "-" else float(r["use%"].rstrip("%")))
            for name, r in rows.items() if name.startswith("SHM")}


def ipcs_pages_allocated():
    out = subprocess.run(["ipcs", "-m", "-u"], capture_output=True, text=True, check=True).stdout
    return int(next(line for line in out.splitlines() if line.startswith("pages allocated")).split()[-1])


# --- show ---

def test_show_json_is_typed_and_matches_proc_sys():
    data = limits_json()
    sysv = data["sysv"]
    assert data["page_size"] == PAGE
    for name in ("shmmax", "shmall", "shmmni"):
        assert sysv[name]["limit"] == proc_sys(name)
    assert sysv["shm_rmid_forced"] == proc_sys("shm_rmid_forced")
    assert sysv["shmall"]["limit_bytes"] == proc_sys("shmall") * PAGE
    assert sysv["shmmin"]["limit"] == 1 and sysv["ipcmni"] == IPCMNI
    assert data["ipc_namespace"] == os.stat("/proc/self/ns/ipc").st_ino  # a number, as list's `namespace`
    assert all(isinstance(sysv[n]["use_percent"], float) for n in ("shmmax", "shmall", "shmmni"))


@needs_isolation
def test_values_set_by_limits_set_agree_with_ipcs_lsipc_and_proc_sys(sysctls):
    """util-linux's own ipcs/lsipc limits test, with our set in place of sysctl."""
    r = run("limits", "set", f"shmmni={IPCMNI}", "shmall=8G", "shmmax=4G")
    assert r.code == 0, r
    assert r.out == f"kernel.shmmni = {IPCMNI}\nkernel.shmall = 2097152\nkernel.shmmax = 4294967296\n"
    assert "shmall=8G is 2097152 pages of 4096 bytes (shmall counts pages)" in r.err
    assert snapshot() == dict(sysctls, shmmni=IPCMNI, shmall=2097152, shmmax=4294967296)
    sysv = limits_json()["sysv"]
    assert (sysv["shmmni"]["limit"], sysv["shmall"]["limit"], sysv["shmmax"]["limit"]) == (IPCMNI, 2097152, 1 << 32)
    assert sysv["shmall"]["limit_bytes"] == 8 << 30 and not sysv["shmall"]["unlimited"]
    ipcs = ipcs_limits()
    assert ipcs["max number of segments"] == IPCMNI
    assert ipcs["max seg size (kbytes)"] == sysv["shmmax"]["limit"] // 1024
    assert ipcs["max total shared memory (kbytes)"] == sysv["shmall"]["limit_bytes"] // 1024
    assert ipcs["min seg size (bytes)"] == sysv["shmmin"]["limit"]
    lsipc = lsipc_limits()
    assert lsipc["SHMMNI"][0] == IPCMNI and lsipc["SHMALL"][0] == 2097152
    assert lsipc["SHMMAX"][0] == 1 << 32 and lsipc["SHMMIN"][0] == 1


@needs_isolation
def test_values_set_by_sysctl_show_in_every_form(sysctls):
    subprocess.run(["sysctl", "-q", "-w", "kernel.shmmax=1073741824", "kernel.shmall=524288", "kernel.shmmni=1000",
                    "kernel.shm_rmid_forced=1"], check=True)
    sysv = limits_json()["sysv"]
    assert sysv["shmmax"] == {"limit": 1 << 30, "used": sysv["shmmax"]["used"], "unit": "bytes", "unlimited": False,
                              "use_percent": sysv["shmmax"]["use_percent"]}
    assert (sysv["shmall"]["limit"], sysv["shmall"]["limit_bytes"]) == (524288, 2 << 30)
    assert (sysv["shmmni"]["limit"], sysv["shm_rmid_forced"]) == (1000, 1)
    plain = {line.split()[0]: line.split() for line in run("limits").out.splitlines() if line.strip()}
    assert plain["shmmax"][1:2] == ["1073741824"] and plain["shmall"][1] == "524288"
    assert plain["shmall_bytes"][1] == str(2 << 30) and plain["shmmni"][1] == "1000"
    assert plain["shm_rmid_forced"][1] == "1"
    human = ANSI.sub("", on_terminal("limits"))
    assert "SysV limits" in human and " 1GiB " in human and " 2GiB " in human and "1073741824" not in human
    assert "1073741824" in ANSI.sub("", on_terminal("limits", "--bytes"))


def test_default_limits_read_as_no_limit_without_overflow():
    data = limits_json()
    for name in ("shmmax", "shmall"):
        r = data["sysv"][name]
        assert r["unlimited"] == (r.get("limit_bytes", r["limit"]) >= 1 << 63)
        assert 0.0 <= r["use_percent"] <= 100.0


def test_usage_against_real_segments(hold):
    """Whole-page segments: lsipc's count (sum of sizes / page) and the kernel's agree."""
    before = limits_json()["sysv"]
    hold({"kind": "sysv", "size": PAGE}, {"kind": "sysv", "size": 3 * PAGE}, {"kind": "sysv", "size": 10 * PAGE})
    after = limits_json()["sysv"]
    assert after["shmmni"]["used"] == before["shmmni"]["used"] + 3 == after["segments"]
    assert after["shmall"]["used"] == before["shmall"]["used"] + 14
    assert after["shmall"]["used_bytes"] == after["shmall"]["used"] * PAGE
    assert after["shmmax"]["used"] == max(10 * PAGE, before["shmmax"]["used"])
    lsipc = lsipc_limits()
    assert lsipc["SHMMNI"][1] == after["shmmni"]["used"]
    assert lsipc["SHMALL"][1] == after["shmall"]["used"]
    assert lsipc["SHMMNI"][2] == pytest.approx(after["shmmni"]["use_percent"], abs=0.01)
    assert ipcs_pages_allocated() == after["shmall"]["used"]


def test_partial_pages_count_as_the_kernel_charges_them(hold):
    """The kernel charges shmall a whole page for a segment's last bytes (SHM_INFO, ipcs -m -u);
    lsipc divides the sum of the sizes and counts fewer."""
    before = limits_json()["sysv"]["shmall"]["used"]
    hold({"kind": "sysv", "size": 3 * PAGE + 1}, {"kind": "sysv", "size": 1})
    used = limits_json()["sysv"]["shmall"]["used"]
    assert used == before + 5 == ipcs_pages_allocated()
    assert lsipc_limits()["SHMALL"][1] < used


def test_plain_output_is_one_aligned_table_per_subject():
    lines = run("limits").out.split("\n\n")
    limits_lines = lines[0].splitlines()
    assert limits_lines[0].split() == ["NAME", "VALUE", "USED", "USE%", "UNIT"]
    rows = {line.split()[0]: line.split() for line in limits_lines[1:]}
    assert all(len(r) == 5 for r in rows.values())
    assert {"shmmax", "shmall", "shmall_bytes", "shmmni", "shmmin", "shm_rmid_forced", "ipcmni", "page_size",
            "dev_shm", "dev_shm_promised", "dev_shm_committed",
            "dev_shm_inodes", "posix_objects", "posix_declared", "mem_total", "shmem", "shmem_huge_pages",
            "hugetlb", "memlock", "memlock_hard", "hugetlb_shm_group"} == set(rows)
    assert rows["page_size"][1] == str(PAGE)
    assert int(rows["shmall_bytes"][1]) == int(rows["shmall"][1]) * PAGE
    value_ends = {re.match(r"^\S+\s+\S+", line).end() for line in limits_lines}
    assert len(value_ends) == 1  # VALUE is right-aligned under its header
    assert "\x1b" not in lines[0]
    if os.path.isdir("/sys/kernel/mm/hugepages"):
        assert lines[1].splitlines()[0].split() == ["POOL", "NODE", "TOTAL", "FREE", "RSVD", "SURP", "OVERCOMMIT",
                                                    "DEFAULT"]


def test_dev_shm_matches_statvfs_and_warns_of_sigbus(hold, unique):
    st = os.statvfs("/dev/shm")
    size = st.f_blocks * st.f_frsize
    shm = limits_json()["dev_shm"]
    assert shm["size"] == size and shm["inodes"] == st.f_files
    assert shm["free"] == pytest.approx(st.f_bavail * st.f_frsize, abs=1 << 20)
    # declares more than the whole tmpfs: ftruncate succeeds, a writer past the free space would get SIGBUS
    hold({"kind": "posix", "name": unique.name, "size": size + (1 << 30), "touch": PAGE})
    r = run("limits", "--json")
    assert r.code == 0
    shm = r.json()["dev_shm"]
    assert shm["posix_declared"] >= size + (1 << 30) and shm["posix_allocated"] >= PAGE
    assert shm["shortfall"] > 0 and shm["posix_objects"] >= 1
    assert r.err.startswith("shmctl: warning: /dev/shm: POSIX objects declare ")
    assert "the writer that passes it gets SIGBUS" in r.err and r.json()["warnings"]
    assert "SIGBUS" in run("limits").err


def test_memory_matches_meminfo_rlimit_and_sysctl():
    meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if "kB" in line}
    memory = limits_json()["memory"]
    assert memory["mem_total"] == meminfo["MemTotal"]
    assert memory["hugetlb"] == meminfo.get("Hugetlb")
    for name in ("shmem", "shmem_huge_pages"):
        assert isinstance(memory[name], int)
    soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    assert (memory["memlock_soft"], memory["memlock_hard"]) == tuple(
        None if v == resource.RLIM_INFINITY else v for v in (soft, hard))
    assert memory["hugetlb_shm_group"] == int(open("/proc/sys/vm/hugetlb_shm_group").read())


def test_memlock_is_the_callers():
    memory = limits_json(prefix=["prlimit", "--memlock=65536:131072"])["memory"]
    assert (memory["memlock_soft"], memory["memlock_hard"]) == (65536, 131072)
    r = run("limits", "--json", prefix=["prlimit", "--memlock=unlimited:unlimited"])
    if r.code != 0 and "prlimit:" in r.err:
        pytest.skip(f"cannot raise RLIMIT_MEMLOCK here: {r.err.strip()}")
    assert (r.json()["memory"]["memlock_soft"], r.json()["memory"]["memlock_hard"]) == (None, None)


@pytest.mark.skipif(not os.path.isdir("/sys/kernel/mm/hugepages"), reason="no hugetlb support")
def test_pools_match_sysfs():
    pools = limits_json()["hugepages"]
    base = "/sys/kernel/mm/hugepages"
    sizes = sorted(int(name[len("hugepages-"):-2]) * 1024 for name in os.listdir(base))
    assert [p["size"] for p in pools["pools"]] == sizes
    for p in pools["pools"]:
        d = f"{base}/hugepages-{p['size'] // 1024}kB"
        read = lambda f: int(open(f"{d}/{f}").read())  # noqa: E731
        assert (p["total"], p["free"], p["reserved"], p["surplus"]) == (
            read("nr_hugepages"), read("free_hugepages"), read("resv_hugepages"), read("surplus_hugepages"))
        assert p["default"] == (p["size"] == pools["default_size"])
        nodes = [n for n in os.listdir("/sys/devices/system/node") if n.startswith("node")]
        assert len(p["nodes"]) == len(nodes)
        assert sum(n["total"] for n in p["nodes"]) == p["total"]


def test_terminal_shows_sections_and_human_sizes():
    screen = ANSI.sub("", on_terminal("limits"))
    for title in (f"SysV limits (IPC namespace ipc:{os.stat('/proc/self/ns/ipc').st_ino})", "/dev/shm", "memory"):
        assert title in screen
    if os.path.isdir("/sys/kernel/mm/hugepages"):
        assert "huge page pools" in screen and "2MiB" in screen


# --- set: refusals change nothing ---

REFUSALS = [
    (["shmmax=-1"], 2, "shmctl: shmmax=-1: negative values are not allowed (a size in bytes, e.g. 34359738368 or "
                       "32G)\n"),
    (["shmall=lots"], 2, "shmctl: shmall=lots: expected a number with an optional unit (pages, or a size with a "
                         "unit, e.g. 8388608 or 32G)\n"),
    (["shmmni=4K"], 2, "shmctl: shmmni=4K: not a number (a number of segments, e.g. 32768)\n"),
    (["shmmax=1G", f"shmmni={IPCMNI + 1}"], 2,
     f"shmctl: shmmni={IPCMNI + 1}: above IPCMNI {IPCMNI}: the kernel refuses it"
     + (" (boot with ipcmni_extend for up to 16777216)\n" if IPCMNI == 32768 else "\n")),
    (["shm_rmid_forced=2"], 2, "shmctl: shm_rmid_forced=2: must be 0 or 1\n"),
    (["shmmax=18446744073709551616"], 2, "shmctl: shmmax=18446744073709551616: too large: the kernel keeps an "
                                         "unsigned long, at most 18446744073709551615\n"),
    (["shmmax=1G", "shmmax=2G"], 2, "shmctl: shmmax=2G: shmmax is given twice\n"),
    (["shmfoo=1"], 2, "shmctl: unknown limit 'shmfoo': not one shmctl sets (names: shmmax, shmall, shmmni, "
                      "shm_rmid_forced)\n"),
    (["shmmax"], 2, "shmctl: invalid assignment 'shmmax': expected NAME=VALUE (names: shmmax, shmall, shmmni, "
                    "shm_rmid_forced)\n"),
    ([], 2, "shmctl: limits set: nothing to set (give NAME=VALUE, e.g. shmmax=32G)\n"),
    (["--persist"], 2, "shmctl: limits set: nothing to set (give NAME=VALUE, e.g. shmmax=32G)\n"),
    pytest.param(["shmmax=1G", "--persist", "/nonexistent/dir/x.conf"], 2,
                 "shmctl: cannot persist to /nonexistent/dir/x.conf: /nonexistent/dir: no such file or directory "
                 "(give a file in an existing directory)\n", marks=needs_isolation),
    pytest.param(["shmmax=1G", "--persist", "/dev/null"], 5,
                 "shmctl: cannot persist to /dev/null: not a regular file (give a file such as "
                 "/etc/sysctl.d/60-shmctl.conf)\n", marks=needs_isolation),
]


@pytest.mark.parametrize("args, code, message", REFUSALS)
def test_refusals_change_nothing(args, code, message, sysctls):
    r = run_in_process("limits", "set", *args)
    assert (r.code, r.err, r.out) == (code, message, "")
    assert snapshot() == sysctls


@needs_isolation
def test_shmall_and_shmmni_below_use_refused_unless_force(hold, sysctls):
    hold({"kind": "sysv", "size": 64 * PAGE})
    used = limits_json()["sysv"]
    pages, segments = used["shmall"]["used"], used["shmmni"]["used"]
    r = run("limits", "set", f"shmall={pages - 1}")
    assert r.code == 5 and r.out == ""
    assert r.err == (f"shmctl: shmall={pages - 1}: below the {pages} pages SysV segments use now (remove segments "
                     "first, or --force: existing segments stay, new ones get ENOSPC)\n")
    r = run("limits", "set", "shmmax=1G", f"shmmni={segments - 1}")
    assert r.code == 5 and r.err.startswith(f"shmctl: shmmni={segments - 1}: below the {segments} SysV segments")
    assert snapshot() == sysctls
    r = run("limits", "set", f"shmall={pages - 1}", "--force")
    assert r.code == 0 and proc_sys("shmall") == pages - 1
    assert limits_json()["sysv"]["shmall"]["use_percent"] > 100


@needs_isolation
def test_shm_rmid_forced_refused_while_it_would_destroy_orphans(hold, cleanup_shm, sysctls):
    holder = hold({"kind": "sysv", "size": PAGE, "keep": True, "attach": False})
    shmid = holder.objects[0]["shmid"]
    cleanup_shm[1].append(shmid)
    holder.close()  # the creator is gone, nothing is attached: an orphan
    r = run("limits", "set", "shm_rmid_forced=1")
    assert r.code == 5
    assert r.err.startswith("shmctl: shm_rmid_forced=1: the kernel would destroy ")
    assert r.err.endswith(" orphaned segment(s) at once: no process attached, creator gone (see them with "
                          "shmctl list --orphans; --force to set it anyway)\n")
    assert proc_sys("shm_rmid_forced") == 0 and f"sysv:{shmid}" in run("list", "--json").out
    r = run("limits", "set", "shm_rmid_forced=1", "--force")
    assert r.code == 0 and proc_sys("shm_rmid_forced") == 1
    assert f'"sysv:{shmid}"' not in run("list", "--json").out  # the kernel destroyed it as it was set


@needs_isolation
def test_shmmax_beyond_shmall_warns(sysctls):
    r = run("limits", "set", "shmall=1024", "shmmax=1G")
    assert r.code == 0
    assert ("shmctl: warning: shmmax 1073741824 is more than shmall allows in total (1024 pages = 4194304 bytes): "
            "no segment can be larger than 4194304 bytes\n") in r.err
    assert "shmmax 1073741824 is more than shmall allows" in run("limits").err


@needs_isolation
def test_default_restores_the_kernel_default_and_json_reports(sysctls):
    run("limits", "set", "shmmax=1G", "shmmni=100")
    r = run("limits", "set", "shmmax=default", "shmmni=default", "--json")
    assert r.code == 0
    assert r.json() == {"changes": [
        {"name": "shmmax", "key": "kernel.shmmax", "old": 1 << 30, "new": 18446744073692774399,
         "kept": 18446744073692774399, "changed": True},
        {"name": "shmmni", "key": "kernel.shmmni", "old": 100, "new": 4096, "kept": 4096, "changed": True}],
        "persisted": None, "dry_run": False}
    r = run("limits", "set", "shmmni=4096")
    assert r.code == 0 and "shmctl: kernel.shmmni is 4096 already\n" in r.err


@needs_isolation
def test_dry_run_prints_the_lines_and_changes_nothing(sysctls, tmp_path):
    conf = tmp_path / "60-shmctl.conf"
    conf.write_text("kernel.shmmni = 7\n")
    r = run("limits", "set", "shmmni=8192", "shmall=1G", "--dry-run", "--persist", str(conf))
    assert r.code == 0
    assert r.out == "kernel.shmmni = 8192\nkernel.shmall = 262144\n"
    assert f"shmctl: would change kernel.shmmni: {sysctls['shmmni']} -> 8192\n" in r.err
    assert f"shmctl: would replace kernel.shmmni = 7 with 8192 in {conf}\n" in r.err
    assert f"shmctl: would add kernel.shmall = 262144 to {conf}\n" in r.err
    assert snapshot() == sysctls and conf.read_text() == "kernel.shmmni = 7\n"
    assert run("limits", "set", "shmmni=8192", "--dry-run", "--json").json()["dry_run"] is True


@needs_root
def test_not_root_is_refused_and_nothing_is_written(tmp_path, sysctls):
    os.chmod(tmp_path, 0o777)
    conf = tmp_path / "x.conf"
    r = run("limits", "set", "shmmni=8192", "--persist", str(conf), prefix=nobody_prefix())
    assert (r.code, r.out) == (4, "")
    assert r.err == "shmctl: cannot set kernel.shmmni: permission denied (run as root)\n"
    assert snapshot() == sysctls and not conf.exists()
    r = run("limits", "set", "shmmni=8192", "--dry-run", prefix=nobody_prefix())
    assert r.code == 0 and r.out == "kernel.shmmni = 8192\n" and snapshot() == sysctls


# --- --persist ---

@needs_isolation
def test_persist_replaces_our_keys_keeps_the_rest_and_renames(tmp_path, sysctls):
    conf = tmp_path / "99-db.conf"
    original = ("# database tuning\nvm.swappiness = 10\nkernel.shmmax=1\n; old value below\n"
                "-kernel/shmall = 5\nkernel.shmmax = 2\n")
    conf.write_text(original)
    os.chmod(conf, 0o640)
    os.link(conf, tmp_path / "old-inode")  # written in place, this link would see the new text
    r = run("limits", "set", "shmmax=4G", "shmall=1048576", "--persist", str(conf))
    assert r.code == 0, r
    assert conf.read_text() == ("# database tuning\nvm.swappiness = 10\nkernel.shmmax = 4294967296\n"
                                "; old value below\n-kernel.shmall = 1048576\n")
    assert (tmp_path / "old-inode").read_text() == original
    assert os.stat(conf).st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["99-db.conf", "old-inode"]  # no temporary file left
    assert f"shmctl: replaced kernel.shmmax = 2 with 4294967296 in {conf}\n" in r.err
    assert (proc_sys("shmmax"), proc_sys("shmall")) == (1 << 32, 1048576)


@needs_isolation
def test_persist_default_file_and_directory(tmp_path, sysctls):
    r = run("limits", "set", "--persist", "shmmni=8192", env={"SHMCTL_SYSCTL_DIR": str(tmp_path)})
    assert r.code == 0 and r.out == "kernel.shmmni = 8192\n"
    assert (tmp_path / "60-shmctl.conf").read_text() == HEADER + "kernel.shmmni = 8192\n"
    assert oct(os.stat(tmp_path / "60-shmctl.conf").st_mode & 0o777) == oct(0o644)
    other = tmp_path / "d"
    other.mkdir()
    r = run("limits", "set", "shmmni=8000", "shm_rmid_forced=0", "--persist", str(other), "--json")
    assert r.code == 0 and r.json()["persisted"] == str(other / "60-shmctl.conf")
    assert (other / "60-shmctl.conf").read_text() == HEADER + "kernel.shmmni = 8000\nkernel.shm_rmid_forced = 0\n"
    r = run("limits", "set", "shmmni=8192", "--persist", env={"SHMCTL_SYSCTL_DIR": str(tmp_path)})
    assert r.code == 0 and f"kernel.shmmni = 8192 is in {tmp_path}/60-shmctl.conf already" in r.err



def test_persist_never_writes_through_a_planted_symlink(tmp_path, sysctls):
    """A symlink at the sysctl.d file (planted in a directory someone else could write) is
    refused, never written through: the file it points to keeps its bytes."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    victim = tmp_path / "victim"
    victim.write_text("root's own file\n")
    os.symlink(victim, shared / "60-shmctl.conf")
    r = run("limits", "set", "shmmni=8192", "--persist", str(shared / "60-shmctl.conf"))
    assert r.code == 5 and r.err == (f"shmctl: cannot persist to {shared}/60-shmctl.conf: it is a symbolic link "
                                     "(give the file it points to)\n")
    assert victim.read_text() == "root's own file\n" and os.path.islink(shared / "60-shmctl.conf")
    assert sorted(os.listdir(shared)) == ["60-shmctl.conf"]  # no temp file left behind
