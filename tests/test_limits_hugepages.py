"""limits hugepages and limits recommend, on the real kernel. The huge page pools and
vm.hugetlb_shm_group are global, not per namespace: every test that changes them puts the
old values back (a fixture, so even on failure), and the pools stay a few 2 MiB pages."""
import grp
import os

import pytest

from conftest import ROOT, needs_isolation, nobody_prefix, run, run_in_process
from kernel import ANSI, on_terminal
from test_limits import HEADER, PAGE, limits_json, proc_sys, sysctls  # noqa: F401 (sysctls: a fixture)

MB2 = 2 << 20
POOL = f"/sys/kernel/mm/hugepages/hugepages-{MB2 // 1024}kB"
GIGANTIC = "/sys/kernel/mm/hugepages/hugepages-1048576kB"


def read_pool(field, pool=POOL):
    with open(f"{pool}/{field}") as f:
        return int(f.read())


def write_pool(field, value, pool=POOL):
    with open(f"{pool}/{field}", "w") as f:
        f.write(f"{value}\n")


def default_huge_size():
    return next(int(line.split()[1]) * 1024 for line in open("/proc/meminfo") if line.startswith("Hugepagesize"))


@pytest.fixture
def pool_2m(request):
    """The 2 MiB pool, restored afterwards; `base` is what it held (our pages come on top).
    Skipped where it is busy or where the kernel cannot give us three pages."""
    assert request.node.get_closest_marker("machine_wide"), "a test that sizes a pool is marked machine_wide"
    if not ROOT or not os.path.isdir(POOL):
        pytest.skip("needs root and a 2 MiB huge page pool")
    saved = {f: read_pool(f) for f in ("nr_hugepages", "nr_overcommit_hugepages")}
    if read_pool("free_hugepages") != saved["nr_hugepages"] or read_pool("resv_hugepages"):
        pytest.skip("the 2 MiB pool is in use on this machine: the tests would disturb it")
    try:
        write_pool("nr_hugepages", saved["nr_hugepages"] + 3)
        if read_pool("nr_hugepages") < saved["nr_hugepages"] + 3:
            pytest.skip("this machine cannot allocate three 2 MiB huge pages now")
        write_pool("nr_hugepages", saved["nr_hugepages"])
        yield saved["nr_hugepages"]
    finally:
        write_pool("nr_overcommit_hugepages", saved["nr_overcommit_hugepages"])
        write_pool("nr_hugepages", saved["nr_hugepages"])


@pytest.fixture
def hugetlb_shm_group(request):
    assert request.node.get_closest_marker("machine_wide"), "a test that sets vm.* is marked machine_wide"
    with open("/proc/sys/vm/hugetlb_shm_group") as f:
        saved = f.read()
    yield int(saved)
    with open("/proc/sys/vm/hugetlb_shm_group", "w") as f:
        f.write(saved)


def two_mb_pool(data):
    return next(p for p in data["hugepages"]["pools"] if p["size"] == MB2)


# --- limits hugepages ---

@pytest.mark.machine_wide
def test_count_sets_the_pool_and_reports_what_the_kernel_allocated(pool_2m):
    r = run("limits", "hugepages", "--size", "2M", "--count", pool_2m + 3)
    assert r.code == 0, r
    assert r.out.splitlines()[0].split() == ["POOL", "NODE", "TOTAL", "FREE", "RSVD", "SURP", "OVERCOMMIT", "DEFAULT"]
    assert r.out.splitlines()[1].split()[:4] == [str(MB2), "-", str(pool_2m + 3), str(pool_2m + 3)]
    assert read_pool("nr_hugepages") == pool_2m + 3
    r = run("limits", "hugepages", "--size", "2M", "--count", pool_2m + 2, "--json")
    assert r.code == 0 and r.err == ""
    data = r.json()
    assert (data["asked"], data["got"], data["total"], data["size"]) == (pool_2m + 2, pool_2m + 2, pool_2m + 2, MB2)
    assert data["persisted"] is None and read_pool("nr_hugepages") == pool_2m + 2


