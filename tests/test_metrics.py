"""shmctl metrics: the Prometheus text exposition, parsed with prometheus_client's parser and
checked with promtool where it is installed, against real segments, /proc, statvfs and /sys;
--textfile-dir's atomic, symlink-proof publication; the contrib systemd units."""
import configparser
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading

import pytest

from conftest import HERE, ISOLATED, ROOT, SECOND_UID, needs_isolation, run, run_as, run_in_process
from shmctl_cli.address import printable
from shmctl_cli.metrics import HELP

parser = pytest.importorskip("prometheus_client.parser", reason="prometheus_client is a test dependency: "
                             "pip install '.[test]'")

PAGE = os.sysconf("SC_PAGE_SIZE")
CONTRIB = os.path.join(os.path.dirname(HERE), "contrib")
METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


def metrics(*args, expect=0):
    r = run("metrics", *args)
    assert r.code == expect, r
    assert r.err == ""
    return r.out


def parse(text):
    """{family name: [(labels, value)]} with every family's type checked."""
    found = {}
    for family in parser.text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        found[family.name] = [(s.labels, s.value) for s in family.samples]
    return found


def value(families, name, **labels):
    matches = [v for l, v in families[name] if all(l.get(k) == w for k, w in labels.items())]
    assert len(matches) == 1, (name, labels, families[name])
    return matches[0]


def by_address(families, name, address):
    return value(families, name, address=address)


def sysvipc(shmid):
    with open("/proc/sysvipc/shm") as f:
        head, *rows = [line.split() for line in f]
    for row in rows:
        if int(row[1]) == shmid:
            return dict(zip(head, map(int, row)))
    raise AssertionError(f"no shmid {shmid}")


# --- the format ---

@needs_isolation
def test_every_family_once_with_help_and_type_and_names_prometheus_accepts():
    text = metrics()
    helps = re.findall(r"^# HELP (\S+) ", text, re.M)
    types = re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M)
    assert helps == list(HELP) and [n for n, _ in types] == list(HELP)  # once each, in one order
    assert {t for _, t in types} == {"gauge"}
    for name in HELP:
        assert METRIC_NAME.match(name) and name.startswith("shmctl_"), name
        assert not name.endswith("_total"), "nothing here is a counter"
        assert not re.search(r"_(kilo|mega|giga)?bytes_|_kb$|_mb$|_ms$|_pages$", name), name
    families = parse(text)
    assert set(families) == set(HELP)
    for samples in families.values():
        for labels, _ in samples:
            assert all(LABEL_NAME.match(k) and not k.startswith("__") for k in labels)
    # every sample line is NAME{LABELS} VALUE: no timestamp, nothing else
    for line in text.splitlines():
        if not line.startswith("#"):
            assert re.fullmatch(r"shmctl_[a-z_]+(\{.*\})? -?[0-9.e+]+", line), line


@needs_isolation
def test_promtool_accepts_it(hold, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian's package `prometheus` has it)")
    hold({"kind": "sysv", "size": 8192, "touch": 4096})
    name = _hostile_object(tmp_path)
    try:
        text = metrics("--top", "5")
    finally:
        os.unlink(f"/dev/shm/{name}")
    checked = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr


HOSTILE = 'evil"\\\n\x1b[31m{x="1"} 9'


def _hostile_object(tmp_path) -> str:
    """A POSIX object whose name holds a quote, a backslash, a newline and ESC: a label that
    would end its line and forge a sample if written raw."""
    name = f"{HOSTILE}-{tmp_path.name[-8:]}"
    fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd, 3 * PAGE)
    os.write(fd, b"x" * PAGE)
    os.close(fd)
    return name


# --- values of segments the test made ---

