"""`shmctl limits` and `list -l`/`list -g` output (issue 11): lsipc -g's habits (-o with +COL,
--output-all, -e, --newline, -r, -n, -J honouring -o, -b, --human) and its column names with
one meaning in every form; the namespace spelled one way per form; `limits recommend` and
`limits hugepages` fitted to a real terminal without a folded cell. Real /proc/sys values,
in the suite's private IPC namespace."""
import json
import os
import pathlib
import subprocess

import pytest

from conftest import ENV, SHMCTL, run, run_in_process
from test_terminal import WIDTHS, assert_fits, on_terminal
from shmctl_cli.units import format_size

SCHEMA = json.loads((pathlib.Path(__file__).resolve().parent.parent / "schema" / "limits.schema.json").read_text())
HUGEPAGES = os.path.isdir("/sys/kernel/mm/hugepages") and os.listdir("/sys/kernel/mm/hugepages")
LSIPC_COLUMNS = ["RESOURCE", "DESCRIPTION", "LIMIT", "USED", "USE%"]


def validate(data) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def proc_sys(name):
    with open(f"/proc/sys/kernel/{name}") as f:
        return int(f.read())


def ok(*args, **kwargs):
    r = run(*args, **kwargs)
    assert r.code == 0, r
    return r


def lsipc(*args) -> str:
    return subprocess.run(["lsipc", "-g", *args], capture_output=True, text=True, check=True).stdout


def ipc_inode() -> int:
    return os.stat("/proc/self/ns/ipc").st_ino


# --- gap 1: lsipc -g's options and columns ---

@pytest.mark.parametrize("command", [["limits"], ["list", "-g"], ["list", "-l"]])
def test_output_columns_are_lsipc_g_columns(command):
    ours = ok(*command, "-o", "RESOURCE,LIMIT").out.splitlines()
    assert ours[0].split() == ["RESOURCE", "LIMIT"]
    rows = dict(line.split() for line in ours[1:])
    theirs = dict(line.split() for line in lsipc("--bytes", "--noheadings", "-o", "RESOURCE,LIMIT").splitlines())
    for name in ("SHMMNI", "SHMALL", "SHMMAX", "SHMMIN"):  # the same names, the same limits
        assert rows[name] == theirs[name] == str({"SHMMIN": 1}.get(name) or proc_sys(name.lower()))
    assert rows["SHMEM"] == "-" and rows["PAGE_SIZE"] == "-"  # figures, not limits: LIMIT is '-'
    every = ok(*command, "-o", ",".join(LSIPC_COLUMNS)).out.splitlines()
    assert every[0].split() == LSIPC_COLUMNS
    shmmni = next(line for line in every if line.startswith("SHMMNI "))
    assert shmmni.split()[1] == "max\\x20SysV\\x20segments"  # a cell is one awk field, as in `list`
    plus = ok(*command, "-o", "+DESCRIPTION,LIMIT").out.splitlines()
    assert plus[0].split() == ["NAME", "VALUE", "USED", "USE%", "UNIT", "DESCRIPTION", "LIMIT"]
    assert ok(*command, "-o", "name").out.splitlines()[:2] == ["NAME", "shmmax"]  # any case


def test_export_newline_and_shell_names_eval_back():
    line = next(l for l in ok("list", "-g", "-e").out.splitlines() if l.startswith('NAME="shmmni"'))
    assert line == f'NAME="shmmni" VALUE="{proc_sys("shmmni")}" USED="{line.split(chr(34))[5]}" ' \
                   f'USE%="{line.split(chr(34))[7]}" UNIT="segments"'
    lsipc_keys = [pair.split("=")[0] for pair in lsipc("-e").splitlines()[0].split('" ')]
    ours = next(l for l in ok("limits", "-e", "-o", ",".join(LSIPC_COLUMNS)).out.splitlines() if "SHMMNI" in l)
    assert [pair.split("=")[0] for pair in ours.split('" ')] == lsipc_keys == LSIPC_COLUMNS
    assert 'DESCRIPTION="max SysV segments"' in ours
    script = ('eval "$(' + " ".join(SHMCTL) + ' list -g -e -y -o RESOURCE,LIMIT,USE% | grep SHMMNI)"; '
              'printf "%s %s %s\\n" "$RESOURCE" "$LIMIT" "$USE_PCT"')
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=ENV, check=True).stdout
    assert out.split()[:2] == ["SHMMNI", str(proc_sys("shmmni"))] and out.split()[2].endswith("%")
    blocks = ok("list", "-g", "--newline", "-o", "NAME,VALUE").out.split("\n\n")
    assert blocks[0] == f'NAME="shmmax"\nVALUE="{proc_sys("shmmax")}"'
    assert len(blocks) >= 21 and all(len(b.strip().splitlines()) == 2 for b in blocks)


