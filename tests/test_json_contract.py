"""The JSON contract (issue 11): a column's key is its name in lower case, one meaning per
name across table and JSON, --json honours -o and the presets, and the real output of list,
stat and limits validates against the JSON Schemas shipped in schema/."""
import json
import os
import pathlib

import pytest

from conftest import run, run_in_process

jsonschema = pytest.importorskip("jsonschema")
from referencing import Registry, Resource  # noqa: E402  (jsonschema's own dependency)

SCHEMA_DIR = pathlib.Path(__file__).resolve().parent.parent / "schema"


def _registry():
    schemas = {name: json.loads((SCHEMA_DIR / f"{name}.schema.json").read_text()) for name in ("list", "stat", "limits")}
    registry = Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in schemas.values())
    return schemas, registry


SCHEMAS, REGISTRY = _registry()


def validate(kind: str, data) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[kind])
    validator = jsonschema.Draft202012Validator(SCHEMAS[kind], registry=REGISTRY,
                                                format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


@pytest.fixture
def every_kind(hold, unique, tmp_path):
    mapped = tmp_path / "mapped.db"
    return hold({"kind": "sysv", "key": unique.key, "size": 8192, "mode": 0o640, "touch": 4096},
                {"kind": "posix", "name": unique.name, "size": 4096, "mode": 0o644, "touch": 4096},
                {"kind": "memfd", "name": unique.name, "size": 12288},
                {"kind": "anon", "size": 8192},
                {"kind": "file", "path": str(mapped), "size": 16384})


def _mine(data, h):
    pids = {h.pid}
    return [s for s in data["segments"] if pids & {p["pid"] for p in s.get("processes", [])}]


@pytest.mark.parametrize("args", [[], ["-p"], ["-o", "ADDRESS,SIZE,KEY,NATTCH,STATUS,ORPHAN"], ["--output-all"],
                                  ["-t"], ["-c"], ["-A"], ["-u"], ["-a"], ["-k", "sysv", "-o", "+PROCESSES"]])
def test_list_json_validates(every_kind, args):
    r = run("list", "--json", *args)
    assert r.code == 0, r
    validate("list", r.json())
    if not args:
        kinds = {s["kind"] for s in r.json()["segments"]}
        assert {"sysv", "posix", "mmap"} <= kinds


def test_stat_json_validates_for_each_kind(every_kind, unique):
    data = run("list", "--json", "-o", "+KIND,PROCESSES").json()
    mine = _mine(data, every_kind)
    assert {s["kind"] for s in mine} == {"sysv", "posix", "mmap"}
    for seg in mine:
        for command in (("stat", "-J", seg["address"]), ("list", "-J", "-i", seg["address"])):
            r = run(*command)
            assert r.code == 0, r
            validate("stat", r.json())
            assert r.json()["address"] == seg["address"]


def test_list_and_stat_give_one_namespace(every_kind):
    """NAMESPACE is the object's namespace inode in list and in stat alike (mmap: its path's
    mount namespace, or none for memory without a path)."""
    listed = {s["address"]: s["namespace"]
              for s in _mine(run("list", "--json", "-o", "ADDRESS,NAMESPACE,PROCESSES").json(), every_kind)}
    assert len(listed) == 5
    own = {"sysv": os.stat("/proc/self/ns/ipc").st_ino, "posix": os.stat("/proc/self/ns/mnt").st_ino}
    for address, namespace in listed.items():
        assert run("stat", "--json", address).json()["namespace"] == namespace, address
        if address.split(":")[0] in own:
            assert namespace == own[address.split(":")[0]], address


def test_limits_json_validates(every_kind):
    for args in ([], ["-A"]):
        r = run("limits", "-J", *args)
        assert r.code == 0, r
        validate("limits", r.json())
        same = run("list", "-l", "-J", *args)
        assert same.code == 0, same
        validate("limits", same.json())
        assert same.json().keys() == r.json().keys()


def test_the_names_and_their_one_meaning(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096, "mode": 0o640})
    shmid = h.objects[0]["shmid"]
    seg = run("stat", "--json", f"sysv:{shmid}").json()
    assert seg["perms"] == "0640" and seg["mode"] == "rw-r-----"
    assert seg["key"] == unique.key and seg["key_hex"] == f"0x{unique.key:08x}"
    import grp
    import pwd
    assert seg["owner"] == pwd.getpwuid(os.geteuid()).pw_name and seg["uid"] == os.geteuid()
    assert seg["group"] == grp.getgrgid(os.getegid()).gr_name and seg["gid"] == os.getegid()
    assert seg["cuser"] == seg["owner"] and seg["cgroup"] == seg["group"]
    assert seg["ctime"][-6] in "+-" and seg["ctime"][-3] == ":"  # ISO 8601 with the offset
    table = run("list", "-k", "sysv", "-o", "ADDRESS,PERMS,MODE,KEY,OWNER,GROUP,CUSER,CGROUP", "-r", "-n").out
    line = next(l for l in table.splitlines() if l.startswith(f"sysv:{shmid} "))
    assert line.split() == [f"sysv:{shmid}", "0640", "rw-r-----", f"0x{unique.key:08x}", seg["owner"], seg["group"],
                            seg["cuser"], seg["cgroup"]]


