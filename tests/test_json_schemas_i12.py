"""The JSON Schemas of issue 12 (schema/doctor, plan, event .schema.json) against REAL output:
doctor --json in a namespace of the test's own with an orphan SysV segment made there; the
plan of rm --dry-run --json on real POSIX and SysV objects (planned and skipped entries),
applied back with rm --plan; the lines of a real `watch --events` child while a POSIX object
and a SysV segment are created, resized, attached, marked and removed."""
import ctypes
import json
import os
import pathlib
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import ENV, HERE, ISOLATED, ROOT, shmctl_cmd

jsonschema = pytest.importorskip("jsonschema")
from referencing import Registry, Resource  # noqa: E402  (jsonschema's own dependency)

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent.parent / "schema"
NAMES = ("doctor", "plan", "event")
SCHEMAS = {name: json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()) for name in NAMES}
REGISTRY = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in SCHEMAS.values())
SHMCTL = f"{sys.executable} -m shmctl_cli"
KEYS = ["time", "event", "address", "kind", "name", "size", "owner", "uid", "nattch", "pids", "by"]

needs_root_namespaces = pytest.mark.skipif(not (ROOT and ISOLATED), reason="needs root in the session's own "
                                                                           "namespaces")


def validate(name: str, data) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMAS[name], registry=REGISTRY,
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def invalid(name: str, data) -> bool:
    return not jsonschema.Draft202012Validator(SCHEMAS[name], registry=REGISTRY).is_valid(data)


# --- the schema files themselves ---

def test_the_schema_files_are_valid_draft_2020_12_schemas():
    for name, schema in SCHEMAS.items():
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        assert schema["$id"].endswith(f"/schema/{name}.schema.json")
        text = (SCHEMA_DIR / f"{name}.schema.json").read_text()
        assert text == json.dumps(schema, indent=2) + "\n"  # the style of list/stat/limits


def test_the_enums_are_the_codes():
    """Every check, severity, event and source the code knows is in the schemas, and no other."""
    from shmctl_cli.doctor import CHECK_IDS, SEVERITIES
    from shmctl_cli.watch.events import CHANGES
    doctor = SCHEMAS["doctor"]["$defs"]
    assert doctor["check"]["enum"] == list(CHECK_IDS)
    assert doctor["severity"]["enum"] == list(SEVERITIES)
    assert doctor["finding"]["properties"]["severity"]["enum"] == list(SEVERITIES[1:])
    event = SCHEMAS["event"]
    assert event["properties"]["event"]["enum"] == list(CHANGES)
    assert event["required"] == KEYS
    assert event["$defs"]["actor"]["properties"]["source"]["enum"] == ["fanotify", "lpid", "cpid", "scan"]
    from shmctl_cli import KINDS
    assert event["properties"]["kind"]["enum"] == list(KINDS) == SCHEMAS["plan"]["$defs"]["kind"]["enum"]


def test_the_schemas_are_strict():
    """Unknown keys, a missing key, a finding of severity ok, old_size outside a resize: refused."""
    finding = {"check": "orphans", "severity": "info", "summary": "x", "evidence": [], "fix": ""}
    report = {"findings": [finding], "checks": [{"check": "orphans", "severity": "info"}], "worst": "info"}
    validate("doctor", report)
    assert invalid("doctor", dict(report, extra=1))
    assert invalid("doctor", dict(report, findings=[dict(finding, severity="ok")]))
    assert invalid("doctor", dict(report, checks=[{"check": "no-such-check", "severity": "ok"}]))
    assert invalid("doctor", {k: v for k, v in report.items() if k != "worst"})
    entry = {"address": "sysv:1", "kind": "sysv", "id": 1, "name": None, "size": 4096, "owner": "root", "uid": 0,
             "last_used": "2026-01-02T03:04:05+00:00", "age_seconds": 3,
             "identity": {"kind": "sysv", "id": 1, "device": None, "ctime": 1767322245}}
    validate("plan", {"plan": [entry], "skipped": [{"address": "posix:/a", "why": "in use"}]})
    assert invalid("plan", {"plan": [dict(entry, last_used="2026-01-02 03:04:05")], "skipped": []})
    assert invalid("plan", {"plan": [dict(entry, identity=dict(entry["identity"], ctime=None))], "skipped": []})
    assert invalid("plan", {"plan": [entry]})
    line = {"time": "2026-01-02T03:04:05+01:00", "event": "resized", "address": "posix:/a", "kind": "posix",
            "name": "/a", "size": 8192, "old_size": 4096, "owner": "root", "uid": 0, "nattch": 0, "pids": [],
            "by": None}
    validate("event", line)
    assert invalid("event", {k: v for k, v in line.items() if k != "old_size"})
    assert invalid("event", dict(line, event="created"))  # old_size only with resized
    assert invalid("event", dict(line, by={"pid": 1, "comm": None, "source": "guess"}))