@needs_isolation
def test_values_of_real_segments(hold, cleanup_shm, unique, tmp_path):
    names, shmids = cleanup_shm
    attached = hold({"kind": "sysv", "size": 5 * PAGE, "touch": 2 * PAGE, "fork": True}).objects[0]
    orphan = hold({"kind": "sysv", "size": 3 * PAGE, "attach": False, "keep": True})
    orphan_id = orphan.objects[0]["shmid"]
    shmids.append(orphan_id)
    orphan.close()  # its creator is gone, nobody attached: an orphan
    names.append(unique.name)
    assert run("create", f"posix:/{unique.name}", "--size", str(4 * PAGE)).code == 0
    deleted_name = unique.name + "-gone"
    held = hold({"kind": "posix", "name": "/" + deleted_name, "size": 6 * PAGE, "touch": 6 * PAGE})
    os.unlink(f"/dev/shm/{deleted_name}")  # still mapped by the holder: deleted but held
    hostile = _hostile_object(tmp_path)
    names.append(hostile)

    # the test's own namespaces and kinds: other namespaces and the host's mappings may hold
    # anything, and crowd the top
    families = parse(metrics("--top", "1000", "--here", "-k", "sysv", "-k", "posix"))

    sysv = sysvipc(attached["shmid"])
    address = f"sysv:{attached['shmid']}"
    assert by_address(families, "shmctl_segment_size_bytes", address) == 5 * PAGE
    assert by_address(families, "shmctl_segment_rss_bytes", address) == sysv["rss"] == 2 * PAGE
    assert by_address(families, "shmctl_segment_swap_bytes", address) == sysv["swap"]
    assert by_address(families, "shmctl_segment_attachments", address) == sysv["nattch"] == 2
    labels = next(l for l, _ in families["shmctl_segment_size_bytes"] if l["address"] == address)
    assert labels == {"kind": "sysv", "address": address, "name": "", "owner": "root", "status": "",
                      "namespace": "", "container": labels["container"]}

    orphan_labels = next(l for l, _ in families["shmctl_segment_size_bytes"] if l["address"] == f"sysv:{orphan_id}")
    assert orphan_labels["status"] == "orphan"
    assert by_address(families, "shmctl_segment_attachments", f"sysv:{orphan_id}") == 0

    posix = f"posix:/{unique.name}"
    assert by_address(families, "shmctl_segment_size_bytes", posix) == 4 * PAGE
    assert by_address(families, "shmctl_segment_rss_bytes", posix) == 0
    assert next(l for l, _ in families["shmctl_segment_size_bytes"] if l["address"] == posix)["name"] == "/" + unique.name

    gone = [l for l, _ in families["shmctl_segment_rss_bytes"] if l["kind"] == "posix" and "deleted" in l["status"]]
    gone = [l for l in gone if l["name"].startswith(f"/{deleted_name}")]
    assert len(gone) == 1 and value(families, "shmctl_segment_rss_bytes", address=gone[0]["address"]) == 6 * PAGE
    assert value(families, "shmctl_segment_attachments", address=gone[0]["address"]) == 1
    assert value(families, "shmctl_deleted_held_segments", kind="posix") >= 1
    assert value(families, "shmctl_deleted_held_rss_bytes", kind="posix") >= 6 * PAGE
    assert value(families, "shmctl_orphan_segments", kind="sysv") >= 1
    assert value(families, "shmctl_orphan_size_bytes", kind="sysv") >= 3 * PAGE

    # the hostile name: still one sample per line, its label the printable form
    shown = printable("/" + hostile)
    assert "\n" not in shown and "\x1b" not in shown and '"' in shown
    hostile_labels = [l for l, _ in families["shmctl_segment_size_bytes"] if l["name"] == shown]
    assert len(hostile_labels) == 1 and hostile_labels[0]["address"] == printable(f"posix:/{hostile}")
    assert run("stat", hostile_labels[0]["address"]).code == 0  # the label is an address every command takes
    held.close()