ONE_MEANING = ["ADDRESS", "NAME", "BACKING", "OWNER", "GROUP", "CUSER", "CGROUP", "UID", "GID"]


def _forms(*extra):
    """{address: {column: text}} of list -o ONE_MEANING in the plain (pipe), raw, export and
    JSON forms; JSON's null read as the table's `-`."""
    import re
    columns = ",".join(ONE_MEANING)
    forms = {}
    for form, flags in (("plain", ()), ("raw", ("-r",)), ("export", ("-e",)), ("json", ("--json",))):
        r = run("list", "-a", "-o", columns, *flags, *extra)
        assert r.code == 0, r
        if form == "json":
            rows = [{c: "-" if seg[c.lower()] is None else str(seg[c.lower()]) for c in ONE_MEANING}
                    for seg in r.json()["segments"]]
        elif form == "export":
            rows = [dict(re.findall(r'(\w+)="([^"]*)"', line)) for line in r.out.splitlines()]
        else:
            rows = [dict(zip(ONE_MEANING, line.split())) for line in r.out.splitlines()[1:]]
        forms[form] = {row["ADDRESS"]: row for row in rows}
    return forms


def test_one_meaning_per_name_in_every_form(hold, unique, tmp_path):
    """NAME, BACKING, OWNER, GROUP, CUSER and CGROUP hold the same text in the table on a pipe,
    --raw, --export and JSON, for all three kinds; --numeric-ids puts ids in the table forms'
    name columns (ls -n) and changes neither JSON nor --export, whose ids are UID and GID."""
    import grp
    import pwd
    mapped = tmp_path / "mapped.db"
    h = hold({"kind": "sysv", "key": unique.key, "size": 4096}, {"kind": "posix", "name": unique.name, "size": 4096},
             {"kind": "memfd", "name": unique.name, "size": 4096}, {"kind": "anon", "size": 4096},
             {"kind": "file", "path": str(mapped), "size": 4096})
    user, group = pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name
    mine = [seg["address"] for seg in _mine(run("list", "-a", "--json", "-o", "ADDRESS,PROCESSES").json(), h)]
    named, numeric = _forms(), _forms("--numeric-ids")
    seen = {named["json"][a]["NAME"]: named["json"][a]["BACKING"] for a in mine}
    expected = {f"0x{unique.key:08x}": "sysv", f"/{unique.name}": "posix", f"memfd:{unique.name}": "memfd",
                "anonymous": "anonymous", str(mapped): "file"}
    assert {name: seen.get(name) for name in expected} == expected, seen  # (-a: and glibc's gconv cache)
    for address in mine:
        reference = named["json"][address]
        assert reference["OWNER"] == user and reference["GROUP"] == group, reference
        for form in ("plain", "raw", "export"):
            assert named[form][address] == reference, (form, named[form][address], reference)
        for form in ("json", "export"):  # never changed by --numeric-ids
            assert numeric[form][address] == reference, (form, numeric[form][address], reference)
        ids = dict(reference, OWNER=reference["UID"], GROUP=reference["GID"])
        if reference["CUSER"] != "-":  # sysv has a creator
            ids.update(CUSER=str(os.geteuid()), CGROUP=str(os.getegid()))
        for form in ("plain", "raw"):  # the table forms: ids, as ls -n
            assert numeric[form][address] == ids, (form, numeric[form][address], ids)


