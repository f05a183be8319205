"""Issue 8, names and bytes from the system are untrusted: an attacker (uid nobody, and a
second uid) names POSIX objects, mmap'ed files and memfds with terminal escapes, line
breaks, C1 controls, invalid UTF-8 and rich markup, and gives its process such a comm.
Whatever shmctl prints -- plain, raw, JSON, a rich table on a real terminal, `stat`, notes,
prompts and error messages -- holds none of those bytes, has one line per segment, and each
printed address leads back to the very object it names."""
import json
import os
import pty
import re
import select
import subprocess
import time
import uuid

import pytest

import kernel

from conftest import ENV, ROOT, SECOND_UID, SHMCTL, needs_isolation, python_as, run_in_process

pytestmark = [needs_isolation, pytest.mark.skipif(not ROOT, reason="needs root to play other users")]
SHM = b"/dev/shm/"

# what an attacker names its objects (each gets a unique prefix); '/' is the one byte a
# name cannot hold
EVIL = [
    b"esc\x1b[2J\x1b]0;pwned\x07",
    b"\rforged",
    b"a\nsysv:7 0x0 1 root 600",
    b"bel\x07",
    b"del\x7f",
    b"c1\xc2\x9b31m\xc2\x85",
    b"bad\xff\xfe",
    b"[bold red]x[blink]y",
    b"back\\slash",
    b"sp ace\ttab",
    b"lit\\x41",
    b"ls\xe2\x80\xa8ps\xe2\x80\xa9",
    b"rlo\xe2\x80\xae",
]
COMM = b"\x1b]0;pw,1:f\x07"  # 11 bytes: a title escape, BEL, and a forged `pid:comm` entry

ATTACKER = r"""
import ctypes, mmap, os, sys
held = []
base = int(os.environ.get("ATTACK_DIRFD", "-1"))  # a directory of ours, given as an open fd
for spec in sys.argv[1:]:
    if ":" not in spec:  # words only for the command line that `stat` shows
        continue
    what, path = spec.split(":", 1)
    path = bytes.fromhex(path)
    at = None if path.startswith(b"/") else base
    if what == "dir":
        os.mkdir(path, 0o755, dir_fd=at)
        continue
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o644, dir_fd=at)
    os.write(fd, path)  # its content is its own name: a read proves which object it reached
    if what in ("map", "memfd"):
        if what == "memfd":
            os.close(fd)
            os.unlink(path)
            fd = os.memfd_create(path.rsplit(b"/", 1)[1])
            os.write(fd, path)
        held.append(mmap.mmap(fd, len(path), mmap.MAP_SHARED))
        print("inode", os.fstat(fd).st_ino, path.hex(), flush=True)
    os.close(fd)
with open("/proc/self/comm", "wb") as f:
    f.write(bytes.fromhex(os.environ["EVIL_COMM"]))
print("ready", flush=True)
sys.stdin.read()
"""


class Attacker:
    """A process of another uid that plants entries (kept after it exits) and, for `map`
    and `memfd` specs, holds them mapped under an evil comm until stopped."""

    def __init__(self, uid, specs, argv_tail=(), base=None):
        """`base`: (path, fd) of a 1777 directory whose parents the attacker may not search:
        paths under it reach the attacker as relative to the fd."""
        prefix = base[0] + b"/" if base else None
        relative = [(w, p[len(prefix):] if prefix and p.startswith(prefix) else p) for w, p in specs]
        args = [f"{what}:{path.hex()}" for what, path in relative]
        env = dict(os.environ, EVIL_COMM=COMM.hex(), ATTACK_DIRFD=str(base[1]) if base else "-1")
        self.proc = subprocess.Popen([*python_as(uid), "-c", ATTACKER,
                                      *args, *argv_tail], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env, pass_fds=(base[1],) if base else ())
        self.inodes = {}
        for line in self.proc.stdout:
            words = line.split()
            if words == [b"ready"]:
                break
            path = bytes.fromhex(words[2].decode())
            self.inodes[path if path.startswith(b"/") else prefix + path] = int(words[1])
        else:
            raise RuntimeError(self.proc.stderr.read())
        self.pid = self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            self.proc.wait(30)


@pytest.fixture
def planted():
    """plant(uid, [(what, path)...]) -> Attacker; everything planted is removed afterwards
    (the test made it, through its attacker)."""
    attackers, paths = [], []

    def plant(uid, specs, argv_tail=(), base=None):
        paths.extend(path for what, path in specs)
        attacker = Attacker(uid, specs, argv_tail, base)
        attackers.append(attacker)
        return attacker

    yield plant
    for attacker in attackers:
        attacker.stop()
    for path in reversed(paths):
        try:
            (os.rmdir if os.path.isdir(path) and not os.path.islink(path) else os.unlink)(path)
        except FileNotFoundError:
            pass