@needs_isolation
def test_top_n_one_by_one_and_the_rest_summed(hold):
    top = 3
    sizes = [(i + 1) * 4 * PAGE for i in range(top + 3)]
    made = hold(*({"kind": "sysv", "size": size, "touch": size} for size in sizes)).objects
    families = parse(metrics("--top", str(top), "--here", "-k", "sysv"))
    shown = families["shmctl_segment_rss_bytes"]
    for name in ("shmctl_segment_size_bytes", "shmctl_segment_rss_bytes", "shmctl_segment_swap_bytes",
                 "shmctl_segment_attachments"):
        assert len(families[name]) == top, name
    # the top ones are the most resident of all in the namespace (ours are the only ones touched)
    ours = {f"sysv:{o['shmid']}": size for o, size in zip(made, sizes)}
    largest = sorted(ours, key=ours.get, reverse=True)[:top]
    assert [l["address"] for l, _ in shown] == largest
    # every segment is counted once: one by one or in shmctl_other_*, and both sum to the kind's totals
    count = value(families, "shmctl_segments", kind="sysv")
    others = families["shmctl_other_segments"]
    assert all(l["kind"] == "sysv" for l, _ in others) and any(l["owner"] == "root" for l, _ in others)
    assert top + sum(v for _, v in others) == count
    for per_segment, other, total in (("shmctl_segment_size_bytes", "shmctl_other_size_bytes", "shmctl_size_bytes"),
                                      ("shmctl_segment_rss_bytes", "shmctl_other_rss_bytes", "shmctl_rss_bytes"),
                                      ("shmctl_segment_swap_bytes", "shmctl_other_swap_bytes", "shmctl_swap_bytes")):
        assert sum(v for _, v in families[per_segment]) + sum(v for _, v in families[other]) == \
            value(families, total, kind="sysv")
    # --top 0: nothing one by one, everything in shmctl_other_*
    none = parse(metrics("--top", "0", "--here", "-k", "sysv"))
    assert none["shmctl_segment_size_bytes"] == [] and sum(v for _, v in none["shmctl_other_segments"]) == count


@needs_isolation
def test_kind_chooses_the_kinds_and_their_limits(hold):
    hold({"kind": "sysv", "size": PAGE})
    posix_only = parse(metrics("-k", "posix", "--here"))
    assert [l["kind"] for l, _ in posix_only["shmctl_segments"]] == ["posix"]
    assert posix_only["shmctl_sysv_shmmax_bytes"] == [] and len(posix_only["shmctl_dev_shm_size_bytes"]) == 1
    sysv_only = parse(metrics("--kind", "sysv", "--here"))
    assert [l["kind"] for l, _ in sysv_only["shmctl_segments"]] == ["sysv"]
    assert sysv_only["shmctl_dev_shm_size_bytes"] == [] and len(sysv_only["shmctl_sysv_shmmax_bytes"]) == 1
    assert sysv_only["shmctl_hugepages"] == posix_only["shmctl_hugepages"]  # the host's, whatever the kinds


def test_bad_options_are_usage_errors():
    for args in (["--top", "-1"], ["--top", "many"], ["--top", "١٢"], ["--top", "²"], ["-k", "nope"], ["--textfile-dir"]):
        r = run_in_process("metrics", *args)
        assert r.code == 2 and r.out == "" and r.err.count("\n") == 1 and r.err.startswith("shmctl: "), r


# --- namespaces ---

@pytest.mark.skipif(not ISOLATED or not ROOT, reason="needs root and namespaces")
def test_every_namespace_by_default_and_only_the_own_with_here():
    from test_namespaces import contained
    with contained(sysv_size=3 * PAGE, posix={"inner": 2 * PAGE}) as c:
        ipc, mnt = f"ipc:{c['ipc']}", f"mnt:{c['mnt']}"
        everywhere = parse(metrics("--top", "10000000"))  # other namespaces may hold many: none crowds ours out
        assert value(everywhere, "shmctl_sysv_used_segments", namespace=ipc) == 1
        assert value(everywhere, "shmctl_sysv_largest_segment_bytes", namespace=ipc) == 3 * PAGE
        assert value(everywhere, "shmctl_sysv_used_bytes", namespace=ipc) == 3 * PAGE
        address = f"sysv@{ipc}:{c['shmid']}"
        assert value(everywhere, "shmctl_segment_size_bytes", address=address) == 3 * PAGE
        assert value(everywhere, "shmctl_segment_attachments", address=address) == 1
        labels = next(l for l, _ in everywhere["shmctl_segment_size_bytes"] if l["address"] == address)
        assert labels["namespace"] == ipc
        assert value(everywhere, "shmctl_dev_shm_objects", namespace=mnt) == 1
        assert value(everywhere, "shmctl_dev_shm_size_bytes", namespace=mnt) == 8 << 20  # nsholder's tmpfs
        assert value(everywhere, "shmctl_dev_shm_used_bytes", namespace=mnt) == PAGE  # "hello": one page
        inner = value(everywhere, "shmctl_segment_rss_bytes", address=f"posix@{mnt}:/inner")
        assert inner == PAGE  # "hello" touched one page

        here = parse(metrics("--top", "1000", "--here"))
        # SysV and /dev/shm of the own namespaces only; mmap is host-wide whatever --here says
        assert {l["kind"] for l, _ in here["shmctl_segment_size_bytes"] if l["namespace"]} <= {"mmap"}
        for name in ("shmctl_sysv_shmmax_bytes", "shmctl_sysv_used_segments", "shmctl_dev_shm_size_bytes"):
            assert {l["namespace"] for l, _ in here[name]} == {""}, name
        assert address not in str(here)