# --- doctor --json ---

def in_namespace(script: str) -> subprocess.CompletedProcess:
    """`sh -c script` in a new IPC and mount namespace (private propagation) with a tmpfs of its
    own on /dev/shm: everything made there ends with it."""
    setup = "mount -t tmpfs -o size=64m,mode=1777 shmctl-test /dev/shm || exit 99; "
    return subprocess.run(["unshare", "--ipc", "--mount", "--propagation", "private", "sh", "-c", setup + script],
                          capture_output=True, text=True, timeout=120, env=dict(ENV, SHMCTL=SHMCTL))


@needs_root_namespaces
@pytest.mark.parametrize("args", [[], ["-v"], ["-v", "-A"]])
def test_doctor_json_with_an_orphan_validates(args):
    r = in_namespace(f"$SHMCTL create sysv --size 64K >/dev/null || exit 98; $SHMCTL doctor --json {' '.join(args)}")
    assert r.returncode in (0, 8, 9), r.stderr
    data = json.loads(r.stdout)
    validate("doctor", data)
    assert [c["check"] for c in data["checks"]] == SCHEMAS["doctor"]["$defs"]["check"]["enum"]
    orphans = [f for f in data["findings"] if f["check"] == "orphans"]
    assert orphans and any("sysv:0 (64KiB)" in e for e in orphans[0]["evidence"]), data["findings"]
    assert r.returncode == {"ok": 0, "info": 0, "warning": 8, "critical": 9}[data["worst"]]


@needs_root_namespaces
def test_doctor_json_critical_and_clean_validate():
    """A critical finding (shmmax below --expect) and a run of one check that found nothing."""
    r = in_namespace("echo 1048576 > /proc/sys/kernel/shmmax || exit 98; "
                     "$SHMCTL doctor --json --check sysv-limits --expect 2M")
    assert r.returncode == 9, r.stderr
    data = json.loads(r.stdout)
    validate("doctor", data)
    assert data["worst"] == "critical" and data["findings"][0]["severity"] == "critical"
    r = in_namespace("$SHMCTL doctor --json --check orphans")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    validate("doctor", data)
    assert data == {"findings": [], "checks": [{"check": "orphans", "severity": "ok"}], "worst": "ok"}


# --- rm --dry-run --json: the plan, and rm --plan reading it back ---

