"""Issue 11: every address shmctl prints, in any form, is accepted back verbatim and names the
same object. The objects are made through the os module (never through shmctl), with names of
hostile characters, so that shmctl's printer and parser are what is tested; each printed
address is handed back to `stat` and must reach the object of that exact name (its inode)."""
from __future__ import annotations

import contextlib
import json
import mmap
import os
import re
import shlex
import subprocess
import uuid

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import run, run_in_process
from test_terminal import on_terminal
from shmctl_cli.address import parse_address, printable
from shmctl_cli.render.export import quoted

# pieces a hostile name is made of: what a shell, a table, an escape or a terminal trips on
HOSTILE = [" ", "\t", "\n", "\\", "\\x20", "\\x5c", "\\x09", "\\x", "\\\\x41", '"', "'", "$", "`", "@", ":",
           ",", "=", "\udcff", "\udc80", "\u2028", "\u202e", "\u200b", "\x7f", "\x1b[31m", "é", "\u00a0", "a", "-"]
NAME_PIECES = st.lists(st.sampled_from(HOSTILE) | st.text(alphabet="abxz09 \\", min_size=1, max_size=3),
                       min_size=1, max_size=6).map("".join)


def _fine(name: str) -> bool:
    return "/" not in name and "\0" not in name and len(os.fsencode(name)) < 200


def _make_posix(name: str) -> int:
    fd = os.open(os.path.join("/dev/shm", name), os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        os.ftruncate(fd, 4096)
        return os.fstat(fd).st_ino
    finally:
        os.close(fd)


@contextlib.contextmanager
def posix_objects(names):
    """{name: inode} of new /dev/shm objects, unlinked afterwards."""
    made = {}
    try:
        for name in names:
            made[name] = _make_posix(name)
        yield made
    finally:
        for name in made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join("/dev/shm", name))


@contextlib.contextmanager
def mapped_files(directory, names):
    """{path: inode} of files on a tmpfs, each mapped MAP_SHARED by this process (an mmap segment)."""
    maps, made = [], {}
    try:
        for name in names:
            path = os.path.join(str(directory), name)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            made[path] = os.fstat(fd).st_ino
            os.ftruncate(fd, 4096)
            maps.append(mmap.mmap(fd, 4096, mmap.MAP_SHARED))
            os.close(fd)
        yield made
    finally:
        for m in maps:
            m.close()
        for path in made:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)


def printed_addresses(token: str, kinds=("posix", "mmap")) -> dict:
    """Every form `list` prints each of our objects' address in: {form: [address, ...]}."""
    kind_args = [a for k in kinds for a in ("-k", k)]
    forms = {}
    data = run("list", *kind_args, "--json").json()
    forms["json"] = [s["address"] for s in data["segments"] if token in s["address"]]
    raw = run("list", *kind_args, "--raw", "-o", "ADDRESS")
    forms["raw"] = [line for line in raw.out.splitlines() if token in line]
    plain = run("list", *kind_args, "-o", "ADDRESS,SIZE")  # a pipe: aligned plain text
    forms["plain"] = [line.split()[0] for line in plain.out.splitlines() if token in line]
    screen = on_terminal("list", *kind_args, "-o", "ADDRESS,SIZE", columns=400)  # the table a person sees
    assert screen.code == 0, screen.err
    forms["terminal"] = [line.split()[0] for line in screen.lines if token in line]
    export = run("list", *kind_args, "-e", "-o", "ADDRESS")  # `eval` of a line gives ADDRESS
    assert export.code == 0, export
    forms["export"] = [_eval_export(line) for line in export.out.splitlines() if token in line]
    for form, addresses in forms.items():
        assert all(token in a for a in addresses), (form, addresses)
    return forms


def _eval_export(line: str) -> str:
    """What `eval "$line"; printf %s "$ADDRESS"` gives: the shell reads the quotes."""
    out = subprocess.run(["sh", "-c", f'eval "$1"; printf %s "$ADDRESS"', "sh", line], capture_output=True,
                         check=True)
    return os.fsdecode(out.stdout)


def reached(address: str) -> dict:
    """stat --json of the address, run as the shell would pass it (bytes as os.fsencode)."""
    result = run_in_process("stat", "--json", os.fsencode(address))
    assert result.code == 0, (address, result)
    return json.loads(result.out)


def check_all_forms(token: str, inodes_by_name: dict, name_of) -> None:
    """Each printed address of each form reaches the object whose name it prints."""
    forms = printed_addresses(token)
    for form, addresses in forms.items():
        assert len(addresses) == len(inodes_by_name), (form, addresses, inodes_by_name)
        for address in addresses:
            parsed = parse_address(address)
            target = name_of(parsed)
            assert target in inodes_by_name, (form, address, target)
            assert reached(address)["id"] == inodes_by_name[target], (form, address)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAME_PIECES, min_size=1, max_size=4, unique=True))