def test_json_key_is_the_column_name():
    from shmctl_cli.fields import COLUMNS
    for name, field in COLUMNS.items():
        assert field.key == name.lower().replace("%", "_percent"), name


def test_json_honours_o_with_companions(hold, unique):
    hold({"kind": "sysv", "key": unique.key, "size": 4096})
    data = run("list", "-k", "sysv", "--json", "-o", "SIZE,KEY,NATTCH,ADDRESS,STATUS,ORPHAN").json()
    keys = [list(s) for s in data["segments"]]
    assert keys and all(k == ["size", "key", "key_hex", "nattch", "nattch_exact", "address", "status", "hugetlb",
                              "orphan", "orphan_certain"] for k in keys)
    preset = run("list", "-k", "sysv", "--json", "-t").json()["segments"]
    assert all(list(s) == ["address", "id", "owner", "atime", "dtime", "ctime"] for s in preset)
    plus = run("list", "-k", "sysv", "--json", "-t", "-o", "+SIZE").json()["segments"]
    assert all(list(s) == ["address", "id", "owner", "atime", "dtime", "ctime", "size"] for s in plus)
    every = run("list", "-k", "sysv", "--json").json()["segments"]
    assert "device" in every[0] and "processes" not in every[0]  # without -o: every field, as before


def test_column_wise_json_is_json_dumps_text(every_kind, unique, tmp_path):
    """The fast writer gives exactly json.dumps(indent=2)'s text, hostile names included."""
    hostile = tmp_path / 'we"ird $(x) `y`\n\tname\\'
    every_kind.__class__  # the fixture's holder keeps its objects alive
    from conftest import Holder
    h = Holder([{"kind": "file", "path": str(hostile), "size": 4096}, {"kind": "posix", "name": unique.name + "é ü",
                                                                       "size": 4096}])
    try:
        from shmctl_cli import kinds, render
        from shmctl_cli.fields import Style
        style = Style(exact_sizes=True)
        inv = kinds.collect(["sysv", "posix", "mmap"], kinds.View(), processes=True)
        assert any("we" in s.address for s in inv.segments)
        for processes in (True, False):
            for columns in (None, ["ADDRESS", "PROCESSES", "KEY"], ["NAME", "SIZE"]):
                fast = render.inventory_json(inv, style, processes, None, columns)
                slow = render.to_json({"segments": render.segment_dicts(inv.segments, style, processes, columns),
                                       "hidden_processes": inv.hidden_processes,
                                       "not_segments": inv.skipped})
                assert fast == slow
        empty = kinds.Inventory() if hasattr(kinds, "Inventory") else None
        if empty is not None:
            assert json.loads(render.inventory_json(empty, style, False))["segments"] == []
    finally:
        h.close()
        if hostile.exists():
            hostile.unlink()


@pytest.mark.parametrize("args", [["--json", "--raw"], ["--json", "--export"], ["--json", "--newline"],
                                  ["--json", "-n"], ["--output-all", "-o", "SIZE"], ["--raw", "--export"],
                                  ["-u", "-o", "SIZE"], ["-t", "-o", "SIZE"], ["-c", "-p", "-o", "SIZE"], ["-i", "1", "--user", "root"],
                                  ["-l", "-o", "SIZE"], ["--list"]])
def test_conflicting_options_are_usage_errors(args):
    r = run_in_process("list", *args)
    assert r.code == 2, r
    assert r.err.count("\n") == 1 and r.err.startswith("shmctl: "), r.err


def test_limits_json_conflicts():
    for args in (["-J", "-r"], ["-J", "-n"]):
        r = run_in_process("limits", *args)
        assert r.code == 2, r
