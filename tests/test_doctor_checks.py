"""doctor's checks as pure functions of captured facts (table tests), the parsers they rest
on (logind.conf and its drop-ins in systemd's order, login.defs, mountinfo options,
/proc/PID/limits), and the renderer (text order, JSON shape, escaping)."""
import json
import os

import pytest

from shmctl_cli.doctor import Finding, Report, checks, config, memory, run_checks
from shmctl_cli.doctor.facts import (Facts, HugeMount, Locker, ShmPlace, SysvPlace, TmpfsMount, parse_memlock,
                                     parse_mount_line, tmpfs_size)
from shmctl_cli.limits import DevShm, HugePool, Limits, Resource
from shmctl_cli.model import Attachment, Segment
from shmctl_cli.render import doctor as render

MIB, GIB = 1 << 20, 1 << 30


def seg(kind="sysv", address="sysv:1", size=MIB, uid=4242, **kw):
    return Segment(kind, address, 1, size=size, uid=uid, **kw)


def facts(**kw):
    f = Facts(4096)
    f.meminfo = {"MemTotal": 16 * GIB, "SwapTotal": 0, "Shmem": 0}
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def sysv_place(shmmax=GIB, largest=0, shmall=1 << 20, used_pages=0, shmmni=4096, ids=0, rmid=0, orphans=0):
    limits = Limits(4096, "-")
    limits.resources = {"shmmax": Resource("shmmax", shmmax, largest, "bytes", 4096, ""),
                        "shmall": Resource("shmall", shmall, used_pages, "pages", 4096, ""),
                        "shmmni": Resource("shmmni", shmmni, ids, "segments", 4096, "")}
    limits.shm_rmid_forced, limits.orphans = rmid, orphans
    return SysvPlace("ipc:4026531839", 4026531839, limits)


def severities(found):
    return [f.severity for f in found]


# --- logind.conf: systemd's order ---

def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def test_logind_main_file_then_dropins_sorted_by_name_an_earlier_directory_masking(tmp_path):
    etc = str(tmp_path / "etc")
    write(f"{tmp_path}/usr/lib/systemd/logind.conf", "[Login]\nRemoveIPC=no\n")
    assert config.read_remove_ipc(etc) == (False, f"{tmp_path}/usr/lib/systemd/logind.conf:2")
    write(f"{etc}/systemd/logind.conf", "# mine\n[Login]\n#RemoveIPC=no\nRemoveIPC=yes\n")
    assert config.read_remove_ipc(etc) == (True, f"{etc}/systemd/logind.conf:4")  # only the first main file
    write(f"{tmp_path}/usr/lib/systemd/logind.conf.d/50-vendor.conf", "[Login]\nRemoveIPC=no\n")
    assert config.read_remove_ipc(etc).value is False  # a drop-in overrides the main file
    write(f"{tmp_path}/run/systemd/logind.conf.d/50-vendor.conf", "[Login]\nRemoveIPC=yes\n")
    assert config.read_remove_ipc(etc) == (True, f"{tmp_path}/run/systemd/logind.conf.d/50-vendor.conf:2")
    write(f"{tmp_path}/usr/local/lib/systemd/logind.conf.d/90-late.conf", "[Login]\nRemoveIPC=off\n")
    assert config.read_remove_ipc(etc).value is False  # the later name wins, wherever it lives
    write(f"{etc}/systemd/logind.conf.d/95-other.conf", "[Other]\nRemoveIPC=yes\n[Login]\nRemoveIPC=maybe\n")
    assert config.read_remove_ipc(etc).value is False  # another section, and an invalid value, ignored
    assert [os.path.basename(p) for p in config.logind_files(etc)] == ["logind.conf", "50-vendor.conf",
                                                                       "90-late.conf", "95-other.conf"]


def test_logind_compiled_default_is_yes(tmp_path):
    assert config.read_remove_ipc(str(tmp_path / "etc")) == (True, "the compiled default")


@pytest.mark.parametrize("text,expected", [
    ("SYS_UID_MAX 499\nUID_MIN 500\n", 499), ("UID_MIN\t\t 1000\n", 999), ("# UID_MIN 5\n", 999), ("", 999),
    ("UID_MIN 60000\n", 59999)])