@pytest.mark.machine_wide
def test_hugetlb_segment_is_counted_in_the_pool_and_listed_as_hugetlb(pool_2m, hold):
    assert run("limits", "hugepages", "--size", "2M", "--count", pool_2m + 3).code == 0
    holder = hold({"kind": "sysv", "size": 2 * MB2, "hugetlb": True, "touch": MB2})
    shmid = holder.objects[0]["shmid"]
    data = limits_json()
    pool = two_mb_pool(data)
    # two pages promised at shmget, one of them touched: free counts the reserved one
    assert (pool["total"], pool["free"], pool["reserved"], pool["surplus"]) == (pool_2m + 3, pool_2m + 2, 1, 0)
    assert (pool["free"], pool["reserved"]) == (read_pool("free_hugepages"), read_pool("resv_hugepages"))
    meminfo = {line.split(":")[0]: line.split()[1] for line in open("/proc/meminfo")}
    assert data["memory"]["hugetlb"] == int(meminfo["Hugetlb"]) * 1024 >= (pool_2m + 3) * MB2
    assert data["sysv"]["shmmax"]["used"] >= 2 * MB2
    listed = {s["address"]: s for s in run("list", "--json").json()["segments"]}
    assert "hugetlb" in listed[f"sysv:{shmid}"]["status"]
    # lowered below what is in use: the pages in use stay as surplus until released
    r = run("limits", "hugepages", "--count", 0, "--size", "2M", "--json")
    assert r.code == 0 and r.json()["got"] == 0 and r.json()["surplus"] >= 1
    assert "pages in use stay in the pool as surplus until they are released" in r.err
    holder.close()  # released: the surplus goes, down to the 0 asked (the fixture restores the pool)
    assert read_pool("nr_hugepages") == 0 == two_mb_pool(limits_json())["total"]


@pytest.mark.machine_wide
def test_overcommit(pool_2m):
    r = run("limits", "hugepages", "--size", "2M", "--overcommit", 2, "--json")
    assert r.code == 0 and r.json()["overcommit"] == 2 == read_pool("nr_overcommit_hugepages")
    assert r.json()["asked"] is None and r.json()["got"] is None


@pytest.mark.machine_wide
def test_persist_writes_vm_nr_hugepages_for_the_default_size(pool_2m, tmp_path):
    if default_huge_size() != MB2:
        pytest.skip("2 MiB is not the default huge page size here")
    conf = tmp_path / "hp.conf"
    conf.write_text("vm.swappiness = 1\nvm.nr_hugepages = 99\n")
    r = run("limits", "hugepages", "--count", pool_2m + 1, "--overcommit", 1, "--persist", str(conf))
    assert r.code == 0, r
    assert conf.read_text() == f"vm.swappiness = 1\nvm.nr_hugepages = {pool_2m + 1}\nvm.nr_overcommit_hugepages = 1\n"
    assert f"replaced vm.nr_hugepages = 99 with {pool_2m + 1} in {conf}" in r.err
    r = run("limits", "hugepages", "--count", pool_2m, "--persist", env={"SHMCTL_SYSCTL_DIR": str(tmp_path)})
    assert r.code == 0 and (tmp_path / "60-shmctl.conf").read_text() == HEADER + f"vm.nr_hugepages = {pool_2m}\n"


@pytest.mark.machine_wide  # writes the 1 GiB pool's size (the same count back)
@pytest.mark.skipif(not (ROOT and os.path.isdir(GIGANTIC)), reason="needs root and a 1 GiB pool")
def test_persist_of_another_size_names_the_kernel_command_line(tmp_path):
    count = read_pool("nr_hugepages", GIGANTIC) - read_pool("surplus_hugepages", GIGANTIC)  # unchanged: no allocation
    conf = tmp_path / "x.conf"
    r = run("limits", "hugepages", "--size", "1G", "--count", count, "--persist", str(conf))
    assert r.code == 0 and not conf.exists()
    assert r.err == (f"shmctl: 1GiB pages are not the default size and have no sysctl: to keep them after a reboot, "
                     f"add `hugepagesz=1G hugepages={count}` to the kernel command line (GRUB_CMDLINE_LINUX in "
                     "/etc/default/grub)\n")
    r = run("limits", "hugepages", "--size", "1G", "--overcommit", 1)
    assert r.code == 2 and r.err == ("shmctl: --overcommit 1: the kernel does not overcommit 1GiB pages (gigantic "
                                     "pages never are)\n")
    assert read_pool("nr_overcommit_hugepages", GIGANTIC) == 0