# --- limits, /dev/shm, huge pages against the kernel ---

@pytest.mark.skipif(not ROOT, reason="sets kernel.shm* in an IPC namespace of its own: needs root")
def test_sysv_limits_against_proc_and_ipcs():
    """In an IPC namespace of its own with limits of its own: what /proc/sys and ipcs -l say."""
    script = ("echo 123456789 > /proc/sys/kernel/shmmax; echo 54321 > /proc/sys/kernel/shmall; "
              "echo 777 > /proc/sys/kernel/shmmni; ipcmk -M 10000 >/dev/null; ipcmk -M 70000 >/dev/null; "
              f"{shlex.join([sys.executable, '-m', 'shmctl_cli'])} metrics --here -k sysv; echo ===; "
              "cat /proc/sys/kernel/shmmax /proc/sys/kernel/shmall /proc/sys/kernel/shmmni; echo ===; ipcs -l")
    done = subprocess.run(["unshare", "--ipc", "sh", "-c", script], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.path.dirname(HERE)), timeout=60)
    assert done.returncode == 0, done.stderr
    text, proc, ipcs = done.stdout.split("===\n")
    families = parse(text)
    shmmax, shmall, shmmni = map(int, proc.split())
    assert (shmmax, shmall, shmmni) == (123456789, 54321, 777)
    assert value(families, "shmctl_sysv_shmmax_bytes", namespace="") == shmmax
    assert value(families, "shmctl_sysv_shmall_bytes", namespace="") == shmall * PAGE
    assert value(families, "shmctl_sysv_shmmni", namespace="") == shmmni
    assert value(families, "shmctl_sysv_used_segments", namespace="") == 2
    assert value(families, "shmctl_sysv_largest_segment_bytes", namespace="") == 70000
    pages = -(-10000 // PAGE) - (-70000 // PAGE)
    assert value(families, "shmctl_sysv_used_bytes", namespace="") == pages * PAGE
    lines = dict(line.split(" = ") for line in ipcs.splitlines() if " = " in line)
    assert int(lines["max number of segments"]) == shmmni
    assert int(lines["max seg size (kbytes)"]) == shmmax // 1024
    assert int(lines["max total shared memory (kbytes)"]) == shmall * PAGE // 1024


def _dev_shm_truth():
    st = os.statvfs("/dev/shm")
    objects, promised = 0, 0
    for entry in os.scandir("/dev/shm"):
        est = entry.stat(follow_symlinks=False)
        if entry.is_file(follow_symlinks=False):
            promised += max(0, est.st_size - est.st_blocks * 512)
            objects += not entry.name.startswith("sem.")
    return {"size": st.f_blocks * st.f_frsize, "used": (st.f_blocks - st.f_bfree) * st.f_frsize,
            "avail": st.f_bavail * st.f_frsize, "objects": objects, "promised": promised}


@needs_isolation
def test_dev_shm_against_statvfs(cleanup_shm, unique):
    names, _ = cleanup_shm
    names.append(unique.name)
    with open(f"/dev/shm/{unique.name}", "wb") as f:  # sparse: 1 MiB declared, one page written
        f.truncate(1 << 20)
        f.write(b"x" * PAGE)
    families = parse(metrics("--here", "-k", "posix"))
    truth = _dev_shm_truth()
    labels = {"namespace": "", "path": "/dev/shm"}
    for field in ("size", "used", "avail", "objects", "promised"):
        assert value(families, f"shmctl_dev_shm_{field}_bytes" if field != "objects" else "shmctl_dev_shm_objects",
                     **labels) == truth[field], field
    assert truth["promised"] >= (1 << 20) - PAGE and truth["objects"] >= 1


def test_hugepages_against_sys():
    families = parse(metrics("--here", "-k", "sysv"))
    root = "/sys/kernel/mm/hugepages"
    pools = sorted(os.listdir(root)) if os.path.isdir(root) else []
    states = {"total": "nr_hugepages", "free": "free_hugepages", "reserved": "resv_hugepages",
              "surplus": "surplus_hugepages"}
    assert len(families["shmctl_hugepages"]) == 4 * len(pools)
    for pool in pools:
        size = str(int(pool.split("-")[1].rstrip("kB")) * 1024)

        def read(name):
            with open(f"{root}/{pool}/{name}") as f:
                return int(f.read())
        for state, file in states.items():
            assert value(families, "shmctl_hugepages", size_bytes=size, state=state) == read(file)
        assert value(families, "shmctl_hugepages_overcommit", size_bytes=size) == read("nr_overcommit_hugepages")


@needs_isolation
def test_memory_and_meta():
    families = parse(metrics())
    with open("/proc/meminfo") as f:
        meminfo = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f if line.split()[-1] == "kB"}
    shmem = value(families, "shmctl_meminfo_shmem_bytes")
    assert abs(shmem - meminfo["Shmem"]) < 64 << 20  # read a moment apart on a busy host
    assert value(families, "shmctl_meminfo_hugetlb_bytes") == meminfo["Hugetlb"]
    assert 0 <= value(families, "shmctl_shmem_explained_bytes")
    assert 0 < value(families, "shmctl_collect_duration_seconds") < 60
    import time
    assert abs(value(families, "shmctl_last_collect_timestamp_seconds") - time.time()) < 120
    assert value(families, "shmctl_hidden_processes") >= 0


