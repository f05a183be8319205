"""The output options of issue 11 on one segment and on lists: `stat` and `list -i` are one
path and honour -o/--output-all/-t/-c/-p, -r, -n, -e, --newline, -P and --json -o as lsipc -i
does (checked against lsipc on the same segment); the presets combine; options that cannot
both hold are usage errors of one line; a terminal shows a composed time's spaces."""
import json
import subprocess
import time

import pytest

from conftest import needs_isolation, run, run_in_process

pytestmark = needs_isolation


@pytest.fixture
def segment(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 10000, "mode": 0o640, "touch": 10})
    h.key = unique.key
    return h, h.objects[0]["shmid"]


def _labels(text: str) -> list:
    return [line.split(":", 1)[0] for line in text.splitlines() if line and not line.startswith(" ")]


def _lsipc(shmid, *args) -> str:
    return subprocess.run(["lsipc", "-m", "-i", str(shmid), "-b", *args], capture_output=True, text=True,
                          check=True).stdout


# --- list -i and stat: one path, the output options honoured ---

@pytest.mark.parametrize("args", [["-e", "-o", "KEY,SIZE"], ["-r", "-o", "KEY,SIZE"], ["-e", "-o", "KEY,PERMS,NATTCH"]])
def test_id_forms_are_lsipc_i_forms(segment, args):
    h, shmid = segment
    ours = run("list", "-m", "-i", shmid, *args)
    assert ours.code == 0, ours
    theirs = _lsipc(shmid, *args, *(["-P"] if "PERMS" in args[-1] else []))
    assert ours.out == theirs
    assert run("stat", f"sysv:{shmid}", *args).out == ours.out


def test_id_with_a_form_is_the_row_of_list(segment):
    h, shmid = segment
    address = f"sysv:{shmid}"
    row = lambda out: next(l for l in out.splitlines() if l.split()[:1] == [address] or  # noqa: E731
                           l.startswith(f'ADDRESS="{address}"'))
    export = run("list", "-m", "-i", shmid, "-e").out
    assert export.count("\n") == 1 and export.rstrip("\n") == row(run("list", "-k", "sysv", "-e").out)
    raw = run("list", "-m", "-i", shmid, "-r").out.splitlines()
    listed = run("list", "-k", "sysv", "-r").out
    assert raw == [listed.splitlines()[0], row(listed)]
    bare = run("list", "-m", "-i", shmid, "--noheadings").out.splitlines()
    assert [line.split() for line in bare] == [row(run("list", "-k", "sysv", "-n").out).split()]
    newline = run("stat", address, "--newline", "-y", "-o", "ADDRESS,KEY").out
    assert newline == f'ADDRESS="{address}"\nKEY="0x{h.key:08x}"\n'
    for args in (["-e"], ["-r"], ["-n"], ["--newline"], ["--list"]):
        assert run("list", "-m", "-i", shmid, *args).out == run("list", "-i", address, *args).out


def test_id_fields_chosen_in_the_detail_view(segment):
    h, shmid = segment
    address = f"sysv:{shmid}"
    key = f"0x{h.key:08x}"
    chosen = run("list", "-m", "-i", shmid, "-o", "KEY,SIZE")
    assert chosen.code == 0 and chosen.out == f"key:  {key}\nsize: 10000\n", chosen
    assert run("stat", address, "-o", "KEY,SIZE").out == chosen.out
    assert _labels(run("list", "-i", shmid, "-t").out) == ["address", "shmid", "owner", "atime", "dtime", "ctime"]
    assert _labels(run("list", "-i", shmid, "-c", "-t").out) == [
        "address", "shmid", "owner", "atime", "dtime", "ctime", "perms", "cuid", "creator", "cgid", "cgroup", "uid",
        "gid", "group"]
    default = run("stat", address).out
    plus = run("stat", address, "-o", "+UID,MODE").out
    assert _labels(plus) == _labels(default.split("processes:")[0]) + ["uid", "mode", "processes"]
    assert plus.split("processes:")[1] == default.split("processes:")[1] and f"\n  {h.pid} " in plus
    assert "processes:" not in chosen.out  # PROCESSES not chosen: no table
    assert f"\n  {h.pid} " in run("stat", address, "-o", "SIZE,PROCESSES").out
    every = run("stat", address, "--output-all").out
    assert {"uid", "gid", "cuid", "cgid", "mode", "name", "container"} <= set(_labels(every))
    assert "perms:     0640 (rw-r-----)" in default
    octal = run("list", "-i", shmid, "-P").out
    assert "perms:     0640\n" in octal and octal.replace("perms:     0640\n", "") == \
        default.replace("perms:     0640 (rw-r-----)\n", "")  # -P: the rest as it was


