"""util-linux habits (issue 11): the flags of ipcs, ipcrm, ipcmk and lsipc mean the same in
shmctl; checked against the real tools on the same segments."""
import os
import re
import subprocess
import time

import pytest

from conftest import ENV, SHMCTL, run, run_in_process


def _line(out: str, address: str) -> list:
    return next(l.split() for l in out.splitlines() if l.split() and l.split()[0] == address)


def _ipcs_row(args, shmid) -> list:
    """The row of ipcs -m [args] for shmid (the first column, the second in the plain form)."""
    out = subprocess.run(["ipcs", "-m", *args], capture_output=True, text=True, check=True).stdout
    at = 0 if args else 1
    return next(l.split() for l in out.splitlines() if len(l.split()) > at and l.split()[at] == str(shmid))


@pytest.fixture
def segment(hold, unique):
    h = hold({"kind": "sysv", "key": unique.key, "size": 10000, "mode": 0o640, "touch": 10})
    return h, h.objects[0]["shmid"]


def test_presets_are_ipcs_t_c_p(segment):
    h, shmid = segment
    addr = f"sysv:{shmid}"
    head = lambda args: run("list", "-m", *args).out.splitlines()[0].split()  # noqa: E731
    assert head(["-t"]) == ["ADDRESS", "ID", "OWNER", "ATIME", "DTIME", "CTIME"]
    assert head(["-c"]) == ["ADDRESS", "ID", "PERMS", "CUID", "CUSER", "CGID", "CGROUP", "UID", "OWNER", "GID", "GROUP"]
    assert head(["-p"]) == head(["--processes"]) == ["ADDRESS", "ID", "OWNER", "CPID", "LPID", "PROCESSES"]
    assert run("list", "-t").out.splitlines()[0].split()[-1] == "MTIME"  # files are listed: their mtime too

    # -c against ipcs -m -c: perms, creator and owner names
    ours = _line(run("list", "-m", "-c").out, addr)
    theirs = _ipcs_row(["-c"], shmid)  # shmid perms cuid(name) cgid(name) uid(name) gid(name)
    assert [ours[2].lstrip("0"), ours[4], ours[6], ours[8], ours[10]] == theirs[1:6]
    # -p against ipcs -m -p: owner, cpid, lpid
    ours = _line(run("list", "-m", "-p").out, addr)
    assert ours[2:5] == _ipcs_row(["-p"], shmid)[1:4]
    assert f"{h.pid}:" in ours[5]
    # -t against ipcs -m -t: the same times to the minute (ipcs: "Nov 24 00:51:06", local time)
    ours = _line(run("list", "-m", "-t").out, addr)
    theirs = _ipcs_row(["-t"], shmid)
    attached = time.strptime(ours[3][:16], "%Y-%m-%dT%H:%M")
    assert theirs[2:4] == [time.strftime("%b", attached), str(attached.tm_mday)]
    assert theirs[4][:5] == ours[3][11:16]
    assert ours[4] == "-" and theirs[5:7] == ["Not", "set"]


def test_id_is_ipcs_i_and_lsipc_i(segment):
    h, shmid = segment
    detail = run("list", "-i", str(shmid))
    assert detail.code == 0, detail
    assert detail.out == run("stat", f"sysv:{shmid}").out  # -i prints what stat prints
    assert run("list", "-i", f"sysv:{shmid}").out == detail.out  # any address too
    fields = dict(l.split(":", 1) for l in detail.out.splitlines() if ":" in l and not l.startswith(" "))
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    ipcs = subprocess.run(["ipcs", "-m", "-i", str(shmid)], capture_output=True, text=True, check=True).stdout
    values = dict(re.findall(r"(\w+)=(\S+)", ipcs))
    assert fields["shmid"] == str(shmid) and fields["size"] == values["bytes"] == "10000"
    assert fields["perms"].split()[0] == values["mode"] == "0640"
    assert fields["cpid"] == values["cpid"] and fields["lpid"] == values["lpid"]
    assert fields["nattch"] == values["nattch"] == "1"
    lsipc = subprocess.run(["lsipc", "-m", "-i", str(shmid)], capture_output=True, text=True, check=True).stdout
    theirs = {k.strip(): v.strip() for k, v in (l.split(":", 1) for l in lsipc.splitlines() if ":" in l)}
    assert fields["key"] == theirs["Key"] and fields["owner"].split()[0] == theirs["Owner"]
    assert fields["group"].split()[0] == theirs["Group name"]
    assert fields["creator"].split()[0] == theirs["Creator user"]
    assert fields["perms"].split()[1] == "(" + theirs["Permissions"] + ")"
    one_row = run("list", "-i", str(shmid), "--list")
    assert one_row.code == 0 and len(one_row.out.splitlines()) == 2 and one_row.out.split("\n")[1].startswith(f"sysv:{shmid} ")
    assert run_in_process("list", "-i", "²").code == 2
    assert run("list", "-i", "2147483000").code == 3