# --- --textfile-dir ---

def _prom(directory):
    return os.path.join(directory, "shmctl.prom")


@needs_isolation
def test_textfile_written_atomically_mode_0644_nothing_on_stdout(tmp_path):
    r = run("metrics", "--here", "--textfile-dir", tmp_path)
    assert (r.code, r.out, r.err) == (0, "", "")
    st = os.stat(_prom(tmp_path))
    assert st.st_mode & 0o7777 == 0o644 and st.st_uid == os.geteuid()
    assert set(parse(open(_prom(tmp_path)).read())) == set(HELP)
    assert os.listdir(tmp_path) == ["shmctl.prom"]  # no temp file left


def test_textfile_dir_missing_is_2_and_not_a_directory_1(tmp_path):
    """The local-file rule (errors.local_error): 2 for a path that does not exist, 1 for one
    that exists and cannot be used (a file)."""
    for bad, why, code in ((tmp_path / "nope", "no such directory", 2), (tmp_path / "file", "not a directory", 1)):
        if bad.name == "file":
            bad.write_text("x")
        r = run("metrics", "--textfile-dir", bad)
        assert r.code == code and r.out == "", r
        assert r.err == f"shmctl: --textfile-dir {bad}: {why} (give the directory node_exporter's " \
                        "--collector.textfile.directory reads)\n"


