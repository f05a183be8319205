"""`shmctl list` on real segments of every kind, against the holder, ipcs and lsipc."""
import os
import re
import subprocess

from conftest import needs_isolation, needs_root, run, run_in_process
from kernel import ANSI, ipcs_m, listed, lsipc_m, on_terminal, pids_of

pytestmark = needs_isolation
COLOUR = re.compile(r"\x1b\[(?:[0-9;]*;)?(?:3[0-7]|9[0-7]|38;[25])[;m]")


def test_sysv_agrees_with_the_holder_ipcs_and_lsipc(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 10000, "mode": 0o640, "touch": 5000, "fork": True})
    info = h.objects[0]
    ours = listed("--output-all")[f"sysv:{info['shmid']}"]
    assert ours["key"] == unique.key and ours["id"] == info["shmid"] and ours["kind"] == "sysv"
    assert ours["size"] == 10000 and ours["perms"] == "0640" and ours["mode"] == "rw-r-----"
    assert ours["owner"] == "root" and ours["uid"] == 0 and ours["cuid"] == 0
    assert ours["nattch"] == 2 and ours["cpid"] == h.pid
    assert pids_of(ours) == {h.pid, info["child"]}
    assert ours["rss"] == 8192 and ours["swap"] == 0  # 5000 bytes touched: two pages
    assert ours["status"] == [] and ours["orphan"] is None

    ipcs = ipcs_m()[info["shmid"]]
    assert (ipcs["key"], ipcs["owner"], ipcs["perms"], ipcs["size"], ipcs["nattch"]) == (
        ours["key"], ours["owner"], int(ours["perms"], 8), ours["size"], ours["nattch"])
    assert (ipcs["cpid"], ipcs["lpid"]) == (ours["cpid"], ours["lpid"])
    lsipc = lsipc_m()[info["shmid"]]
    assert int(lsipc["key"], 16) == ours["key"] and lsipc["owner"] == ours["owner"]
    assert int(lsipc["perms"], 8) == int(ours["perms"], 8) and int(lsipc["size"]) == ours["size"]
    assert int(lsipc["nattch"]) == ours["nattch"]
    assert (int(lsipc["cpid"]), int(lsipc["lpid"])) == (ours["cpid"], ours["lpid"])


def test_posix_object(hold, unique):
    h = hold({"kind": "posix", "name": unique.name, "size": 10000, "touch": 4096, "mode": 0o644, "fork": True})
    ours = listed("--output-all")[f"posix:/{unique.name}"]
    st = os.stat(f"/dev/shm/{unique.name}")
    assert ours["name"] == f"/{unique.name}" and ours["id"] == st.st_ino
    assert ours["size"] == 10000 and ours["rss"] == st.st_blocks * 512 == 4096
    assert ours["perms"] == "0644" and ours["owner"] == "root"
    assert ours["nattch"] == 2 and pids_of(ours) == {h.pid, h.objects[0]["child"]}
    assert all(p["perms"] == "rw-s" for p in ours["processes"])


def test_anonymous_and_memfd_mappings(hold, unique):
    h = hold({"kind": "anon", "size": 8192, "touch": 100}, {"kind": "memfd", "name": unique.name, "size": 12288,
                                                           "touch": 5000})
    anon, memfd = h.objects
    segments = listed("--kind", "mmap", "--output-all")
    a = segments[f"mmap:@{anon['inode']}"]
    assert a["backing"] == "anonymous" and a["name"] == "anonymous" and a["size"] == 8192
    assert pids_of(a) == {h.pid} and a["nattch"] == 1
    assert a["processes"][0]["start"] == f"0x{anon['start']:x}"
    m = segments[f"mmap:@{memfd['inode']}"]
    assert m["backing"] == "memfd" and m["name"] == f"memfd:{unique.name}"
    assert m["size"] == 12288 and m["rss"] == 8192 and pids_of(m) == {h.pid}