def test_raw_noheadings_and_json_honour_o():
    raw = ok("list", "-g", "-r", "-o", "NAME,DESCRIPTION").out.splitlines()
    assert raw[0] == "NAME DESCRIPTION" and "shmmni max\\x20SysV\\x20segments" in raw
    bare = ok("limits", "-n", "-o", "NAME,VALUE").out.splitlines()
    assert bare[0].split() == ["shmmax", str(proc_sys("shmmax"))]
    data = ok("list", "-g", "-J", "-o", "RESOURCE,LIMIT,USE%").json()
    validate(data)
    assert set(data) == {"ipc_namespace", "limits"}  # no pools: none of their columns was asked
    rows = {r["resource"]: r for r in data["limits"]}
    assert rows["SHMMNI"] == {"resource": "SHMMNI", "limit": proc_sys("shmmni"),
                              "use_percent": rows["SHMMNI"]["use_percent"]}
    assert rows["SHMEM"]["limit"] is None and isinstance(rows["SHMMNI"]["use_percent"], float)
    everything = ok("limits", "-J", "--output-all").json()
    validate(everything)
    assert set(everything["limits"][0]) == {"name", "resource", "section", "value", "limit", "used", "use_percent",
                                           "unit", "description"}
    if HUGEPAGES:
        assert set(everything["pools"][0]) == {"size", "node", "total", "free", "reserved", "surplus", "overcommit",
                                              "default"}
        pools = ok("limits", "-J", "-o", "POOL,TOTAL").json()
        assert set(pools) == {"ipc_namespace", "pools"} and all(set(p) == {"size", "total"} for p in pools["pools"])
        plain = ok("limits", "-o", "POOL,FREE").out.splitlines()
        assert plain[0].split() == ["POOL", "FREE"] and len(plain) == 1 + len(pools["pools"])


def test_one_meaning_per_column_in_every_form():
    """VALUE, LIMIT, USED and USE% of each row say the same in plain, raw, export and JSON."""
    columns = "NAME,VALUE,LIMIT,USED,USE%,UNIT"
    plain = [line.split() for line in ok("limits", "-n", "-o", columns).out.splitlines() if line.strip()]
    raw = [line.split(" ") for line in ok("limits", "-r", "-n", "-o", columns).out.splitlines() if line.strip()]
    export = [[pair.split("=", 1)[1].strip('"') for pair in line.split(" ")]
              for line in ok("limits", "-e", "-o", columns).out.splitlines()]
    rows = ok("limits", "-J", "-o", columns).json()["limits"]
    as_text = [[r["name"], *("-" if r[k] is None else str(r[k]) for k in ("value", "limit", "used")),
                "-" if r["use_percent"] is None else f"{r['use_percent']:.2f}%", r["unit"]] for r in rows]
    stable = lambda table: [r for r in table if r[0] not in ("shmem", "dev_shm", "dev_shm_committed",  # noqa: E731
                                                              "dev_shm_inodes", "dev_shm_promised")]  # move
    assert stable(plain) == stable(raw) == stable(export) == stable(as_text)
    shmmax = next(r for r in rows if r["name"] == "shmmax")
    assert shmmax["value"] == shmmax["limit"] == proc_sys("shmmax")


def test_list_columns_lists_both_tables():
    out = ok("limits", "--list-columns").out
    names = [line.split()[0] for line in out.splitlines()]
    assert names[:9] == ["NAME", "RESOURCE", "SECTION", "VALUE", "LIMIT", "USED", "USE%", "UNIT", "DESCRIPTION"]
    assert names[9:] == ["POOL", "NODE", "TOTAL", "FREE", "RSVD", "SURP", "OVERCOMMIT", "DEFAULT"]