@pytest.fixture
def public_dir(tmp_path):
    """(path, fd) of a sticky world-writable directory of this test: like /tmp, but ours."""
    path = tmp_path / "public"
    path.mkdir()
    os.chmod(path, 0o1777)
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    yield os.fsencode(path), fd
    os.close(fd)


@pytest.fixture
def token():
    return f"esc{uuid.uuid4().hex[:8]}-".encode()


def shmctl(*args, stdin=None):
    """(exit code, stdout, stderr), all as bytes: nothing decoded, nothing replaced."""
    proc = subprocess.run([*SHMCTL, *args], capture_output=True, env=ENV, input=stdin, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr


SGR = re.compile(rb"\x1b\[[0-9;]*m")  # rich's own colours on a terminal


def assert_clean(data: bytes, terminal: bool = False) -> str:
    """Valid UTF-8, and every line printable: no ESC, BEL, CR, TAB, DEL, C1, no line or
    paragraph separator, no format character. Returns the text."""
    if terminal:
        data = SGR.sub(b"", data.replace(b"\r\n", b"\n"))
    text = data.decode("utf-8")  # strict: an undecodable byte fails here
    for line in text.split("\n"):
        assert line.isprintable(), repr(line)
    return text


def one_line(err: bytes) -> str:
    text = assert_clean(err)
    assert text.endswith("\n") and text.count("\n") == 1, repr(text)
    assert text.startswith("shmctl: ")
    return text


def lines_with(text: str, token: bytes):
    return [line for line in text.splitlines() if token.decode() in line]


def reaches(address: str, path: bytes, content: bytes = None) -> None:
    """The printed address, given back to stat and read, names the object at `path`."""
    code, out, err = shmctl("stat", "--json", address)
    assert code == 0, (address, err)
    assert json.loads(out)["id"] == os.stat(path).st_ino, address
    code, out, err = shmctl("read", address)
    assert code == 0, (address, err)
    assert out == (content if content is not None else path), address


def evil_posix(token):
    return [SHM + token + name for name in EVIL]


def test_posix_names_plain_raw_and_round_trip(planted, token):
    from shmctl_cli.address import unescape
    paths = evil_posix(token)
    planted("nobody", [("file", p) for p in paths])
    for args in (("list", "-k", "posix"), ("list", "-k", "posix", "--raw"), ("list", "-k", "posix", "-n")):
        code, out, err = shmctl(*args)
        assert code == 0, err
        text = assert_clean(out)
        assert_clean(err)
        rows = lines_with(text, token)
        assert len(rows) == len(EVIL), rows  # none lost
        objects = [e for e in os.scandir(SHM) if e.is_file(follow_symlinks=False)]
        assert len(text.splitlines()) == len(objects) + ("-n" not in args), text  # no forged line
        columns = len(text.splitlines()[0].split()) if "-n" not in args else len(rows[0].split())
        assert all(len(row.split()) == columns for row in rows), rows  # no forged field either
        addresses = {row.split()[0] for row in rows}
        assert len(addresses) == len(EVIL)
    for row in rows:
        address = row.split()[0]
        name = SHM + os.fsencode(unescape(address[len("posix:/"):]))
        assert name in paths
        reaches(address, name)


def test_posix_names_json(planted, token):
    from shmctl_cli.address import unescape
    paths = evil_posix(token)
    planted(SECOND_UID, [("file", p) for p in paths])
    code, out, err = shmctl("list", "-k", "posix", "--json")
    assert code == 0, err
    assert_clean(out)
    assert out.isascii()
    mine = [s for s in json.loads(out)["segments"] if token.decode() in s["address"]]
    assert len(mine) == len(EVIL)
    for seg in mine:
        # the name is the printable form, \xHH for what is not; unescaped, the very bytes
        path = SHM + os.fsencode(unescape(seg["name"]))[1:]
        assert path in paths and seg["id"] == os.stat(path).st_ino
        assert seg["name"].isprintable() and seg["address"] == "posix:" + seg["name"]
        reaches(seg["address"], path)
    by_name = {os.fsencode(unescape(s["name"])): s for s in mine}
    assert by_name[b"/" + token + b"back\\slash"]["address"] == f"posix:/{token.decode()}back\\x5cslash"
    assert by_name[b"/" + token + b"bad\xff\xfe"]["address"] == f"posix:/{token.decode()}bad\\xff\\xfe"


def on_terminal(*args, columns=400) -> bytes:
    """shmctl with stdout and stderr on a real pseudo-terminal, every byte it wrote."""
    return kernel.on_terminal(*args, columns=columns, merge_stderr=True, raw=True)


def test_rich_table_and_stat_on_a_terminal(planted, token):
    from shmctl_cli.address import printable
    paths = evil_posix(token)
    planted("nobody", [("file", p) for p in paths])
    text = assert_clean(on_terminal("list", "-k", "posix"), terminal=True)
    rows = lines_with(text, token)
    assert len(rows) == len(EVIL), text
    assert "[bold\\x20red]x[blink]y" in text  # the markup is shown, not obeyed
    for path in paths[:4] + paths[7:8]:
        address = "posix:/" + printable(os.fsdecode(path[len(SHM):]))
        shown = assert_clean(on_terminal("stat", address), terminal=True)
        assert "address" in shown and address in shown, shown


def test_stat_text_of_each(planted, token):
    from shmctl_cli.address import printable
    paths = evil_posix(token)
    planted("nobody", [("file", p) for p in paths])
    code, reference, _ = shmctl("stat", "posix:/" + token.decode() + "bel\\x07")
    field_lines = len(reference.splitlines())
    for path in paths:
        address = "posix:/" + printable(os.fsdecode(path[len(SHM):]))
        code, out, err = shmctl("stat", address)
        assert code == 0, err
        text = assert_clean(out)
        assert len(text.splitlines()) == field_lines  # a name breaks no line
        assert f"address:   {address}" in text.splitlines()


def held_specs(token, public):
    directory = public + b"/" + token + b"d\x1b[2J\n"
    return directory, [
        ("dir", directory),
        ("map", directory + b"/f\nmmap:\x07 \xff"),
        ("map", directory + b"/lit\\012x"),  # maps shows it as it shows a newline
        ("map", directory + b"/lit\nx"),
        ("dir", directory + b"/[red]x["),
        ("map", directory + b"/[red]x[/]y"),  # a closing tag with nothing open: rich's MarkupError
        ("map", SHM + token + b"held\x1b[2J"),
        ("memfd", SHM + token + b"mfd\n\x1b]0;t\x07\xff"),
    ]


def test_mmap_paths_memfd_and_comm(planted, token, public_dir):
    from shmctl_cli.address import printable, unescape
    directory, specs = held_specs(token, public_dir[0])
    attacker = planted("nobody", specs, argv_tail=["\x1b[2J\nforged argv"], base=public_dir)
    code, out, err = shmctl("list", "-k", "mmap", "--output-all", "--json")
    assert code == 0, err
    assert_clean(out)
    mine = {s["id"]: s for s in json.loads(out)["segments"] if s["id"] in attacker.inodes.values()}
    files = [p for what, p in specs if what == "map" and not p.startswith(SHM + token + b"held")]
    for path in files:
        seg = mine[attacker.inodes[path]]
        assert seg["address"] == "mmap:" + printable(os.fsdecode(path))  # \012 read right both ways
        assert os.fsencode(unescape(seg["name"])) == path
        reaches(seg["address"], path, path[len(public_dir[0]) + 1:])  # what the attacker wrote: its own name
        assert [p["comm"] for p in seg["processes"]] == [printable(os.fsdecode(COMM))]
    memfd = mine[attacker.inodes[specs[-1][1]]]
    assert memfd["address"] == f"mmap:@{memfd['id']}" and "\\x0a" in memfd["name"]
    code, data, err = shmctl("read", memfd["address"])
    assert code == 0 and data == specs[-1][1], err
    for args in (("list", "-k", "mmap", "-p"), ("list", "-k", "mmap", "-p", "--raw")):
        code, out, err = shmctl(*args)
        text = assert_clean(out)
        rows = [r for r in text.splitlines() if f"{attacker.pid}:" in r]
        assert len(rows) == len(files) + 1, text  # the memfd too; no forged row
        comm = printable(os.fsdecode(COMM), True).replace(",", "\\x2c")
        assert all(r.split()[-1] == f"{attacker.pid}:{comm}" for r in rows), rows  # no forged process
    text = assert_clean(on_terminal("list", "-k", "mmap", "-p"), terminal=True)
    assert len([r for r in text.splitlines() if f"{attacker.pid}:" in r]) == len(files) + 1, text
    assert "/[red]x[/]y" in text  # shown, not obeyed
    for seg in list(mine.values())[:2]:
        code, out, err = shmctl("stat", seg["address"])
        assert code == 0, err
        text = assert_clean(out)
        assert f"{attacker.pid} " in text and "forged\\x20argv" not in text
        assert_clean(on_terminal("stat", seg["address"]), terminal=True)


def test_notes_and_refusals_name_the_attacker_escaped(planted, token, public_dir):
    from shmctl_cli.address import printable
    directory, specs = held_specs(token, public_dir[0])
    not_a_segment = SHM + token + b"dir\x1b[2J\nposix:"
    attacker = planted(SECOND_UID, [("dir", not_a_segment), *specs], base=public_dir)
    held = SHM + token + b"held\x1b[2J"
    address = "posix:/" + printable(os.fsdecode(held[len(SHM):]))
    code, out, err = shmctl("rm", address)
    assert code == 5 and out == b""
    text = one_line(err)
    assert f"{attacker.pid} ({printable(os.fsdecode(COMM))})" in text and address in text
    assert os.path.exists(held)
    code, out, err = shmctl("list", "-k", "posix")  # the planted directory is left out, and said so
    assert code == 0
    lines = assert_clean(err).splitlines()
    assert any("not segments, left out" in line and printable(os.fsdecode(not_a_segment[len(SHM):])) in line
               for line in lines), lines


def test_rm_prints_and_asks_in_the_printable_form(planted, token):
    from shmctl_cli.address import printable
    paths = [SHM + token + b"x\x1b[2J\n1", SHM + token + b"y\rsysv:1"]
    planted("nobody", [("file", p) for p in paths])
    addresses = ["posix:/" + printable(os.fsdecode(p[len(SHM):])) for p in paths]
    code, out, err = shmctl("rm", "--dry-run", *addresses)
    assert code == 0 and assert_clean(out).splitlines() == [f"would remove {a}" for a in addresses]
    # the prompt, on a real terminal: the person sees escaped names; "n" keeps them
    master, slave = pty.openpty()
    proc = subprocess.Popen([*SHMCTL, "rm", *addresses], stdin=slave, stdout=subprocess.PIPE, stderr=slave,
                            env=ENV)
    os.close(slave)
    seen, deadline = b"", time.monotonic() + 30
    while b"remove them?" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1)
        if ready:
            seen += os.read(master, 4096)
    os.write(master, b"n\n")
    out = proc.communicate(timeout=30)[0]
    os.close(master)
    prompt = assert_clean(seen.split(b"remove them?")[0], terminal=True)
    assert [a in prompt for a in addresses] == [True, True] and out == b""
    assert all(os.path.exists(p) for p in paths)
    code, out, err = shmctl("rm", "--yes", *addresses)
    assert code == 0 and assert_clean(out).splitlines() == addresses
    assert not any(os.path.exists(p) for p in paths)