@pytest.mark.skipif(not ROOT, reason="needs root to play another user")
def test_textfile_dir_not_writable_is_permission_denied():
    import tempfile
    closed = tempfile.mkdtemp(prefix="shmctl-textfile-")  # in /tmp: others may reach it, not write it
    try:
        os.chmod(closed, 0o755)
        r = run_as(SECOND_UID, "metrics", "--here", "--textfile-dir", closed)
        assert r.code == 4 and r.out == "", r
        assert r.err.count("\n") == 1 and r.err.startswith(f"shmctl: create a temporary file in {closed}: "), r
        assert os.listdir(closed) == []
        os.chmod(closed, 0o700)  # not even reachable: refused before anything is collected
        r = run_as(SECOND_UID, "metrics", "--textfile-dir", os.path.join(closed, "sub"))
        assert r.code == 4 and r.err.startswith(f"shmctl: --textfile-dir {closed}/sub: permission denied"), r
    finally:
        shutil.rmtree(closed)


@pytest.mark.skipif(not ROOT, reason="plants what another user could: as root, nothing may be followed")
def test_a_symlink_at_the_name_is_replaced_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    os.chmod(victim, 0o600)
    collector = tmp_path / "collector"
    collector.mkdir()
    os.symlink(victim, _prom(collector))
    r = run("metrics", "--here", "-k", "sysv", "--textfile-dir", collector)
    assert r.code == 0, r
    assert victim.read_text() == "precious\n" and os.stat(victim).st_mode & 0o777 == 0o600
    assert not os.path.islink(_prom(collector))
    assert "shmctl_sysv_shmmax_bytes" in open(_prom(collector)).read()
    os.symlink(tmp_path / "nowhere", str(collector / "shmctl.prom") + ".new")  # a dangling one too
    assert run("metrics", "--here", "-k", "sysv", "--textfile-dir", collector).code == 0
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.skipif(not ROOT or not ISOLATED, reason="plants what another user could, as root")
def test_a_symlink_at_a_guessed_temp_name_is_never_followed(tmp_path, monkeypatch):
    """The temp name is random; here it is made predictable (the first try), and a symlink is
    planted at it: O_EXCL|O_NOFOLLOW refuses it and another name is taken."""
    import secrets
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    collector = tmp_path / "collector"
    collector.mkdir()
    guessed = collector / ".shmctl.prom.000000000000.shmctl-tmp"
    os.symlink(victim, guessed)
    real = secrets.token_hex
    tries = []
    monkeypatch.setattr(secrets, "token_hex", lambda n: "0" * (2 * n) if not tries.append(n) and len(tries) == 1
                        else real(n))
    r = run_in_process("metrics", "--here", "-k", "posix", "--textfile-dir", str(collector))
    assert r.code == 0, r
    assert len(tries) == 2  # the guessed name was taken: a second one was made
    assert victim.read_text() == "precious\n"
    assert os.readlink(guessed) == str(victim)  # left as it was
    assert sorted(os.listdir(collector)) == [guessed.name, "shmctl.prom"]


@needs_isolation
def test_a_reader_never_sees_a_half_written_file(tmp_path, hold):
    hold(*({"kind": "sysv", "size": PAGE * (i + 1)} for i in range(20)))
    assert run("metrics", "--here", "--textfile-dir", tmp_path).code == 0
    seen, problems, stop = [], [], threading.Event()

    def reader():
        while not stop.is_set():
            with open(_prom(tmp_path)) as f:
                text = f.read()
            seen.append(len(text))
            if not text.endswith("shmctl_last_collect_timestamp_seconds " + text.rsplit(" ", 1)[-1]) \
                    or not text.startswith("# HELP "):
                problems.append(text[-200:])

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for _ in range(5):
            assert run("metrics", "--here", "--textfile-dir", tmp_path).code == 0
    finally:
        stop.set()
        thread.join()
    assert problems == [] and len(seen) > 5
    assert os.listdir(tmp_path) == ["shmctl.prom"]


# --- the contrib units ---

def _unit(name):
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    unit.read(os.path.join(CONTRIB, name))
    return unit