@pytest.mark.parametrize("args, message", [
    (["list", "-g", "--time-format", "iso"],
     "shmctl: list: -l/-g conflicts with --time-format (the limits show no times: drop --time-format)\n"),
    (["list", "-l", "-P"], "shmctl: list: -l/-g conflicts with -P (the limits show no permissions: drop -P)\n"),
    (["list", "-g", "--numeric-ids"],
     "shmctl: list: -l/-g conflicts with --numeric-ids (the limits show no user or group names: drop --numeric-ids)\n"),
    (["limits", "-o", "SIZE"], "shmctl: unknown column 'SIZE' (columns: NAME,RESOURCE,SECTION,VALUE,LIMIT,USED,USE%,"
                               "UNIT,DESCRIPTION,POOL,NODE,TOTAL,FREE,RSVD,SURP,OVERCOMMIT,DEFAULT)\n"),
    (["limits", "-o", ","], "shmctl: invalid -o ',': no column named (e.g. -o NAME,VALUE)\n"),
    (["limits", "--output-all", "-o", "NAME"],
     "shmctl: limits: --output-all conflicts with -o (-o +COLS adds columns to the defaults)\n"),
    (["limits", "-A", "-o", "NAME"], "shmctl: limits: -A conflicts with -o (-A adds tables of its own columns: drop one)\n"),
    (["list", "-g", "-A", "-e"], "shmctl: list: -A conflicts with --export (-A adds tables of its own columns: drop one)\n"),
    (["limits", "-r", "-e"], "shmctl: limits: --raw conflicts with --export (choose one output form)\n"),
    (["limits", "-J", "--newline"], "shmctl: limits: --json conflicts with --newline (JSON has no other form)\n"),
    (["list", "-g", "-J", "--human"],
     "shmctl: list: --json conflicts with --human (JSON has sizes in bytes and ISO 8601 times)\n"),
    (["limits", "-y"], "shmctl: limits: -y names the variables of --export/--newline (add -e or --newline)\n"),
])
def test_meaningless_and_conflicting_options_are_usage_errors(args, message):
    r = run_in_process(*args)
    assert (r.code, r.out, r.err) == (2, "", message)


def test_notruncate_is_accepted_and_keeps_cells_whole():
    assert ok("list", "-g", "-W").out == ok("limits").out  # a pipe: nothing is cut anyway
    screen = on_terminal("list", "-g", "-W", columns=60)
    assert screen.code == 0 and "…" not in screen.text and "max segment size; used: the largest" in screen.text


# --- gap 2: --human through list -l ---

def test_human_sizes_through_list_l_on_a_pipe():
    for command in (["list", "-l"], ["list", "-g"], ["limits"]):
        rows = {l.split()[0]: l.split() for l in ok(*command, "--human").out.splitlines() if l.strip()}
        assert rows["shmmax"][1] == format_size(proc_sys("shmmax"))  # 16EiB: the kernel's default
        assert rows["page_size"][1] == format_size(os.sysconf("SC_PAGE_SIZE"))
        assert rows["shmmni"][1] == str(proc_sys("shmmni"))  # a count stays a count
    exact = {l.split()[0]: l.split() for l in ok("list", "-l", "--human", "-b").out.splitlines() if l.strip()}
    assert exact["shmmax"][1] == str(proc_sys("shmmax"))  # -b wins


# --- gap 4: the namespace, one spelling per form ---

def test_namespace_is_a_number_in_json_and_ipc_inode_in_text():
    inode = ipc_inode()
    for command in (["limits"], ["list", "-l"]):
        data = ok(*command, "--json").json()
        assert data["ipc_namespace"] == inode and isinstance(data["ipc_namespace"], int)
        validate(data)
    listed = ok("list", "--json", "-o", "ADDRESS,NAMESPACE", "-k", "sysv").json()
    assert all(s["namespace"] == inode for s in listed["segments"])  # the same number as list's
    assert ok("limits", "-J", "-o", "NAME").json()["ipc_namespace"] == inode
    everywhere = ok("limits", "--json", "-A").json()
    validate(everywhere)
    own = next(n for n in everywhere["namespaces"] if n["type"] == "ipc" and n["home"])
    assert own["namespace"] == inode
    text = ok("limits", "-A").out
    assert f"ipc:{inode} " in text and "ipc:[" not in text
    screen = on_terminal("limits", columns=100)
    assert f"SysV limits (IPC namespace ipc:{inode})" in screen.text and "ipc:[" not in screen.text


# --- gap 3: recommend (and hugepages) fitted to the terminal ---