PLAN_DRIVER = r"""
import json, os, subprocess, sys
spec = json.loads(sys.argv[1])
shmctl = [sys.executable, "-m", "shmctl_cli"]
subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=1777", "shmctl-test", "/dev/shm"], check=True)
def sh(*args, input=None):
    done = subprocess.run(shmctl + list(args), capture_output=True, text=True, input=input)
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr}
out = {"orphan_sysv": sh("create", "sysv", "--size", "16K")["out"].strip(),
       "orphan_posix": sh("create", "/orphan", "--size", "8K")["out"].strip()}
holder = subprocess.Popen([sys.executable, spec["holder_py"], json.dumps(spec["hold"])], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
out["held"] = [json.loads(line) for line in iter(holder.stdout.readline, "ready\n")]
os.unlink("/dev/shm/deleted")  # still mapped by the holder: deleted, held
out["all"] = sh("rm", "--all", "-k", "sysv", "-k", "posix", "--dry-run", "--json")
out["orphans"] = sh("rm", "--orphans", "--dry-run", "--json")
out["forced"] = sh("rm", "--orphans", "--force", "--dry-run", "--json")
out["applied"] = sh("rm", "--plan", "-", "--yes", input=out["forced"]["out"])
out["after"] = sh("list", "-k", "sysv", "-k", "posix", "--json")
holder.stdin.close()
holder.wait()
print(json.dumps(out))
"""