def test_show_pools():
    if not os.path.isdir("/sys/kernel/mm/hugepages"):
        pytest.skip("no hugetlb support")
    r = run("limits", "hugepages")
    assert r.code == 0 and r.out.startswith("      POOL NODE")
    r = run("limits", "hugepages", "--size", "2M", "--json")
    assert [p["size"] for p in r.json()["pools"]] == [MB2]


@pytest.mark.skipif(not os.path.isdir(POOL), reason="no 2 MiB pool")
@pytest.mark.parametrize("args, code, message", [
    (["--size", "4M", "--count", "1"], 2, "shmctl: no 4MiB huge page pool: this kernel has "),
    (["--persist"], 2, "shmctl: --persist: nothing to persist (give --count or --overcommit)\n"),
    (["--count", "-1"], 2, "shmctl: invalid --count '-1': must be at least 0"),
    (["--size", "2M", "--count", "100000000"], 6, "shmctl: 100000000 pages of 2MiB: 190.7TiB with the other pools' "),
])
def test_hugepages_refusals_change_nothing(args, code, message):
    before = read_pool("nr_hugepages")
    r = run_in_process("limits", "hugepages", *args)
    assert r.code == code and r.err.startswith(message) and r.out == ""
    assert len(r.err.splitlines()) == 1 and read_pool("nr_hugepages") == before


@pytest.mark.skipif(not (ROOT and os.path.isdir(POOL)), reason="needs root to become nobody, and a 2 MiB pool")
def test_hugepages_not_root():
    before = read_pool("nr_hugepages")
    r = run("limits", "hugepages", "--size", "2M", "--count", before + 1, prefix=nobody_prefix())
    assert r.code == 4 and r.err == "shmctl: cannot size the 2MiB huge page pool: permission denied (run as root)\n"
    assert read_pool("nr_hugepages") == before


# --- limits recommend ---

@needs_isolation
@pytest.mark.usefixtures("sysctls")
def test_recommend_says_what_to_raise_and_how():
    assert run("limits", "set", "shmmax=1G", "shmall=1G", "shmmni=64").code == 0
    used = limits_json()["sysv"]
    r = run("limits", "recommend", "--for", "4G", "--segments", "2", "--json")
    assert r.code == 0, r
    data = r.json()
    items = {i["name"]: i for i in data["items"]}
    assert (data["for"], data["segments"], data["hugepages"], data["applied"]) == (4 << 30, 2, False, False)
    assert items["shmmax"] == {"name": "shmmax", "current": 1 << 30, "needed": 4 << 30, "unit": "bytes",
                               "enough": False, "how": "largest segment"}
    pages = used["shmall"]["used"] + (4 << 30) // PAGE + 1
    assert (items["shmall"]["current"], items["shmall"]["needed"], items["shmall"]["enough"]) == (262144, pages, False)
    assert (items["shmmni"]["needed"], items["shmmni"]["enough"]) == (used["shmmni"]["used"] + 2, True)
    assert "nr_hugepages" not in items and "hugetlb_shm_group" not in items
    command = f"shmctl limits set shmmax={4 << 30} shmall={pages}"
    assert data["commands"] == [command]
    plain = run("limits", "recommend", "--for", "4G", "--segments", "2")
    assert plain.out.splitlines()[0].split() == ["NAME", "CURRENT", "NEEDED", "UNIT", "STATUS"]
    assert plain.out.endswith(f"\n\n{command}\n")
    assert "run the commands above (as root), or --apply" in plain.err
    assert run(*command.split()[1:]).code == 0  # the exact command does it
    after = run("limits", "recommend", "--for", "4G", "--segments", "2", "--json").json()
    assert after["commands"] == [] and all(i["enough"] for i in after["items"] if i["name"] != "memlock")


def test_recommend_refuses_more_than_memtotal():
    from shmctl_cli.units import format_size
    total = limits_json()["memory"]["mem_total"]
    r = run("limits", "recommend", "--for", total + 1)
    assert (r.code, r.out) == (6, "")
    assert r.err == (f"shmctl: limits recommend --for {format_size(total + 1)}: more than MemTotal "
                     f"{format_size(total)} (shared memory has to fit in RAM: ask for less)\n")