def test_shared_files_writable_by_default_read_only_with_all(hold, tmp_path):
    db, ro = tmp_path / "data.mdb", tmp_path / "ro.bin"
    ro.write_bytes(b"x" * 8192)
    hold({"kind": "file", "path": str(db), "size": 16384}, {"kind": "file", "path": str(ro), "size": 8192,
                                                           "readonly": True})
    default = listed("--kind", "mmap")
    assert default[f"mmap:{db}"]["backing"] == "file" and default[f"mmap:{db}"]["size"] == 16384
    assert default[f"mmap:{db}"]["rss"] is None  # page cache is not attributable to a file
    assert f"mmap:{ro}" not in default
    assert listed("--kind", "mmap", "--all")[f"mmap:{ro}"]["size"] == 8192


@needs_root
def test_file_on_another_tmpfs(hold, tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "none", str(mnt)], check=True)
    try:
        h = hold({"kind": "file", "path": str(mnt / "seg"), "size": 8192, "touch": 4096})
        seg = listed("--kind", "mmap")[f"mmap:{mnt}/seg"]
        assert seg["backing"] == "tmpfs" and seg["rss"] == 4096 and seg["nattch"] == 1
        h.close()
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


def test_kind_filters_and_ipcs_habit(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096}, {"kind": "posix", "name": unique.name, "size": 4096})
    shmid = h.objects[0]["shmid"]
    for args in (("-m",), ("--kind", "sysv"), ("-k", "sysv")):
        kinds = {s["kind"] for s in listed(*args).values()}
        assert kinds == {"sysv"}
    both = listed("--kind", "sysv", "--kind", "posix")
    assert f"sysv:{shmid}" in both and f"posix:/{unique.name}" in both
    assert f"sysv:{shmid}" not in listed("--kind", "posix")
    r = run("list", "--kind", "bogus")
    assert r.code == 2 and r.err.startswith("shmctl: ") and "bogus" in r.err and len(r.err.splitlines()) == 1


def test_user_filter(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096})
    address = f"sysv:{h.objects[0]['shmid']}"
    assert address in listed("--user", "root") and address in listed("--user", "0")
    assert address not in listed("--user", "nobody")
    r = run("list", "--user", "no-such-user-xyz")
    assert r.code == 2 and r.err == "shmctl: unknown user 'no-such-user-xyz': no such user name " \
                                    "(give a name or a numeric uid)\n"


def test_orphans_and_why(hold, unique, cleanup_shm):
    names, shmids = cleanup_shm
    made = subprocess.run(["ipcmk", "-M", "4096"], capture_output=True, text=True, check=True).stdout
    orphan_id = int(made.split()[-1])
    shmids.append(orphan_id)
    for name in (f"{unique.name}-lone", f"{unique.name}-held", f"{unique.name}-mapped"):
        names.append(name)
    with open(f"/dev/shm/{unique.name}-lone", "wb") as f:
        f.write(b"x")
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096},
             {"kind": "posix", "name": f"{unique.name}-held", "size": 4096, "map": False, "close_fd": False,
              "keep": True},
             {"kind": "posix", "name": f"{unique.name}-mapped", "size": 4096, "keep": True})
    orphans = listed("--orphans")
    assert orphans[f"sysv:{orphan_id}"]["orphan"].startswith("no process attached and creator pid ")
    assert orphans[f"posix:/{unique.name}-lone"]["orphan"].startswith("no process maps it or holds it open")
    assert "orphan" in orphans[f"sysv:{orphan_id}"]["status"]
    assert f"posix:/{unique.name}-held" not in orphans  # open fd, no mapping: not an orphan
    assert f"posix:/{unique.name}-mapped" not in orphans
    assert f"sysv:{h.objects[0]['shmid']}" not in orphans
    assert all(s["orphan"] for s in orphans.values())


def test_min_size_sort_and_summary(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 1 << 20, "touch": 8192},
             {"kind": "sysv", "key": unique.key + 1, "size": 4096},
             {"kind": "posix", "name": unique.name, "size": 2 << 20, "touch": 4096})
    big = listed("--min-size", "1M")
    assert f"sysv:{h.objects[0]['shmid']}" in big and f"posix:/{unique.name}" in big
    assert f"sysv:{h.objects[1]['shmid']}" not in big
    r = run("list", "--kind", "sysv", "--kind", "posix", "--sort", "size", "--json")
    sizes = [s["size"] for s in r.json()["segments"]]
    assert sizes == sorted(sizes)
    r = run("list", "-u", "--json", "--kind", "sysv", "--kind", "posix")
    summary = r.json()["summary"]
    sysv = [s for s in r.json()["segments"] if s["kind"] == "sysv"]
    assert summary["kinds"]["sysv"]["count"] == len(sysv)
    assert summary["kinds"]["sysv"]["size"] == sum(s["size"] for s in sysv)
    assert summary["kinds"]["posix"]["rss"] >= 4096
    with open("/proc/meminfo") as f:
        assert "Shmem:" in f.read() and summary["shmem"] > 0
    assert summary["explained"] >= 8192 + 4096
    text = run("list", "-u", "--kind", "sysv", "--kind", "posix")
    assert text.code == 0 and text.out.startswith("KIND ") and "Shmem (free's \"shared\")" in text.out