def test_login_defs(text, expected):
    assert config.system_uid_max(config.parse_login_defs(text), "/etc/login.defs")[0] == expected


# --- 1. RemoveIPC ---

def test_removeipc_warns_naming_non_system_owners_only_where_logind_runs():
    segs = [seg(uid=4242, address="sysv:7"), seg("posix", "/db", uid=1000), seg(uid=999, address="sysv:8"),
            seg(uid=65534, address="sysv:9"), seg(uid=0, address="sysv:10")]
    f = facts(segments=segs, logind="process 1 is systemd-logind", remove_ipc=config.Setting(True, "x:2"))
    found = checks.logind_remove_ipc(f)
    assert severities(found) == ["warning"]
    assert "uid 4242" in found[0].summary and "sysv:7" in " ".join(found[0].evidence)
    assert "sysv:8" not in " ".join(found[0].evidence) and "sysv:9" not in " ".join(found[0].evidence)
    assert "RemoveIPC=no" in found[0].fix and "x:2" in found[0].evidence[1]
    f.remove_ipc = config.Setting(False, "x:3")
    assert checks.logind_remove_ipc(f) == []
    f.remove_ipc, f.logind = config.Setting(True, "default"), None
    assert checks.logind_remove_ipc(f) == []
    f.logind, f.segments = "running", [seg(uid=10)]
    assert severities(checks.logind_remove_ipc(f)) == ["info"]  # system users only: a word, no warning


# --- 2. /dev/shm ---

def shm(size, used, promised=0, objects=1, path="/dev/shm"):
    d = DevShm(path, size, size - used, used, objects=objects, declared=used + promised, allocated=used,
               unbacked=promised)
    d.promised = promised
    return d


@pytest.mark.parametrize("size,used,promised,expected", [
    (MIB, 4096, 4 * MIB, ["critical"]), (100 * MIB, 91 * MIB, 0, ["warning"]), (100 * MIB, 80 * MIB, 10 * MIB, []),
    (0, 0, 0, []), (GIB, 10 * MIB, 10 * MIB, [])])
def test_dev_shm_capacity(size, used, promised, expected):
    found = memory.dev_shm_capacity(facts(dev_shm=[ShmPlace("/dev/shm", None, shm(size, used, promised), [])]))
    assert severities(found) == expected
    if expected:
        assert "mount -o remount,size=" in found[0].fix and "/etc/fstab" in found[0].fix


def test_dev_shm_container_default_with_a_database_or_a_big_object():
    small = shm(64 * MIB, MIB)
    place = ShmPlace("/dev/shm of mount namespace 5", "docker:abc", small, [(10, "postgres"), (11, "bash")])
    found = memory.dev_shm_capacity(facts(dev_shm=[place]))
    assert severities(found) == ["warning"] and "10 (postgres)" in " ".join(found[0].evidence)
    assert "--shm-size=1G" in found[0].fix
    assert memory.dev_shm_capacity(facts(dev_shm=[place._replace(comms=[(11, "bash")])])) == []
    assert severities(memory.dev_shm_capacity(facts(dev_shm=[place._replace(comms=[], largest=40 * MIB)]))) \
        == ["warning"]
    assert memory.dev_shm_capacity(facts(dev_shm=[place._replace(dev_shm=shm(65 * MIB, MIB))])) == []


# --- 3. tmpfs ---

def test_mountinfo_options_and_tmpfs_sizes():
    line = "63 43 0:39 / /tmp/a\\040b rw,relatime - tmpfs x rw,size=1024k,mode=1777"
    dev, point, fstype, options = parse_mount_line(line)
    assert (point, fstype, tmpfs_size(options)) == ("/tmp/a b", "tmpfs", MIB)
    assert tmpfs_size(parse_mount_line("1 2 0:5 / /x rw - tmpfs y rw")[3]) is None  # the default: not shown
    assert tmpfs_size(parse_mount_line("1 2 0:5 / /x rw - tmpfs y rw,size=0k")[3]) == 0
    huge = parse_mount_line("64 43 0:40 / /h rw - hugetlbfs h rw,pagesize=2M,size=4194304,min_size=2097152")[3]
    assert (huge["pagesize"], huge["size"], huge["min_size"]) == ("2M", "4194304", "2097152")


