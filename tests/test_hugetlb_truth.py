"""True memory of SysV SHM_HUGETLB segments (issue 10): the kernel's rss in /proc/sysvipc/shm
is pages_per_huge_page times too large on this kernel; shmctl shows the truth, and tells
hugetlb segments apart when detached too (or says `hugetlb?` where the kernel gives no way).

The pool tests size the real 2 MiB pool (machine_wide) and put vm.nr_hugepages back."""
import ctypes
import os

import pytest

from conftest import ROOT, run

MB = 1 << 20
HUGE = 2 * MB
POOL = "/sys/kernel/mm/hugepages/hugepages-2048kB"
NR_HUGEPAGES = "/proc/sys/vm/nr_hugepages"
IPC_CREAT, IPC_RMID, SHM_HUGETLB = 0o1000, 0, 0o4000

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]


def read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read())


def write(path: str, value) -> None:
    with open(path, "w") as f:
        f.write(f"{value}\n")


def default_huge_size() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("Hugepagesize"))


@pytest.fixture
def pool(request):
    """Four 2 MiB huge pages of our own on top of what the pool held; vm.nr_hugepages is put
    back at teardown whatever happened (request this fixture before any segment fixture, so
    the segments are gone first)."""
    assert request.node.get_closest_marker("machine_wide")
    if not ROOT or not os.path.isdir(POOL):
        pytest.skip("needs root and a 2 MiB huge page pool")
    if default_huge_size() != HUGE:
        pytest.skip("SHM_HUGETLB uses the default huge page size, which is not 2 MiB here")
    saved = read_int(NR_HUGEPAGES)
    if read_int(f"{POOL}/free_hugepages") != read_int(f"{POOL}/nr_hugepages") or read_int(f"{POOL}/resv_hugepages"):
        pytest.skip("the 2 MiB pool is in use on this machine: the figures would not be ours alone")
    try:
        write(NR_HUGEPAGES, saved + 4)
        if read_int(NR_HUGEPAGES) == saved:
            pytest.skip("the kernel could not allocate a 2 MiB huge page now")
        yield read_int(NR_HUGEPAGES) - saved
    finally:
        write(NR_HUGEPAGES, saved)
        assert read_int(NR_HUGEPAGES) == saved


class Segments:
    """SysV segments made by this test with plain ctypes (not shmctl), removed at teardown."""

    def __init__(self):
        self.shmids, self.attached = [], []

    def make(self, size: int, hugetlb: bool = True, touch: int = 0, stay_attached: bool = False) -> int:
        shmid = libc.shmget(0, size, IPC_CREAT | 0o600 | (SHM_HUGETLB if hugetlb else 0))
        if shmid < 0:
            err = ctypes.get_errno()
            pytest.skip(f"shmget: {os.strerror(err)}") if hugetlb else pytest.fail(os.strerror(err))
        self.shmids.append(shmid)
        if touch or stay_attached:
            addr = libc.shmat(shmid, None, 0)
            assert addr not in (None, ctypes.c_void_p(-1).value)
            if touch:
                ctypes.memset(addr, 0x5A, touch)
            if stay_attached:
                self.attached.append(addr)
            else:
                libc.shmdt(ctypes.c_void_p(addr))
        return shmid

    def close(self):
        for addr in self.attached:
            libc.shmdt(ctypes.c_void_p(addr))
        for shmid in self.shmids:
            libc.shmctl(shmid, IPC_RMID, None)


@pytest.fixture
def segments():
    made = Segments()
    yield made
    made.close()


def kernel_rss(shmid: int) -> int:
    with open("/proc/sysvipc/shm") as f:
        header = f.readline().split()
        for line in f:
            fields = dict(zip(header, line.split()))
            if int(fields["shmid"]) == shmid:
                return int(fields["rss"])
    raise LookupError(shmid)


def listed(*args) -> dict:
    r = run("list", "--kind", "sysv", "--json", *args)
    assert r.code == 0, r
    data = r.json()
    return {s["id"]: s for s in data["segments"]}, data


def stat_json(shmid: int) -> dict:
    r = run("stat", f"sysv:{shmid}", "--json")
    assert r.code == 0, r
    return r.json()


def stat_lines(shmid: int) -> dict:
    """`stat` on a pipe: {label: text}."""
    r = run("stat", f"sysv:{shmid}", "--bytes")
    assert r.code == 0, r
    return dict((part.strip() for part in line.split(":", 1)) for line in r.out.splitlines() if ":" in line)


# --- the kernel's figure (what shmctl corrects) ---