def test_the_units_pass_systemd_analyze_verify():
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # offline: it needs no systemd as pid 1; --man=no: shmctl's man pages are not installed here
    done = subprocess.run([analyze, "verify", "--man=no", os.path.join(CONTRIB, "shmctl-metrics.service"),
                           os.path.join(CONTRIB, "shmctl-metrics.timer")], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "shmctl-metrics" not in done.stderr, done.stderr
    service, timer = _unit("shmctl-metrics.service"), _unit("shmctl-metrics.timer")
    assert service["Service"]["Type"] == "oneshot"
    assert timer["Timer"]["OnCalendar"] == "minutely" and timer["Timer"]["Unit"] == "shmctl-metrics.service"
    assert service["Service"]["ReadWritePaths"] == "/var/lib/prometheus/node-exporter"
    for breaks in ("PrivateIPC", "ProtectProc", "ProcSubset", "PrivatePIDs", "PrivateUsers"):
        assert breaks not in service["Service"], breaks  # each would hide processes or segments


def _exec_start(directory):
    argv = shlex.split(_unit("shmctl-metrics.service")["Service"]["ExecStart"])
    assert argv[:3] == ["/usr/bin/env", "shmctl", "metrics"] and argv[-2] == "--textfile-dir"
    assert argv[-1] == "/var/lib/prometheus/node-exporter"  # Debian's textfile directory
    return argv[:-1] + [str(directory)]


def _path_with_shmctl(tmp_path):
    """PATH whose `shmctl` is this checkout's (the installed console script may be older)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "shmctl").write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -m shmctl_cli \"$@\"\n")
    os.chmod(bin_dir / "shmctl", 0o755)
    return f"{bin_dir}:{os.environ['PATH']}"


@needs_isolation
def test_the_units_exec_start_runs_for_real(tmp_path, hold):
    made = hold({"kind": "sysv", "size": 7 * PAGE, "touch": 7 * PAGE}).objects[0]
    out = tmp_path / "textfile"
    out.mkdir()
    env = dict(os.environ, PATH=_path_with_shmctl(tmp_path), PYTHONPATH=os.path.dirname(HERE))
    done = subprocess.run(_exec_start(out), capture_output=True, text=True, env=env, timeout=120)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    families = parse(open(_prom(out)).read())
    assert by_address(families, "shmctl_segment_rss_bytes", f"sysv:{made['shmid']}") == 7 * PAGE


@pytest.mark.skipif(not ROOT or not ISOLATED or shutil.which("setpriv") is None, reason="needs root and setpriv")
def test_the_units_capabilities_are_enough(tmp_path):
    """CapabilityBoundingSet as systemd applies it to root (the bounding set, nothing
    inheritable), emulated with setpriv: the same segments, processes and namespaces seen."""
    from test_namespaces import contained
    caps = _unit("shmctl-metrics.service")["Service"]["CapabilityBoundingSet"].split()
    bounding = ",".join(["-all"] + ["+" + c.lower()[len("cap_"):] for c in caps])
    with contained(sysv_size=PAGE, posix={"inner": PAGE}) as c:
        kinds = ["-k", "sysv", "-k", "posix"]  # what the test made: mmap is the whole host's, and moves
        full = parse(metrics("--top", "10000000", *kinds))
        limited = run("metrics", "--top", "10000000", *kinds,
                      prefix=["setpriv", "--inh-caps=-all", f"--bounding-set={bounding}"])
        assert limited.code == 0 and limited.err == "", limited
    limited = parse(limited.out)
    # what the test's own and contained namespaces hold (others on the host may change between
    # the runs): every series of theirs the same, so setns and /proc/PID/root worked as well
    ours = {"", f"ipc:{c['ipc']}", f"mnt:{c['mnt']}"}
    compared = 0
    for name in HELP:
        mine = [(l, v) for l, v in full[name] if l.get("namespace") in ours]
        assert [(l, v) for l, v in limited[name] if l.get("namespace") in ours] == mine, name
        compared += len(mine)
    assert value(limited, "shmctl_dev_shm_objects", namespace=f"mnt:{c['mnt']}") == 1 and compared > 10


# --- examples ---

@needs_isolation
@pytest.mark.parametrize("line", ["shmctl metrics", "shmctl metrics --top 10 --here"])
def test_safe_examples_run(line):
    from shmctl_cli.cli.examples import EXAMPLES
    assert line in [example for example, _ in EXAMPLES["metrics"]]
    r = run(*shlex.split(line)[1:])
    assert r.code == 0 and set(parse(r.out)) == set(HELP), r