@pytest.mark.parametrize("sizes,expected", [
    ([8 * GIB, 4 * GIB], []), ([8 * GIB, 9 * GIB], ["warning"]), ([None, None, None], ["warning"]),
    ([MIB, 0], ["warning"]), ([None, None], [])])
def test_tmpfs_overcommit(sizes, expected):
    mounts = [TmpfsMount(i, f"/t{i}", s, None, "mountinfo") for i, s in enumerate(sizes)]
    found = memory.tmpfs_overcommit(facts(tmpfs=mounts))
    assert severities(found) == expected


# --- 4. SysV limits ---

@pytest.mark.parametrize("place,expect,expected", [
    (sysv_place(), None, []), (sysv_place(shmmax=MIB, largest=2 * MIB), None, ["warning"]),
    (sysv_place(shmall=10, used_pages=20), None, ["warning"]), (sysv_place(shmmni=100, ids=95), None, ["warning"]),
    (sysv_place(shmmni=100, ids=100), None, ["critical"]), (sysv_place(shmmax=MIB), 2 * MIB, ["critical"]),
    (sysv_place(shmall=1024, used_pages=1000), 1 * MIB, ["critical"]), (sysv_place(), GIB, [])])
def test_sysv_limits(place, expect, expected):
    assert severities(checks.sysv_limits(facts(sysv=[place], expect=expect))) == expected


# --- 5. huge pages ---

def pool(total=0, free=0, rsvd=0, surplus=0, overcommit=0, size=2 * MIB):
    return HugePool(size, {"nr_hugepages": total, "free_hugepages": free, "resv_hugepages": rsvd,
                           "surplus_hugepages": surplus, "nr_overcommit_hugepages": overcommit}, default=True)


@pytest.mark.parametrize("p,segs,mounts,expected", [
    (pool(), [], [], []), (pool(4, 4), [], [], []),
    (pool(4, 1, rsvd=3), [], [], ["critical"]),
    (pool(2, 0, surplus=2), [], [], ["warning"]),
    (pool(4, 4, overcommit=8), [], [], ["info"]),
    (pool(1, 0), [seg(size=4 * MIB, hugetlb=True)], [], ["warning"]),
    (pool(2, 2), [seg(size=4 * MIB, hugetlb=True), seg(size=4 * MIB, hugetlb=None)], [], []),
    (pool(2, 2), [], [HugeMount("/h", 2 * MIB, 8 * MIB, None, "mountinfo")], ["warning"]),
    (pool(2, 2, overcommit=2), [], [HugeMount("/h", None, 8 * MIB, None, "mountinfo")], ["info"])])
def test_huge_pages(p, segs, mounts, expected):
    found = memory.huge_pages(facts(pools=[p], segments=segs, hugetlbfs=mounts))
    assert sorted(severities(found)) == sorted(expected)


# --- 6. shm_rmid_forced ---

def test_shm_rmid_forced():
    place = sysv_place(rmid=0)
    orphan = seg(address="sysv:3", orphan="creator gone", rss=MIB, namespace=4026531839)
    assert checks.shm_rmid_forced(facts(sysv=[place], segments=[])) == []
    found = checks.shm_rmid_forced(facts(sysv=[place], segments=[orphan]))
    assert severities(found) == ["info"] and "sysv:3" in found[0].evidence[1]
    found = checks.shm_rmid_forced(facts(sysv=[sysv_place(rmid=1)]))
    assert severities(found) == ["info"] and "re-attaches" in found[0].summary


# --- 7. memlock ---

def test_parse_memlock():
    text = ("Limit                     Soft Limit           Hard Limit           Units\n"
            "Max locked memory         65536                65536                bytes\n")
    assert parse_memlock(text) == 65536
    assert parse_memlock(text.replace("65536                65536", "unlimited unlimited")) is None
    assert parse_memlock("Max open files 1 1 files\n") is False


def test_memlock_over_the_limit_warns_unless_exempt():
    locked = seg(address="sysv:5", size=MIB, locked=True)
    low = Locker(77, "app", 65536, False)
    f = facts(segments=[locked], lockers={4242: [low]})
    found = checks.memlock(f)
    assert severities(found) == ["warning"] and "pid 77 (app)" in " ".join(found[0].evidence)
    assert "CAP_IPC_LOCK" in found[0].evidence[-1] and "memlock" in found[0].fix
    f.lockers = {4242: [low._replace(cap_ipc_lock=True)]}
    assert checks.memlock(f) == []
    f.lockers = {4242: [low._replace(memlock=None)]}
    assert checks.memlock(f) == []
    f.lockers = {4242: [low._replace(memlock=2 * MIB)]}
    assert checks.memlock(f) == []