def test_export_is_eval_safe_and_reads_back(hold, unique, tmp_path):
    """A hostile POSIX name: `eval` of the export runs nothing, and $ADDRESS names the object."""
    canary = tmp_path / "pwned"
    name = f'{unique.name} "q" $(touch pwned) `touch pwned` a\nb\\c'
    h = hold({"kind": "posix", "name": name, "size": 4096})
    script = ('%s list -k posix -e -y -o ADDRESS,NAME,SIZE,USE_X 2>/dev/null; '
              '%s list -k posix -e -y -o ADDRESS,NAME,SIZE | while IFS= read -r line; do eval "$line"; '
              'printf "%%s\\n" "$ADDRESS"; done') % (" ".join(SHMCTL), " ".join(SHMCTL))
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, env=ENV, check=True,
                         cwd=tmp_path).stdout  # a command substitution that ran would make ./pwned
    assert not canary.exists()
    addresses = [a for a in out.splitlines() if unique.name in a]
    assert len(addresses) == 1
    found = run("stat", "--json", addresses[0])
    assert found.code == 0, found
    assert os.stat(f"/dev/shm/{name}").st_ino == found.json()["id"]
    raw = run("list", "-k", "posix", "-e", "-o", "ADDRESS,SIZE").out
    line = next(l for l in raw.splitlines() if unique.name in l)
    assert line.startswith('ADDRESS="posix:/') and '\\x22' in line and '\\x24' in line and '\\x60' in line
    assert "\n" not in line and line.endswith('SIZE="4096"')
    h.close()
    assert not canary.exists()


def test_shell_names_and_newline_form(hold, unique):
    hold({"kind": "sysv", "key": unique.key, "size": 4096})
    out = run("list", "-k", "sysv", "--newline", "-y", "-o", "ADDRESS,KEY,SIZE").out
    blocks = [b for b in out.split("\n\n") if f"0x{unique.key:08x}" in b]
    assert len(blocks) == 1
    lines = blocks[0].strip().splitlines()
    assert [l.split("=")[0] for l in lines] == ["ADDRESS", "KEY", "SIZE"]
    from shmctl_cli.render.export import shell_name
    assert shell_name("USE%") == "USE_PCT" and shell_name("A-B.C") == "A_B_C"


def test_limits_flags_and_list_l_g(segment):
    text = run("limits").out
    for flag in ("-l", "-g", "--limits", "--global"):
        same = run("list", flag)
        assert same.code == 0 and [l.split()[:1] for l in same.out.splitlines()] == \
            [l.split()[:1] for l in text.splitlines()]
    raw = run("limits", "-r").out.splitlines()
    assert raw[0] == "NAME VALUE USED USE% UNIT" and all("  " not in l for l in raw)
    assert run("list", "-l", "-r").out.splitlines()[0] == raw[0]
    bare = run("limits", "-n").out.splitlines()
    assert not any(l.startswith("NAME ") for l in bare) and bare[0].split()[0] == "shmmax"
    assert run("limits", "-J").json()["sysv"]["shmmni"]["used"] >= 1


def test_create_M_p_like_ipcmk():
    ours = run("create", "-M", "1M", "-p", "0640")
    assert ours.code == 0, ours
    shmid = int(ours.out.strip().split(":")[1])
    made = subprocess.run(["ipcmk", "-M", "1M", "-p", "0640"], capture_output=True, text=True, check=True).stdout
    theirs = int(made.split()[-1])
    try:
        rows = [_ipcs_row([], s) for s in (shmid, theirs)]
        assert rows[0][2:5] == rows[1][2:5] == ["root", "640", "1048576"]  # owner perms bytes
        again = run("create", "sysv", "-M", "64K", "--mode", "0600")
        assert again.code == 0
        assert run("rm", again.out.strip()).code == 0
        assert run_in_process("create", "sysv", "-M", "1M", "--size", "2M").code == 2
        assert run_in_process("create").code == 2
    finally:
        subprocess.run(["ipcrm", "-m", str(shmid), "-m", str(theirs)], check=True)


def test_rm_all_kind_verbose_and_bad_ids(hold, unique, cleanup_shm):
    names, _ = cleanup_shm
    made = run("create", f"sysv:key={unique.key:#x}", "--size", "4K").out.strip()
    posix = run("create", f"/{unique.name}", "--size", "4K").out.strip()
    names.append(unique.name)
    for bad in ("msg", "sem"):
        r = run_in_process("rm", f"--all={bad}", "--yes")
        assert r.code == 2 and "shared memory only" in r.err
    assert run_in_process("rm", "--all=bogus", "--yes").code == 2
    r = run("rm", "--all=shm", "--user", str(os.geteuid()), "--yes", "-v")
    assert r.code == 0, r
    assert made in r.out.split() and posix not in r.out  # shm is sysv only
    assert f"shmctl: removed {made} (sysv, " in r.err and "owner root)" in r.err
    assert posix in run("list", "-k", "posix").out
    r = run("rm", "-a", "posix", "--user", str(os.geteuid()), "--yes", "--force")
    assert r.code == 0 and posix in r.out.split(), r
    for bad in ("-1", "²", "١٢", "+1"):
        assert run_in_process("rm", "-m", bad).code == 2, bad


@pytest.mark.parametrize("args", [("rm", "--dry-run", "ADDR"), ("limits", "set", "--dry-run", "shmmni=4000"),
                                  ("limits", "hugepages"), ("limits", "recommend", "--for", "1G")])
def test_short_json_flag_wherever_json_is(segment, args):
    """-J is --json in every command that has --json (lsipc, lsfd: -J/--json)."""
    argv = [a.replace("ADDR", f"sysv:{segment[1]}") for a in args]
    short, long_ = run(*argv, "-J"), run(*argv, "--json")
    assert (short.code, short.out) == (long_.code, long_.out), (short, long_)
    assert long_.out.lstrip().startswith(("{", "["))