def test_columns_raw_noheadings_and_escaping(hold, unique):
    name = f"{unique.name} with space"
    hold({"kind": "posix", "name": name, "size": 4096})
    r = run("list", "--kind", "posix", "-o", "ADDRESS,SIZE,OWNER")
    lines = r.out.splitlines()
    assert lines[0].split() == ["ADDRESS", "SIZE", "OWNER"]
    escaped = "posix:/" + name.replace(" ", "\\x20")
    row = next(line for line in lines if line.startswith(escaped))
    assert row.split() == [escaped, "4096", "root"]  # a pipe gets exact bytes, fields stay fields
    extra = run("list", "--kind", "posix", "-o", "+UID,MODE").out.splitlines()[0].split()
    assert extra[-2:] == ["UID", "MODE"] and extra[0] == "ADDRESS"
    assert run("list", "--output-all", "--kind", "posix").out.splitlines()[0].split()[-1] == "PROCESSES"
    raw = run("list", "--kind", "posix", "--raw", "--noheadings", "-o", "ADDRESS,SIZE").out
    assert f"{escaped} 4096\n" in raw and "ADDRESS" not in raw
    assert "PROCESSES" in run_in_process("list", "--list-columns").out
    bad = run_in_process("list", "-o", "ADDRESS,NOPE")
    assert bad.code == 2 and "unknown column 'NOPE'" in bad.err
    bad = run_in_process("list", "--sort", "NOPE")
    assert bad.code == 2 and "unknown sort column 'NOPE'" in bad.err


def test_plain_columns_are_aligned(hold, unique):
    hold({"kind": "sysv", "key": unique.key, "size": 123456}, {"kind": "sysv", "key": unique.key + 1, "size": 7})
    lines = run("list", "-m").out.splitlines()
    header = lines[0]
    size_end = header.index("SIZE") + len("SIZE")
    for line in lines[1:]:
        assert line[size_end - 1] != " "  # numbers right-aligned under their header


def test_numeric_ids_and_processes_column(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096})
    shmid = h.objects[0]["shmid"]
    rows = {line.split()[0]: line.split() for line in run("list", "-m", "--numeric-ids", "-p").out.splitlines()}
    header = rows["ADDRESS"]
    row = rows[f"sysv:{shmid}"]
    assert row[header.index("OWNER")] == "0"
    assert row[header.index("PROCESSES")] == f"{h.pid}:python3" or row[header.index("PROCESSES")].startswith(
        f"{h.pid}:python")


def test_terminal_table_human_sizes_and_no_color(hold, unique):
    hold({"kind": "sysv", "key": unique.key, "size": 3 << 20, "rmid": True})
    screen = on_terminal("list", "-m")
    plain = ANSI.sub("", screen)
    assert "ADDRESS" in plain and "3M" in plain and str(3 << 20) not in plain
    assert COLOUR.search(screen)  # the dest status is red
    exact = ANSI.sub("", on_terminal("list", "-m", "--bytes"))
    assert str(3 << 20) in exact
    assert not COLOUR.search(on_terminal("list", "-m", env={"NO_COLOR": "1"}))


def test_dest_segment_loses_its_key(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "rmid": True})
    seg = listed("--output-all")[f"sysv:{h.objects[0]['shmid']}"]
    assert seg["status"] == ["dest"] and seg["key"] == 0 and pids_of(seg) == {h.pid}
    assert ipcs_m()[h.objects[0]["shmid"]]["status"] == ["dest"]