def test_id_json_honours_o(segment):
    h, shmid = segment
    address = f"sysv:{shmid}"
    for command in (("list", "-J", "-i", shmid), ("stat", "-J", address)):
        assert list(run(*command, "-o", "KEY,SIZE").json()) == ["key", "key_hex", "size", "hidden_processes"]
        with_processes = run(*command, "-o", "SIZE,PROCESSES").json()
        assert list(with_processes) == ["size", "processes", "hidden_processes"]
        assert [p["pid"] for p in with_processes["processes"]] == [h.pid]
    assert list(run("list", "-J", "-i", shmid, "-t").json()) == [
        "address", "id", "owner", "atime", "dtime", "ctime", "hidden_processes"]
    whole = run("stat", "-J", address).json()
    assert list(run("stat", "-J", "--output-all", address).json()) == list(whole)
    lsipc = json.loads(_lsipc(shmid, "-J", "-o", "KEY,SIZE"))["sharedmemory"][0]
    ours = run("list", "-i", shmid, "-J", "-o", "KEY,SIZE").json()
    assert (ours["key_hex"], ours["size"]) == (lsipc["key"], int(lsipc["size"]))


def test_stat_help_has_the_options_its_text_names():
    text = run_in_process("stat", "--help").out
    for option in ("-o, --output", "--output-all", "-e, --export", "-r, --raw", "-n, --noheadings", "--newline"):
        assert option in text, option
    w = text.split("-W, --notruncate")[1].split("\n  -")[0]
    assert "attached processes" in " ".join(w.split())


# --- the presets combine (lsipc -c -t) ---

def test_presets_combine(segment):
    h, shmid = segment
    head = lambda *args: run("list", "-k", "sysv", *args).out.splitlines()[0].split()  # noqa: E731
    assert head("-c", "-t") == head("-t", "-c") == [
        "ADDRESS", "ID", "OWNER", "ATIME", "DTIME", "CTIME", "PERMS", "CUID", "CUSER", "CGID", "CGROUP", "UID", "GID",
        "GROUP"]
    every = head("-t", "-c", "-p")
    assert every[:6] == head("-t") and every[-3:] == ["CPID", "LPID", "PROCESSES"] and len(every) == len(set(every))
    assert head("-c", "-p", "-o", "+SIZE")[-1] == "SIZE"
    segs = run("list", "-k", "sysv", "--json", "-c", "-p").json()["segments"]
    assert segs and all(list(s) == ["address", "id", "perms", "cuid", "cuser", "cgid", "cgroup", "uid", "owner", "gid",
                                    "group", "cpid", "lpid", "processes"] for s in segs)


def test_stat_takes_the_presets_as_list_i_does(segment):
    """stat ADDRESS -t/-c/-p is list -i ID -t/-c/-p: the same fields, in every form."""
    h, shmid = segment
    for args in (["-t"], ["-c", "-p"], ["-t", "-J"], ["-p", "-e"], ["-c", "-o", "+SIZE"]):
        ours, theirs = run("stat", f"sysv:{shmid}", *args), run("list", "-i", shmid, *args)
        assert ours.code == 0 and (ours.out, ours.err) == (theirs.out, theirs.err), (args, ours, theirs)
    fields = run("stat", f"sysv:{shmid}", "-t", "-J").json()
    assert [k for k in fields if k != "hidden_processes"] == ["address", "id", "owner", "atime", "dtime", "ctime"]
    refused = run("stat", f"sysv:{shmid}", "-t", "-o", "SIZE")
    assert (refused.code, refused.err) == (2, "shmctl: stat: -t conflicts with -o SIZE (-o +SIZE adds columns to -t)\n")


# --- conflicting and ignored options: exit 2, one line ---

@pytest.mark.parametrize("args,message", [
    (("list", "--newline", "--raw"), "list: --raw conflicts with --newline (choose one output form)"),
    (("list", "--export", "--newline"), "list: --export conflicts with --newline (choose one output form)"),
    (("list", "-y"), "list: -y names the variables of --export/--newline (add -e or --newline)"),
    (("list", "-y", "-r"), "list: -y names the variables of --export/--newline (add -e or --newline)"),
    (("list", "--list-columns", "-r"), "list: --list-columns conflicts with -r (give it alone, or with --json)"),
    (("list", "--list-columns", "-o", "SIZE"), "list: --list-columns conflicts with -o (give it alone, or with --json)"),
    (("list", "--json", "--human"), "list: --json conflicts with --human (JSON has sizes in bytes and ISO 8601 times)"),
    (("list", "--json", "--time-format", "short"),
     "list: --json conflicts with --time-format (JSON has sizes in bytes and ISO 8601 times)"),
    (("stat", "--json", "--human", "posix:/absent"),
     "stat: --json conflicts with --human (JSON has sizes in bytes and ISO 8601 times)"),
    (("stat", "--json", "--time-format", "short", "posix:/absent"),
     "stat: --json conflicts with --time-format (JSON has sizes in bytes and ISO 8601 times)"),
    (("stat", "-e", "-r", "posix:/absent"), "stat: --raw conflicts with --export (choose one output form)"),
    (("stat", "-J", "-o", "SIZE", "-n", "posix:/absent"), "stat: --json conflicts with --noheadings (JSON has no other form)"),
    (("list", "-u", "--sort", "SIZE"), "list: -u conflicts with --sort (-u prints totals per kind, no segments to sort)"),
    (("list", "-c", "-t", "-o", "SIZE"), "list: -t/-c conflicts with -o SIZE (-o +SIZE adds columns to -t/-c)"),
    (("rm", "--all", "--orphans"), "rm: --all conflicts with --orphans (--all removes every segment, --orphans the orphans)"),
    (("rm", "-a", "sysv", "--orphans", "--yes"),
     "rm: --all conflicts with --orphans (--all removes every segment, --orphans the orphans)"),
])
def test_conflicting_options_are_one_line_usage_errors(args, message):
    r = run_in_process(*args)
    assert (r.code, r.out, r.err) == (2, "", f"shmctl: {message}\n")