def test_posix_addresses_read_back_in_every_form(names):
    token = f"rt{uuid.uuid4().hex[:8]}-"
    names = [token + n for n in names if _fine(token + n)]
    with posix_objects(names) as made:
        check_all_forms(token, made, lambda address: address.name)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(NAME_PIECES, min_size=1, max_size=3, unique=True))
def test_mmap_addresses_read_back_in_every_form(tmpfs, names):
    token = f"rt{uuid.uuid4().hex[:8]}-"
    names = [token + n for n in names if _fine(token + n)]
    with mapped_files(tmpfs, names) as made:
        forms = printed_addresses(token, kinds=("mmap",))
        for form, addresses in forms.items():
            assert sorted(parse_address(a).path for a in addresses) == sorted(made), (form, addresses)
            for address in addresses:
                assert reached(address)["id"] == made[parse_address(address).path], (form, address)


def test_escape_lookalikes_each_reach_their_own():
    r"""`a b` prints as posix:/a\x20b in a table; the object literally named `a\x20b` prints as
    posix:/a\x5cx20b. Both exist: each printed address reaches its own, in every form."""
    token = f"rt{uuid.uuid4().hex[:8]}-"
    names = [token + n for n in ("a b", "a\\x20b", "t\tb", "t\\x09b", "b\\", "b\\x5c", "b\\x5cx5c", "n\nb")]
    with posix_objects(names) as made:
        check_all_forms(token, made, lambda address: address.name)
        plain = printed_addresses(token)["plain"]
        assert f"posix:/{token}a\\x20b" in plain and f"posix:/{token}a\\x5cx20b" in plain


def test_stat_address_line_reads_back():
    token = f"rt{uuid.uuid4().hex[:8]}-"
    names = [token + n for n in ("sp ace", "tr ", "tab\t", "\udcfe", "q\"$`", "\u2028")]
    with posix_objects(names) as made:
        for name, inode in made.items():
            out = run("stat", f"posix:/{printable(name)}")
            assert out.code == 0, out
            line = next(li for li in out.out.splitlines() if li.startswith("address:"))
            address = re.match(r"address:[ ]+(.*)$", line)[1]
            assert parse_address(address).name == name
            assert reached(address)["id"] == inode


def test_create_and_rm_print_addresses_that_read_back():
    token = f"rt{uuid.uuid4().hex[:8]}-"
    for name in (token + "c b", token + "c\\x20b", token + "c\udcff\t", token + 'c"$`\u202e'):
        typed = f"posix:/{printable(name)}"
        created = run("create", typed, "--size", "4K")
        assert created.code == 0, created
        address = created.out.rstrip("\n")
        try:
            assert os.stat(os.path.join("/dev/shm", name)).st_ino == reached(address)["id"]
        finally:
            removed = run("rm", address)
        assert removed.code == 0, removed
        assert removed.out.rstrip("\n") == address
        assert not os.path.exists(os.path.join("/dev/shm", name))


def test_error_messages_name_the_object_readably():
    """A failure's message carries the address in the form that reads back (a missing
    object, and one still held open)."""
    token = f"rt{uuid.uuid4().hex[:8]}-"
    name = token + "e b\\x20\n"
    missing = run("stat", f"posix:/{printable(name)}")
    assert missing.code == 3
    shown = missing.err[len("shmctl: "):].split(": no such")[0]  # `: ` may be in a name; not in this one
    assert parse_address(shown).name == name
    with posix_objects([name]) as made:
        fd = os.open(os.path.join("/dev/shm", name), os.O_RDONLY)
        try:
            refused = run("rm", f"posix:/{printable(name)}")
        finally:
            os.close(fd)
        assert refused.code == 5, refused
        shown = re.search(r"(posix:/.*?): ", refused.err)[1]
        assert reached(shown)["id"] == made[name], refused.err


def test_export_quoting_keeps_the_shell_out_and_reads_back():
    r"""-e values sit in double quotes: `"`, `$` and a backquote are \xHH there, so eval runs
    nothing and the value is the printed address."""
    for text in ('posix:/a"b', "posix:/$(touch shmctl-pwned)", "posix:/`id`", "posix:/a\\x5cb", "posix:/\\x24HOME"):
        value = quoted(printable(text))
        assert not re.search(r'[^\\]"|\$|`', value[1:-1])
        evaluated = _eval_export(f"ADDRESS={value}")
        assert parse_address(evaluated) == parse_address(printable(text))
    assert not os.path.exists("shmctl-pwned")
    assert shlex.split(quoted("posix:/a b")) == ["posix:/a b"]