@needs_root_namespaces
def test_rm_plans_validate_and_apply():
    spec = {"holder_py": os.path.join(HERE, "holder.py"),
            "hold": [{"kind": "sysv", "size": 4096},  # attached: --all skips it, in use
                     {"kind": "posix", "name": "/deleted", "size": 4096, "keep": True}]}
    done = subprocess.run(["unshare", "--ipc", "--mount", "--propagation", "private", sys.executable, "-c",
                           PLAN_DRIVER, json.dumps(spec)], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    attached = f"sysv:{out['held'][0]['shmid']}"
    for run_name in ("all", "orphans", "forced"):
        validate("plan", json.loads(out[run_name]["out"]))

    every = json.loads(out["all"]["out"])  # --all: the attached segment refused (5), the deleted one passed over
    assert out["all"]["code"] == 5, out["all"]
    assert out["orphan_sysv"] in [e["address"] for e in every["plan"]]
    skipped = {s["address"]: s["why"] for s in every["skipped"]}
    assert attached in skipped and "in use" in skipped[attached], skipped
    assert any(why.startswith("deleted") for why in skipped.values()), skipped

    forced = json.loads(out["forced"]["out"])  # --orphans --force: both orphans, nothing else
    assert out["forced"]["code"] == 0, out["forced"]
    assert sorted(e["address"] for e in forced["plan"]) == sorted([out["orphan_posix"], out["orphan_sysv"]])
    assert forced["skipped"] == []
    by_kind = {e["kind"]: e for e in forced["plan"]}
    assert by_kind["sysv"]["identity"]["device"] is None and by_kind["sysv"]["name"] is None
    assert by_kind["posix"]["name"] == "/orphan" and isinstance(by_kind["posix"]["identity"]["device"], int)
    assert list(by_kind["posix"]) == ["address", "kind", "id", "name", "size", "owner", "uid", "last_used",
                                      "age_seconds", "identity"]

    # the plan the schema describes is the plan rm --plan reads: both orphans removed, nothing else
    assert out["applied"]["code"] == 0, out["applied"]
    assert sorted(out["applied"]["out"].split()) == sorted([out["orphan_posix"], out["orphan_sysv"]])
    left = [s["address"] for s in json.loads(out["after"]["out"])["segments"]]
    assert attached in left and out["orphan_sysv"] not in left and out["orphan_posix"] not in left


# --- watch --events ---

class EventWatch:
    """`shmctl watch --events --interval 0.2 --log FILE` as a child, ready once its "shmctl:
    watching" line is on stderr; every line it prints is kept (and validated by the test)."""

    def __init__(self, log: pathlib.Path):
        self.proc = subprocess.Popen([*shmctl_cmd(), "watch", "--events", "--interval", "0.2", "--log", str(log)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV)
        self.err, self.buffer, self.lines = b"", b"", []
        deadline = time.monotonic() + 30
        while b"shmctl: watching" not in self.err:
            assert time.monotonic() < deadline and self.proc.poll() is None, self.err
            if select.select([self.proc.stderr], [], [], 0.5)[0]:
                self.err += os.read(self.proc.stderr.fileno(), 4096)

    def expect(self, event: str, address: str, timeout: float = 20.0) -> dict:
        """The first line of that event and address not yet taken, within `timeout`."""
        deadline = time.monotonic() + timeout
        taken = getattr(self, "taken", set())
        self.taken = taken
        while True:
            for n, line in enumerate(self.lines):
                e = json.loads(line)
                if n not in taken and e["event"] == event and e["address"] == address:
                    taken.add(n)
                    return e
            assert time.monotonic() < deadline, f"no {event} {address} in {self.lines}; {self.err}"
            self._read(0.2)

    def _read(self, timeout: float) -> None:
        if select.select([self.proc.stdout], [], [], timeout)[0]:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            assert chunk, f"watch ended: {self.proc.wait()} {self.err}"
            self.buffer += chunk
            *lines, self.buffer = self.buffer.split(b"\n")
            self.lines += [line.decode() for line in lines]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(30)
        rest = self.proc.stdout.read()
        self.buffer += rest
        *lines, self.buffer = self.buffer.split(b"\n")
        self.lines += [line.decode() for line in lines]
        self.err += self.proc.stderr.read()
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def _libc():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
    libc.shmat.restype = ctypes.c_void_p
    libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
    libc.shmdt.argtypes = [ctypes.c_void_p]
    libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
    return libc


IPC_PRIVATE, IPC_CREAT, IPC_RMID = 0, 0o1000, 0


@pytest.mark.skipif(not ISOLATED, reason="needs the session's own namespaces")
def test_watch_events_lines_validate(unique, tmp_path):
    log = tmp_path / "events.log"
    watch = EventWatch(log)
    libc = _libc()
    path = f"/dev/shm/{unique.name}"
    address = f"posix:/{unique.name}"
    shmid, attached = -1, None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        os.ftruncate(fd, 8192)
        os.close(fd)
        watch.expect("created", address)
        os.truncate(path, 16384)
        resized = watch.expect("resized", address)
        assert (resized["size"], resized["old_size"]) == (16384, 8192)

        shmid = libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0o600)
        assert shmid >= 0, os.strerror(ctypes.get_errno())
        segment = f"sysv:{shmid}"
        created = watch.expect("created", segment)
        assert created["by"] is None or created["by"]["source"] == "cpid"
        attached = libc.shmat(shmid, None, 0)
        assert attached not in (None, ctypes.c_void_p(-1).value)
        watch.expect("attached", segment)
        assert libc.shmctl(shmid, IPC_RMID, None) == 0  # attachments left: marked
        marked = watch.expect("marked", segment)
        assert marked["by"] is None and marked["nattch"] == 1
        assert libc.shmdt(attached) == 0
        attached = None
        watch.expect("removed", segment)

        os.unlink(path)
        watch.expect("removed", address)
        assert watch.stop() == 130, watch.err
    finally:
        if attached is not None:
            libc.shmdt(attached)
        if shmid >= 0:
            libc.shmctl(shmid, IPC_RMID, None)
        if os.path.exists(path):
            os.unlink(path)
        watch.close()
    assert watch.buffer == b"", watch.buffer  # every line ended by a newline
    events = [json.loads(line) for line in watch.lines]
    for e in events:  # every line printed, other processes' changes included
        validate("event", e)
        assert list(e) == KEYS[:6] + (["old_size"] if e["event"] == "resized" else []) + KEYS[6:], e
    kinds_seen = {(e["kind"], e["event"]) for e in events}
    assert {("posix", "created"), ("posix", "resized"), ("posix", "removed"), ("sysv", "created"),
            ("sysv", "attached"), ("sysv", "marked"), ("sysv", "removed")} <= kinds_seen
    logged = log.read_text().splitlines()  # --log: the same lines
    for line in logged:
        validate("event", json.loads(line))
    # --log: the same lines, even when SIGINT lands while a step's events are being written
    # (signals.deferred holds it back until every sink has them)
    assert logged == watch.lines, "the log differs from stdout"