@pytest.mark.parametrize("args, code", [
    (("read", "posix:/esc-missing\x1b[2J\nsysv:1 0 2"), 3),
    (("rm", "posix:/esc-missing\x1b[2J\r\x85"), 3),
    (("stat", "posix:/esc-missing\x1b]0;t\x07\r\x9b"), 3),
    (("stat", "mmap:/esc-missing/\x1b[2J\n\udcff"), 3),
    (("stat", "nokind:\x1b[2J\nx"), 2),
    (("stat", "posix:/a/\x1b[2J\nb"), 2),
    (("stat", "posix:/a\\x2fb\\x0a"), 2),  # an escaped '/' is still a '/'
    (("list", "--no-such\x1b[2J\n"), 2),
    (("list", "-k", "bogus\x1b[2J\n"), 2),
    (("list", "-o", "NAME,\x1b[2J\n"), 2),
    (("list", "--user", "nobody\x1b[2J\nx"), 2),
])
def test_error_messages_are_one_printable_line(args, code):
    r = run_in_process(*(os.fsencode(a) for a in args), binary=True)
    got, out, err = r.code, r.out, r.err_bytes
    assert got == code and out == b""
    text = one_line(err)
    assert "x1b" in text or "x0a" in text or "/" in args[-1], text  # click quotes with repr: \x5cx1b


def test_escaped_address_given_back_reaches_the_name_with_those_bytes(planted, token):
    """What the escape form means is bytes: `\\xHH` given by a person reaches the same
    object as the printed form, and a backslash not followed by xHH is itself."""
    path = SHM + token + b"\xff\x1b"
    literal = SHM + token + b"lit\\q"
    planted("nobody", [("file", path), ("file", literal)])
    reaches(f"posix:/{token.decode()}\\xFF\\x1B", path)
    reaches(f"/{token.decode()}lit\\q", literal)
    reaches(f"/{token.decode()}lit\\x5cq", literal)