def test_list_columns_as_json():
    from shmctl_cli.fields import COLUMNS
    r = run_in_process("list", "--list-columns", "--json")
    assert r.code == 0, r
    columns = json.loads(r.out)["columns"]
    assert [c["name"] for c in columns] == list(COLUMNS)
    assert columns[0] == {"name": "ADDRESS", "key": "address", "kinds": ["sysv", "posix", "mmap"],
                          "description": COLUMNS["ADDRESS"].help}
    assert json.loads(r.out)["aliases"]["USER"] == "OWNER"  # lsipc's names, as -o takes them
    plain = run_in_process("list", "--list-columns").out.splitlines()
    assert [line.split()[0] for line in plain][:len(COLUMNS)] == list(COLUMNS)


@pytest.mark.parametrize("args,hint", [
    (("list", "-o"), "Option '-o' requires an argument (see 'shmctl list --help')"),
    (("list", "--summary=x"), "Option '--summary' does not take a value (see 'shmctl list --help')"),
    (("stat", "-o"), "Option '-o' requires an argument (see 'shmctl stat --help')"),
    (("limits", "set", "--dry-run=1"), "Option '--dry-run' does not take a value (see 'shmctl limits set --help')"),
    (("--ns",), "Option '--ns' requires an argument (see 'shmctl --help')"),
])
def test_usage_hint_names_the_command(args, hint):
    r = run_in_process(*args)
    assert (r.code, r.err) == (2, f"shmctl: {hint}\n")


# --- a terminal shows a composed time's spaces; a pipe escapes them ---

def test_full_times_on_a_terminal_keep_their_spaces(segment):
    from test_terminal import on_terminal
    h, shmid = segment
    address = f"sysv:{shmid}"
    with open("/proc/sysvipc/shm") as f:
        head = f.readline().split()
        ctime = next(int(dict(zip(head, l.split()))["ctime"]) for l in f if l.split()[1] == str(shmid))
    tm = time.localtime(ctime)
    full = time.strftime("%a %b %e %H:%M:%S %Y ", tm) + tm.tm_zone
    screen = on_terminal("list", "-k", "sysv", "-o", "ADDRESS,CTIME", "--time-format", "full", columns=100)
    assert screen.code == 0, screen.err
    line = next(l for l in screen.lines if l.startswith(f"{address} "))
    assert line.split() == [address, *full.split()] and "\\x20" not in line
    assert f"{address} {full.replace(' ', chr(92) + 'x20')}" in run(
        "list", "-k", "sysv", "-r", "-o", "ADDRESS,CTIME", "--time-format", "full").out  # a pipe: awk's fields


def test_stat_json_with_o_validates(segment):
    pytest.importorskip("jsonschema")
    from test_json_contract import validate
    h, shmid = segment
    for args in (["-o", "KEY,SIZE"], ["-o", "SIZE,PROCESSES"], ["--output-all"], []):
        validate("stat", run("stat", "-J", f"sysv:{shmid}", *args).json())
    whole = run("stat", "-J", f"sysv:{shmid}").json()
    del whole["size"]
    with pytest.raises(AssertionError):  # the whole object (device is in it) still needs every field
        validate("stat", whole)


def test_a_column_named_twice_is_shown_once(segment):
    """-o parses alike for list and limits (fields.column_spec): each column once, `+` or not."""
    for spec in ("+CPID,cpid", "SIZE,ADDRESS,SIZE", "+UID,USER,OWNER"):
        head = run("list", "-k", "sysv", "-o", spec).out.splitlines()[0].split()
        assert len(head) == len(set(head)), (spec, head)
    limits = run("limits", "-o", "NAME,name,VALUE").out.splitlines()[0].split()
    assert limits == ["NAME", "VALUE"]