@needs_root
def test_locked_segment(hold, unique):
    from shmctl_cli import syscalls
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096})
    syscalls.shmctl_lock(h.objects[0]["shmid"])
    seg = listed()[f"sysv:{h.objects[0]['shmid']}"]
    assert "locked" in seg["status"]
    assert "locked" in ipcs_m()[h.objects[0]["shmid"]]["status"]


def test_dev_shm_entries_that_are_not_segments(unique, cleanup_shm):
    names, _ = cleanup_shm
    base = unique.name
    names += [f"{base}-dir", f"{base}-link", f"sem.{base}", f"{base}-real"]
    os.mkdir(f"/dev/shm/{base}-dir")
    os.symlink("/etc/passwd", f"/dev/shm/{base}-link")
    with open(f"/dev/shm/sem.{base}", "wb") as f:
        f.write(b"\0" * 32)
    with open(f"/dev/shm/{base}-real", "wb") as f:
        f.write(b"x")
    r = run("list", "--kind", "posix", "--json")
    addresses = {s["address"] for s in r.json()["segments"]}
    assert addresses >= {f"posix:/{base}-real"}
    assert not addresses & {f"posix:/{base}-dir", f"posix:/{base}-link", f"posix:/sem.{base}"}
    assert f"{base}-dir (directory)" in r.json()["not_segments"]
    assert f"{base}-link (symlink)" in r.err and "not segments, left out" in r.err
    every = listed("--kind", "posix", "--all")
    assert every[f"posix:/sem.{base}"]["status"] == ["semaphore"]
    assert f"posix:/{base}-link" not in every


@needs_root
def test_attachments_of_another_ipc_namespace_do_not_count(hold, unique):
    """Another namespace reuses shmids: its /SYSV mappings are not attachments of ours."""
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "attach": False})
    shmid = h.objects[0]["shmid"]
    other = subprocess.Popen(["unshare", "--ipc", "python3", "-c", f"""
import ctypes, sys
libc = ctypes.CDLL("libc.so.6"); libc.shmat.restype = ctypes.c_void_p
open("/proc/sys/kernel/shm_next_id", "w").write("{shmid}")  # this new namespace's next id: ours
assert libc.shmget(0, 4096, 0o1600) == {shmid}
libc.shmat({shmid}, None, 0)
print("ready", flush=True); sys.stdin.read()
"""], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "ready"
        seg = listed("--output-all")[f"sysv:{shmid}"]
        assert seg["nattch"] == 0 and pids_of(seg) == set()
    finally:
        other.stdin.close()
        other.wait(10)


def test_broken_pipe_is_quiet(hold, unique):
    hold(*({"kind": "sysv", "key": unique.key + i, "size": 4096} for i in range(50)))
    proc = subprocess.run(f"{os.sys.executable} -m shmctl_cli list -m | head -1", shell=True, capture_output=True,
                          text=True, env=dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(__file__))))
    assert proc.stdout.startswith("ADDRESS") and "Traceback" not in proc.stderr



def test_every_column_of_every_kind_renders(hold, unique, tmp_path):
    """--output-all over segments of all kinds, attached and not, in every output form."""
    from shmctl_cli.render import COLUMNS
    hold({"kind": "sysv", "key": unique.key, "size": 4096, "rmid": True},
         {"kind": "sysv", "key": unique.key + 1, "size": 4096, "attach": False},
         {"kind": "posix", "name": unique.name + " spaced", "size": 4096},
         {"kind": "anon", "size": 4096}, {"kind": "memfd", "name": unique.name, "size": 4096},
         {"kind": "file", "path": str(tmp_path / "f"), "size": 4096})
    for args in ((), ("--raw",), ("--noheadings",), ("-p",), ("--numeric-ids",), ("--sort", "NAME")):
        r = run("list", "--output-all", *args)
        assert r.code == 0 and "internal error" not in r.err, (args, r)
        rows = [line.split() for line in r.out.splitlines()]
        assert len({len(row) for row in rows}) == 1, args  # every row has every column, no empty cell
    for name in COLUMNS:
        assert run("list", "-o", name, "--sort", name).code == 0, name
    data = run("list", "--json", "--output-all", "--all").json()
    assert {s["kind"] for s in data["segments"]} == {"sysv", "posix", "mmap"}
    screen = ANSI.sub("", on_terminal("list", "--output-all", columns=400))
    assert "PROCESSES" in screen and "internal error" not in screen