def _table(screen, names):
    """The rows of the one table on the screen: the header, the rule, then exactly one line a
    row, each starting with its whole NAME; nothing more before the blank line or the end."""
    head = next(i for i, line in enumerate(screen.lines) if line.startswith("NAME "))
    assert screen.lines[head + 1].startswith("─")
    rows = screen.lines[head + 2:head + 2 + len(names)]
    assert [line.split(" ", 1)[0] for line in rows] == names, screen.text
    after = screen.lines[head + 2 + len(names):]
    assert not after or after[0] == "", screen.text  # no continuation line: no cell folded
    return screen.lines[head].split(), rows


@pytest.mark.parametrize("columns", WIDTHS)
@pytest.mark.parametrize("extra", [[], ["--bytes"], ["--hugepages"]])
def test_recommend_fits_and_never_folds(columns, extra):
    if extra == ["--hugepages"] and not HUGEPAGES:
        pytest.skip("no huge page pools")
    args = ["limits", "recommend", "--for", "1G", *extra]
    names = [item["name"] for item in ok(*args, "--json").json()["items"]]
    screen = on_terminal(*args, columns=columns)
    assert screen.code == 0, screen.err
    assert_fits(screen, columns)
    headings, rows = _table(screen, names)
    assert headings[0] == "NAME" and "STATUS" in headings and "NEEDED" in headings
    assert not any(line.split(" ", 1)[0].endswith("…") for line in rows)
    if columns == 200:
        assert headings[-1] == "WHAT" and "…" not in screen.text


def test_recommend_notruncate_gives_whole_cells():
    args = ["limits", "recommend", "--for", "1G"]
    names = [item["name"] for item in ok(*args, "--json").json()["items"]]
    screen = on_terminal(*args, "-W", columns=60)
    headings, rows = _table(screen, names)
    assert headings[-1] == "WHAT" and "…" not in screen.text
    assert any(line.rstrip().endswith("largest segment") for line in rows)
    assert max(len(line.rstrip()) for line in rows) > 60
    assert "…" in on_terminal(*args, columns=60).text


@pytest.mark.skipif(not HUGEPAGES, reason="no huge page pools")
def test_hugepages_fits_and_takes_notruncate():
    narrow = on_terminal("limits", "hugepages", columns=40)
    assert narrow.code == 0 and narrow.lines[0].split()[0] == "POOL"
    assert_fits(narrow, 40)
    assert "OVERCOMMIT" not in narrow.lines[0]  # dropped, the least important
    whole = on_terminal("limits", "hugepages", "-W", columns=40)
    assert whole.lines[0].split() == ["POOL", "NODE", "TOTAL", "FREE", "RSVD", "SURP", "OVERCOMMIT", "DEFAULT"]


def test_limits_o_on_a_terminal():
    screen = on_terminal("limits", "-o", "RESOURCE,LIMIT", columns=60)
    headers = [line.split() for line in screen.lines if line.startswith("RESOURCE")]
    assert headers and all(h == ["RESOURCE", "LIMIT"] for h in headers)
    assert any(line.split() == ["SHMMNI", str(proc_sys("shmmni"))] for line in screen.lines)


def test_o_completes_the_limits_columns():
    """-o of `limits` offers the limits' and pools' columns, after a comma and a `+` too."""
    def complete(line):
        r = run(env={"_SHMCTL_COMPLETE": "bash_complete", "COMP_WORDS": line, "COMP_CWORD": ""})
        assert r.code == 0 and r.err == "", r
        return r.out.split()
    assert complete("shmctl limits -o NAME,RES") == ["plain,NAME,RESOURCE"]
    assert complete("shmctl limits -o +OVER") == ["plain,+OVERCOMMIT"]
    assert complete("shmctl limits -o US") == ["plain,USED", "plain,USE%"]


def test_json_rows_of_the_pools_without_huge_pages():
    """-J -o POOL on a machine without huge page pools: `"pools": []`, still the schema's."""
    from shmctl_cli.limits.collect import collect
    from shmctl_cli.render import limits as render
    from shmctl_cli.system import System
    limits = collect(System())
    limits.pools = []
    data = render.limits_rows_dict(limits, render.choose_columns("POOL,TOTAL"))
    assert data == {"ipc_namespace": ipc_inode(), "pools": []}
    validate(data)
    assert render.limits_text(limits, render.Style(exact_sizes=True), render.choose_columns("POOL")) == ""