@pytest.mark.parametrize("args, message", [
    (["--for", "1G", "--group", "nogroup"], "shmctl: --group: only matters with --hugepages (add --hugepages)\n"),
    (["--for", "1G", "--hugepages", "--group", "no-such-group-x"],
     "shmctl: unknown group 'no-such-group-x': no such group name (give a name or a numeric gid)\n"),
    (["--for", "0"], "shmctl: invalid size '0': must be at least 1\n"),
    (["--for", "1G", "--segments", "0"], "shmctl: invalid --segments '0': must be at least 1"),
])
def test_recommend_usage_errors(args, message):
    r = run_in_process("limits", "recommend", *args)
    assert r.code == 2 and r.err.startswith(message) and len(r.err.splitlines()) == 1


@pytest.mark.skipif(not os.path.isdir(POOL), reason="no 2 MiB pool")
def test_recommend_hugepages_pool_group_and_memlock():
    pool = two_mb_pool(limits_json())
    committed = pool["total"] - pool["free"] + pool["reserved"]
    r = run("limits", "recommend", "--for", "64M", "--huge-size", "2M", "--group", "nogroup", "--json",
            prefix=["prlimit", "--memlock=65536:65536"])
    assert r.code == 0, r
    data = r.json()
    items = {i["name"]: i for i in data["items"]}
    assert data["hugepages"] is True and data["huge_size"] == MB2
    assert items["nr_hugepages"]["needed"] == committed + 32 and items["nr_hugepages"]["unit"] == "2MiB pages"
    assert items["memlock"] == {"name": "memlock", "current": 65536, "needed": 64 << 20, "unit": "bytes",
                                "enough": False, "how": "ulimit -l of the workload, to lock its segments"}
    gid = grp.getgrnam("nogroup").gr_gid
    assert items["hugetlb_shm_group"]["needed"] == gid and data["group"] == gid
    assert f"shmctl limits hugepages --size 2MiB --count {committed + 32}" in data["commands"]
    assert f"sysctl -w vm.hugetlb_shm_group={gid}" in data["commands"]
    assert "memlock: raise the workload's RLIMIT_MEMLOCK" in r.err
    r = run("limits", "recommend", "--for", "64M", "--hugepages")
    assert "hugetlb_shm_group: give --group with the workload's group" in r.err
    assert [line.split()[-1] for line in r.out.splitlines() if line.startswith("hugetlb_shm_group")] == ["check"]


@needs_isolation
@pytest.mark.machine_wide
@pytest.mark.usefixtures("sysctls")
def test_recommend_apply(pool_2m, hugetlb_shm_group):
    assert run("limits", "set", "shmmax=1M").code == 0
    r = run("limits", "recommend", "--for", "4M", "--huge-size", "2M", "--group", "nogroup", "--apply")
    assert r.code == 0, r
    assert proc_sys("shmmax") == 4 << 20 and read_pool("nr_hugepages") == pool_2m + 2
    nogroup = grp.getgrnam("nogroup").gr_gid
    with open("/proc/sys/vm/hugetlb_shm_group") as f:
        assert int(f.read()) == nogroup
    assert r.err == ("shmctl: changed kernel.shmmax: 1048576 -> 4194304\n"
                     f"shmctl: changed vm.hugetlb_shm_group: {hugetlb_shm_group} -> {nogroup}\n"
                     f"shmctl: sized the 2MiB pool: {pool_2m + 2} pages\n")
    again = run("limits", "recommend", "--for", "4M", "--huge-size", "2M", "--group", "nogroup", "--json").json()
    assert again["commands"] == []


@needs_isolation
@pytest.mark.usefixtures("sysctls")
def test_recommend_apply_not_root():
    assert run("limits", "set", "shmmax=1M").code == 0
    r = run("limits", "recommend", "--for", "4M", "--apply", prefix=nobody_prefix())
    assert r.code == 4 and r.out == ""
    assert r.err == "shmctl: cannot set kernel.shmmax: permission denied (run as root)\n"
    assert proc_sys("shmmax") == 1 << 20


def test_recommend_on_a_terminal():
    screen = ANSI.sub("", on_terminal("limits", "recommend", "--for", "1G"))
    assert "for 1GiB of shared memory in 1 segment(s)" in screen and "enough" in screen
    assert "1073741824" in ANSI.sub("", on_terminal("limits", "recommend", "--for", "1G", "--bytes"))