# --- 8. orphans ---

def test_orphans_and_deleted_objects_threshold():
    small = seg(address="sysv:1", rss=MIB, orphan="creator gone")
    found = checks.orphans(facts(segments=[small]))
    assert severities(found) == ["info"] and found[0].fix == "shmctl rm sysv:1"
    big = seg(address="/a\x1bb", kind="posix", rss=GIB, orphan="nobody maps it")
    found = checks.orphans(facts(segments=[small, big]))
    assert severities(found) == ["warning"] and "\x1b" not in found[0].fix and "'/a\\x1bb'" in found[0].fix
    f = facts(segments=[seg(address="sysv:1", rss=700 * MIB, orphan="gone")])
    f.meminfo["MemTotal"] = 8 * GIB  # 5% of 8 GiB is 409.6 MiB, less than 1 GiB
    assert severities(checks.orphans(f)) == ["warning"]
    gone = seg("posix", "/gone", rss=MIB, deleted=True, attachments=[Attachment(99, comm="worker")])
    found = checks.orphans(facts(segments=[gone]))
    assert severities(found) == ["info"] and found[0].fix == "restart (or stop) pid 99 (worker)"


# --- 9. Shmem unexplained ---

@pytest.mark.parametrize("shmem,explained,tmpfs_used,expected", [
    (10 * MIB, 10 * MIB, 0, []), (100 * MIB, 10 * MIB, 0, ["info"]), (100 * MIB, 10 * MIB, 80 * MIB, []),
    (3 * GIB, 0, 0, ["warning"]), (1200 * MIB, 0, 0, ["info"])])
def test_shmem_unexplained(shmem, explained, tmpfs_used, expected):
    f = facts(explained=explained, tmpfs=[TmpfsMount(1, "/run", None, tmpfs_used, "mountinfo")])
    f.meminfo.update(Shmem=shmem, MemTotal=16 * GIB)
    assert severities(memory.shmem_unexplained(f)) == expected


# --- the report ---

def test_report_sorts_worst_first_and_renders_text_and_json():
    f = facts(segments=[seg(address="sysv:1", rss=MIB, orphan="gone")], sysv=[sysv_place(shmmax=MIB, largest=2 * MIB)],
              dev_shm=[ShmPlace("/dev/shm", None, shm(MIB, 4096, 4 * MIB), [])])
    report = run_checks(f)
    assert [x.severity for x in report.findings] == ["critical", "warning", "info"]
    assert report.worst == "critical" and len(report.checks) == 9
    text = render.report_text(report).splitlines()
    assert text[0].startswith("CRITICAL  dev-shm: ") and text[-1] == "9 checks, 3 findings (worst: critical)"
    assert any(line.startswith("          fix: mount -o remount") for line in text)
    assert "OK        memlock" in render.report_text(report, verbose=True)
    coloured = render.report_text(report, colour=True)
    assert "\x1b[1;31mCRITICAL\x1b[0m  dev-shm" in coloured
    data = json.loads(render.report_json(report))
    assert list(data) == ["findings", "checks", "worst"]
    assert list(data["findings"][0]) == ["check", "severity", "summary", "evidence", "fix"]
    assert {"check": "memlock", "severity": "ok"} in data["checks"] and data["worst"] == "critical"


def test_render_escapes_what_a_check_left_raw():
    report = Report([("orphans", "info")], [Finding("orphans", "info", "a\x1b[31mb", ["c\nd"], "e\rf")])
    text = render.report_text(report)
    assert "\x1b" not in text and "\r" not in text and "a\\x1b[31mb" in text and "c\\x0ad" in text
    assert json.loads(render.report_json(report))["findings"][0]["evidence"] == ["c\\x0ad"]


def test_the_cli_offers_every_check_in_the_registry_order():
    from shmctl_cli.cli.doctor import CHECKS
    from shmctl_cli.doctor import CHECK_IDS, registry
    assert CHECKS == CHECK_IDS == tuple(name for name, _ in registry())
