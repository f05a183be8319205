"""Finding one and removing many: no work proportional to all segments for one, nor to
objects x processes for many. Counted (calls, not time) in drivers that run shmctl in their
own process inside fresh namespaces (IPC, mount with a tmpfs on /dev/shm, PID: nothing of
the host hidden or touched), with thousands of real objects and real holders."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from conftest import ENV, needs_root
from shmctl_cli.kinds.sysv.lookup import _find_field, signed_key

pytestmark = needs_root

# Common to both drivers: objects, holders (children that map or hold an object and wait on
# their stdin), counters wrapped around the functions, and shmctl's main run in-process.
PRELUDE = r"""
import ctypes, json, os, subprocess, sys
from click.testing import CliRunner
libc = ctypes.CDLL(None, use_errno=True)
libc.shmget.argtypes = [ctypes.c_int, ctypes.c_size_t, ctypes.c_int]
counts = {}

def counting(owner, name, label=None, key=None):
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        k = label or name
        if key is not None:
            k = key(*args)
            if k is None:
                return real(*args, **kwargs)
        counts[k] = counts.get(k, 0) + 1
        return real(*args, **kwargs)
    setattr(owner, name, wrapper)

def holder(code):
    child = subprocess.Popen([sys.executable, "-c", code + "\nprint('ready', flush=True)\nsys.stdin.read()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    return child

def shmctl(*argv):
    from shmctl_cli.cli import main
    with CliRunner().isolation() as (out, err, _mixed):
        try:
            code = main(list(argv))
        except SystemExit as exc:
            code = exc.code
        sys.stdout.flush(); sys.stderr.flush()
        return code, out.getvalue().decode(), err.getvalue().decode()
"""

STAT_DRIVER = PRELUDE + r"""
with open("/proc/sys/kernel/shmmni", "w") as f:
    f.write("32768")
N = int(sys.argv[1])
for i in range(N):
    assert libc.shmget(0, 4096, 0o600) >= 0, ctypes.get_errno()
keyed = libc.shmget(0xdeadbeef, 8192, 0o1640)  # printed as a negative key
assert keyed >= 0
ids = [int(line.split()[1]) for line in open("/proc/sysvipc/shm").read().splitlines()[1:]]
middle = ids[N // 2]
attached = ids[N // 3]
held = holder(f"import ctypes, sys; l = ctypes.CDLL(None); l.shmat.restype = ctypes.c_void_p; "
              f"assert l.shmat({attached}, None, 0) not in (None, 2**64 - 1)")

from shmctl_cli import model
from shmctl_cli.procfs import maps
counting(os, "open", "sysvipc", key=lambda path, *a: "sysvipc" if str(path).endswith("sysvipc/shm") else None)
counting(model.Segment, "__init__", "segments")
counting(model.Segment, "_row", "segments")
model.Segment._row = staticmethod(model.Segment._row)
counting(maps, "scan_shared_maps", "maps_scans")
result = {}
for label, address in (("middle", f"sysv:{middle}"), ("keyed", "sysv:key=0xdeadbeef"),
                       ("attached", f"sysv:{attached}"), ("missing", "sysv:2147483000")):
    counts.clear()
    code, out, err = shmctl("stat", address)
    result[label] = {"code": code, "out": out, "err": err, "counts": dict(counts)}

# the same segments as the whole table shows them (collect, as list does)
from shmctl_cli import kinds
from shmctl_cli.address import parse_address
listed = {s.address: s for s in kinds.collect(["sysv"], kinds.View(), processes=True).segments}
def fields(seg):
    d = {k: getattr(seg, k) for k in type(seg).__slots__}
    d["attachments"] = [(a.pid, a.start, a.end, a.unsure) for a in seg.attachments or ()]
    return d
step = max(1, len(ids) // 40)
checked = ids[::step] + [ids[0], ids[-1], keyed, attached]
same = []
for shmid in checked:
    found = kinds.find(parse_address(f"sysv:{shmid}"), kinds.View())
    same.append(fields(found) == fields(listed[f"sysv:{shmid}"]))
by_key = kinds.find(parse_address("sysv:key=0xdeadbeef"), kinds.View())
result["same"] = same
result["by_key_same"] = fields(by_key) == fields(listed[f"sysv:{keyed}"])
result["attached_pids"] = listed[f"sysv:{attached}"].pids
result["holder"] = held.pid
held.stdin.close(); held.wait()
print(json.dumps(result))
"""

RM_DRIVER = PRELUDE + r"""
N, kind = int(sys.argv[1]), sys.argv[2]
names = [f"obj{i:05d}" for i in range(N)]
if kind == "posix":
    for name in names:
        fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, 4096)
        os.close(fd)
    fd_held, mapped = names[5], names[N - 7]
    holders = [holder(f"import os, sys; fd = os.open('/dev/shm/{fd_held}', os.O_RDWR)"),
               holder(f"import mmap, os, sys; fd = os.open('/dev/shm/{mapped}', os.O_RDWR); "
                      f"m = mmap.mmap(fd, 4096); os.close(fd)")]
    kept = {f"posix:/{fd_held}": holders[0].pid, f"posix:/{mapped}": holders[1].pid}
else:
    for _ in range(N):
        assert libc.shmget(0, 4096, 0o600) >= 0
    ids = [int(line.split()[1]) for line in open("/proc/sysvipc/shm").read().splitlines()[1:]]
    attached = ids[N // 2]
    holders = [holder(f"import ctypes, sys; l = ctypes.CDLL(None); l.shmat.restype = ctypes.c_void_p; "
                      f"assert l.shmat({attached}, None, 0) not in (None, 2**64 - 1)")]
    kept = {f"sysv:{attached}": holders[0].pid}
holders += [holder("import sys") for _ in range(8)]  # bystanders: processes to scan

from shmctl_cli.procfs import maps, process
counting(process, "open_fds", key=lambda pid, proc: ("fd_scan", pid))
counting(maps, "scan_shared_maps", "maps_scans")
counting(os, "readlink", "readlink")
pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
fds = sum(len(os.listdir(f"/proc/{p}/fd")) for p in pids)
counts.clear()
code, out, err = shmctl("rm", "--all", "--kind", kind, "--yes")
scans = {str(k[1]): v for k, v in counts.items() if isinstance(k, tuple)}
left = sorted(os.listdir("/dev/shm")) if kind == "posix" else [
    line.split()[1] for line in open("/proc/sysvipc/shm").read().splitlines()[1:]]
print(json.dumps({"code": code, "removed": out.split(), "err": err, "kept": kept, "left": left,
                  "fd_scans": scans, "readlink": counts.get("readlink", 0), "maps_scans": counts.get("maps_scans", 0),
                  "processes": len(pids), "fds": fds}))
for child in holders:
    child.stdin.close(); child.wait()
"""


def _driver(code: str, *args, mount_tmpfs: bool = False) -> dict:
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    script = f"exec {sys.executable} -c \"$0\" \"$@\""
    if mount_tmpfs:
        script = "mount -t tmpfs -o size=64M tmpfs /dev/shm && " + script
    done = subprocess.run(["unshare", "--ipc", "--mount", "--pid", "--fork", "--mount-proc", "sh", "-c", script,
                           code, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def stat_run():
    return _driver(STAT_DRIVER, 20000)


def test_stat_of_one_among_20000_reads_the_table_once_and_builds_one_segment(stat_run):
    for label in ("middle", "keyed"):
        run = stat_run[label]
        assert run["code"] == 0, run["err"]
        assert run["counts"].get("sysvipc") == 1, run["counts"]
        assert run["counts"].get("segments") == 1, run["counts"]
        assert run["counts"].get("maps_scans", 0) == 0, run["counts"]  # nattch 0: nobody to look for


def test_stat_of_an_attached_one_scans_the_maps_once_and_names_the_holder(stat_run):
    run = stat_run["attached"]
    assert run["code"] == 0, run["err"]
    assert run["counts"] == {"sysvipc": 1, "segments": 1, "maps_scans": 1}, run["counts"]
    assert str(stat_run["holder"]) in run["out"]
    assert stat_run["attached_pids"] == [stat_run["holder"]]


def test_stat_of_a_missing_shmid_reads_the_table_once(stat_run):
    run = stat_run["missing"]
    assert run["code"] == 3
    assert run["err"] == ("shmctl: sysv:2147483000: no SysV segment with shmid 2147483000 (a segment marked for "
                          "removal loses its key; see shmctl list -m)\n")
    assert run["counts"].get("sysvipc") == 1 and run["counts"].get("segments", 0) == 0


def test_the_one_segment_found_is_the_one_the_whole_table_lists(stat_run):
    assert stat_run["same"] and all(stat_run["same"])
    assert stat_run["by_key_same"]


@pytest.mark.parametrize("kind", ["posix", "sysv"])
def test_rm_all_of_2000_scans_each_process_once(kind):
    """Who holds what is gathered once (one maps scan, each /proc/PID/fd read once), never per
    object; the held ones are refused by name, everything else goes."""
    result = _driver(RM_DRIVER, 2000, kind, mount_tmpfs=True)
    assert result["code"] == 5, result["err"]
    kept = result["kept"]
    assert len(result["removed"]) == 2000 - len(kept)
    assert not set(kept) & set(result["removed"])
    for address, pid in kept.items():
        assert f"shmctl: {address}: still in use by 1 process: pid" in result["err"], result["err"]
        assert f" {pid} (python" in result["err"]
    left = {f"posix:/{n}" for n in result["left"]} if kind == "posix" else {f"sysv:{i}" for i in result["left"]}
    assert left == set(kept)
    assert result["maps_scans"] == 1
    if kind == "posix":  # SysV's users are the kernel's nattch: no fd scan at all
        assert result["fd_scans"] and max(result["fd_scans"].values()) == 1, result["fd_scans"]
        assert len(result["fd_scans"]) <= result["processes"] + 1
    assert result["readlink"] <= result["fds"] + 4 * result["processes"], result


# --- the line scan, on captured text ---

TABLE = (b"       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime"
         b"      dtime      ctime                   rss                  swap\n"
         b"         0      32769   600                 32769    12     0      0     0     0     0     0          0"
         b"          0 1700000000                     0                     0\n"
         b"-559038737         12  1640                  4096    12    12      1     0     0     0     0 1700000001"
         b"          0 1700000000                  4096                     0\n"
         b"         7          0   600                  4096    32769  0      0     0     0     0     0          0"
         b"          0 1700000000                     0                     0\n")


@pytest.mark.parametrize("index, token, line", [
    (1, b"32769", 1),      # its shmid, not the size nor the cpid that read the same
    (1, b"12", 2),         # not the cpid 12 of the line before
    (0, b"-559038737", 2),  # a key as wide as its column: no blank before it
    (0, b"7", 3),
    (1, b"0", 3),          # not the key 0, nattch 0 or times 0 of the lines before
    (1, b"4096", None),    # a size, never a shmid
    (0, b"559038737", None),  # the key's digits without its sign
])
def test_find_field_matches_the_column_only(index, token, line):
    body = b"\n" + TABLE.partition(b"\n")[2]
    start = _find_field(body, index, token)
    if line is None:
        assert start == -1
    else:
        assert start == sum(len(row) + 1 for row in TABLE.splitlines()[1:line]) + 1


def test_signed_key_is_how_the_kernel_prints_it():
    assert signed_key(0xdeadbeef) == -559038737
    assert signed_key(0x5eed0001) == 0x5eed0001