@pytest.mark.machine_wide
def test_the_kernels_own_rss_of_a_hugetlb_segment_is_inflated(pool, segments):
    """One 2 MiB page touched reads 2 MiB x 512 = 1 GiB on this kernel (6.18); smaps and the
    pool say 2 MiB. If this fails, the kernel counts right again: shmctl detects either."""
    free = read_int(f"{POOL}/free_hugepages")
    shmid = segments.make(HUGE, touch=1, stay_attached=True)
    assert read_int(f"{POOL}/free_hugepages") == free - 1
    assert kernel_rss(shmid) == HUGE * (HUGE // os.sysconf("SC_PAGE_SIZE"))


# --- shmctl's figure: attached, then detached ---

@pytest.mark.machine_wide
def test_attached_hugetlb_segment_shows_its_true_rss(pool, hold):
    holder = hold({"kind": "sysv", "size": HUGE, "hugetlb": True, "touch": 1})
    shmid = holder.objects[0]["shmid"]
    assert kernel_rss(shmid) > HUGE  # what the kernel says: more than the segment can hold
    segs, _ = listed()
    assert segs[shmid]["rss"] == HUGE and segs[shmid]["hugetlb"] is True and "hugetlb" in segs[shmid]["status"]
    seg = stat_json(shmid)
    assert seg["rss"] == HUGE and seg["hugetlb"] is True and seg["status"] == ["hugetlb"]
    lines = stat_lines(shmid)
    assert lines["rss"] == "2097152" and lines["status"] == "hugetlb"
    table = run("list", "--kind", "sysv", "--bytes", "-o", "ID,SIZE,RSS,STATUS", "--noheadings").out
    assert f"{shmid} 2097152 2097152 hugetlb".split() in [line.split() for line in table.splitlines()]


@pytest.mark.machine_wide
def test_detached_hugetlb_segments_are_known_and_true(pool, segments):
    whole = segments.make(HUGE, touch=1)
    half = segments.make(MB, touch=1)  # 1 MiB asked: one 2 MiB page holds it
    assert kernel_rss(whole) == kernel_rss(half) > HUGE
    segs, _ = listed()
    for shmid in (whole, half):
        assert segs[shmid]["nattch"] == 0
        assert segs[shmid]["rss"] == HUGE and segs[shmid]["hugetlb"] is True
        assert "hugetlb" in segs[shmid]["status"]
        found = stat_json(shmid)  # find() settles one segment alone
        assert found["rss"] == HUGE and found["hugetlb"] is True


@pytest.mark.machine_wide
def test_summary_totals_are_not_inflated(pool, segments):
    touched = [segments.make(HUGE, touch=1) for _ in range(2)]
    segs, data = listed("-u")
    assert all(segs[s]["rss"] == HUGE for s in touched)
    rss = data["summary"]["kinds"]["sysv"]["rss"]
    assert rss == sum(s["rss"] for s in segs.values()) and rss < 1 << 30
    text = run("list", "-u", "--kind", "sysv", "--bytes").out
    sysv_row = next(line.split() for line in text.splitlines() if line.startswith("sysv "))
    assert int(sysv_row[3]) == rss


@pytest.mark.machine_wide
def test_an_untouched_detached_hugetlb_segment_is_unknown_and_clear_cases_are_not(pool, segments):
    """An untouched, detached hugetlb segment only shows as a reservation in the pool
    (resv_hugepages), which any untouched segment small enough could be: `hugetlb?`. A
    segment too large for what the pool reserved, or touched in other than whole huge
    pages, is certainly normal."""
    untouched = segments.make(HUGE)
    assert read_int(f"{POOL}/resv_hugepages") == 1 and kernel_rss(untouched) == 0
    big_normal = segments.make(8 * MB, hugetlb=False)  # would need 4 reserved huge pages
    small_touched = segments.make(64 * 1024, hugetlb=False, touch=4096)
    segs, _ = listed()
    assert segs[untouched]["hugetlb"] is None and "hugetlb?" in segs[untouched]["status"]
    assert segs[untouched]["rss"] == 0
    for shmid in (big_normal, small_touched):
        assert segs[shmid]["hugetlb"] is False and not any(w.startswith("hugetlb") for w in segs[shmid]["status"])
    assert segs[small_touched]["rss"] == 4096
    table = run("list", "--kind", "sysv", "-o", "ID,STATUS", "--noheadings").out
    status = {int(line.split()[0]): line.split()[1] for line in table.splitlines()}
    assert "hugetlb?" in status[untouched].split(",") and "hugetlb" not in status[big_normal]
    assert stat_json(untouched)["hugetlb"] is None
    assert stat_lines(untouched)["status"] == "hugetlb?"


@pytest.mark.machine_wide
def test_attaching_settles_what_was_unknown(pool, segments):
    shmid = segments.make(HUGE, stay_attached=True)  # attached by this very process, untouched
    seg = stat_json(shmid)
    assert seg["hugetlb"] is True and seg["rss"] == 0 and seg["nattch"] == 1


def test_with_an_empty_pool_no_segment_is_even_maybe_hugetlb(segments):
    """No huge page in any pool: no segment holds or reserves one (an untouched
    SHM_NORESERVE segment reserves nothing either, the one case nothing can tell)."""
    pools = [os.path.join("/sys/kernel/mm/hugepages", d) for d in os.listdir("/sys/kernel/mm/hugepages")] \
        if os.path.isdir("/sys/kernel/mm/hugepages") else []
    if any(read_int(f"{p}/nr_hugepages") for p in pools):
        pytest.skip("this machine has huge pages in a pool")
    made = [segments.make(4096, hugetlb=False), segments.make(HUGE, hugetlb=False, touch=HUGE),
            segments.make(MB, hugetlb=False, touch=1)]
    out = run("list", "--kind", "sysv").out + run("list").out + run("stat", f"sysv:{made[0]}").out
    assert "hugetlb" not in out
    segs, _ = listed()
    assert all(segs[s]["hugetlb"] is False for s in made)
    assert segs[made[1]]["rss"] == HUGE


# --- pure: the kernel's figures read both ways, from a /sys of our own ---

def fake_sys(tmp_path, nr, free, resv, size_kb=2048):
    pool = tmp_path / "kernel" / "mm" / "hugepages" / f"hugepages-{size_kb}kB"
    pool.mkdir(parents=True)
    for name, value in (("nr_hugepages", nr), ("free_hugepages", free), ("resv_hugepages", resv),
                        ("surplus_hugepages", 0), ("nr_overcommit_hugepages", 0)):
        (pool / name).write_text(f"{value}\n")
    return str(tmp_path)


def settled(tmp_path, rows, nr=4, free=2, resv=0):
    from shmctl_cli.kinds.sysv.hugetlb import settle
    from shmctl_cli.model import Segment
    from shmctl_cli.system import View
    segs = [Segment("sysv", f"sysv:{i}", i, 0, size=size, rss=rss, nattch=0) for i, (size, rss) in enumerate(rows)]
    settle(segs, View(sys_root=fake_sys(tmp_path, nr, free, resv)))
    return [(s.hugetlb, s.rss) for s in segs]


def test_an_older_kernel_that_counts_right_is_believed(tmp_path):
    """rss 2 MiB for a 1 MiB segment: hugetlb (no normal segment has that), and exact: 2 MiB
    inflated would be 4 KiB, not whole huge pages."""
    assert settled(tmp_path, [(MB, HUGE), (HUGE, HUGE), (4096, 4096)]) == \
        [(True, HUGE), (None, HUGE), (False, 4096)]


def test_this_kernels_inflated_figure_is_divided(tmp_path):
    page = os.sysconf("SC_PAGE_SIZE")
    inflated = HUGE * (HUGE // page)
    assert settled(tmp_path, [(MB, inflated), (2 * HUGE, 2 * inflated)], free=1) == [(True, HUGE), (True, 2 * HUGE)]
    # two pages in use and reserved none: a touched 2 MiB normal segment is then certainly
    # normal, once the verdict (inflated) is known and the pages are accounted for
    assert settled(tmp_path / "b", [(MB, inflated), (HUGE, HUGE)], free=3) == [(True, HUGE), (False, HUGE)]


def test_untouched_segments_against_the_reservations(tmp_path):
    rows = [(HUGE, 0), (3 * HUGE, 0), (4096, 0)]
    assert settled(tmp_path, rows, free=4, resv=2) == [(None, 0), (False, 0), (None, 0)]
    assert settled(tmp_path / "b", rows, free=4, resv=0) == [(False, 0)] * 3


def test_rss_never_passes_what_the_segment_can_hold(tmp_path):
    """No pool at all and a figure over the size: capped at the size rounded up (a 2 MiB
    huge page at most, the only size this /sys has)."""
    assert settled(tmp_path, [(100, 8192), (MB, 1 << 30)], nr=0, free=0) == [(True, 8192), (True, HUGE)]


@pytest.mark.parametrize("text, start, expected", [
    (b"7f0000000000-7f0000200000 rw-s 00000000 00:11 3   /SYSV00000000 (deleted)\nSize:  2048 kB\n"
     b"KernelPageSize:  2048 kB\nShared_Hugetlb:  0 kB\nPrivate_Hugetlb:  2048 kB\nVmFlags: rd wr sh\n"
     b"7f0000300000-7f0000400000 rw-s 00000000 00:01 4   /SYSV00000000 (deleted)\nSize:  4 kB\n",
     0x7f0000000000, {"Size": HUGE, "KernelPageSize": HUGE, "Shared_Hugetlb": 0, "Private_Hugetlb": HUGE}),
    (b"1000-2000 r--p 00000000 08:01 1 /bin/x\nSize: 4 kB\n7f0000300000-7f0000400000 rw-s 0 00:01 4 /SYSV1\n"
     b"Size: 1024 kB\nRss: 8 kB\n", 0x7f0000300000, {"Size": MB, "Rss": 8192}),
    (b"1000-2000 r--p 00000000 08:01 1 /bin/x\nSize: 4 kB\n", 0x5000, {}),
])
def test_smaps_figures_of_one_mapping(text, start, expected):
    from shmctl_cli.procfs.smaps import parse_mapping_figures
    assert parse_mapping_figures(text, start) == expected
