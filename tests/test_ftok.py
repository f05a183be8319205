"""ftok project ids as C programs use them (issue 10): any C int, glibc's key (only the low 8
bits of the project id count), a note where those bits are 0, exit 2 beyond a C int. The
expected keys come from a C program compiled here, calling glibc's ftok itself."""
import shutil
import subprocess

import pytest

from conftest import run, run_in_process

C_SOURCE = r"""
#include <stdio.h>
#include <stdlib.h>
#include <sys/ipc.h>
int main(int argc, char **argv) {
    key_t key = ftok(argv[1], (int)strtol(argv[2], NULL, 0));
    printf("%u\n", (unsigned)key);
    return key == (key_t)-1;
}
"""


@pytest.fixture(scope="module")
def c_ftok(tmp_path_factory):
    """ftok(PATH, PROJ) as a C program computes it (PROJ read with strtol, any base)."""
    if not shutil.which("gcc"):
        pytest.skip("needs gcc")
    where = tmp_path_factory.mktemp("ftok")
    (where / "ftok.c").write_text(C_SOURCE)
    subprocess.run(["gcc", "-O0", "-o", str(where / "ftok"), str(where / "ftok.c")], check=True)

    def key(path, proj) -> int:
        out = subprocess.run([str(where / "ftok"), str(path), str(proj)], capture_output=True, text=True, check=True)
        return int(out.stdout)
    return key


@pytest.fixture
def ftok_file(tmp_path):
    """A file of this test's own: its inode makes a key no other test uses."""
    path = tmp_path / "ftok-anchor"
    path.write_text("")
    return str(path)


@pytest.fixture
def segments():
    """Addresses created through shmctl, removed at teardown even after a failure."""
    made = []
    yield made
    for address in made:
        run("rm", address, "--force", "--yes")


def created(segments, *args) -> str:
    r = run("create", *args, "--size", "4096")
    assert r.code == 0, r
    segments.append(r.out.strip())
    return r.out.strip()


def ftok_lines(err: str) -> list:
    """The lines about ftok (other notes, on hidden processes say, may come too)."""
    return [line for line in err.splitlines() if "ftok" in line]


def key_of(address) -> int:
    r = run("stat", address, "--json")
    assert r.code == 0, r
    return r.json()["key"]


def test_the_c_program_uses_only_the_low_8_bits(c_ftok):
    assert c_ftok("/etc/passwd", 1234) == c_ftok("/etc/passwd", 0xD2)
    assert c_ftok("/etc/passwd", 1234) >> 24 == 0xD2


@pytest.mark.parametrize("proj, in_c", [("1234", "1234"), ("0xd2", "0xd2"), ("-1", "-1"), ("2147483647", "2147483647"),
                                        ("-2147483647", "-2147483647"), ("0x7fffff41", "0x7fffff41"),
                                        ("0o17", "017")])
def test_addressing_by_ftok_finds_the_key_a_c_program_made(c_ftok, ftok_file, segments, proj, in_c):
    key = c_ftok(ftok_file, in_c)
    address = created(segments, "sysv", "--key", hex(key))
    r = run("stat", f"sysv:ftok={ftok_file},{proj}", "--json")
    assert r.code == 0 and "ftok" not in r.err, r
    assert r.json()["address"] == address and r.json()["key"] == key


def test_c_octal_and_a_character_as_c_reads_them(c_ftok, ftok_file, segments):
    address = created(segments, "sysv", "--key", hex(c_ftok(ftok_file, "02322")))  # strtol: octal 1234
    assert run("stat", f"sysv:ftok={ftok_file},02322", "--json").json()["address"] == address
    assert run("stat", f"sysv:ftok={ftok_file},1234", "--json").json()["address"] == address
    other = created(segments, "sysv", "--key", hex(c_ftok(ftok_file, ord("A"))))
    assert run("stat", f"sysv:ftok={ftok_file},A", "--json").json()["address"] == other


@pytest.mark.parametrize("proj", ["1234", "-1", "0x141"])
def test_create_ftok_makes_the_key_a_c_program_computes(c_ftok, ftok_file, segments, proj):
    address = created(segments, "sysv", "--ftok", f"{ftok_file},{proj}")
    assert key_of(address) == c_ftok(ftok_file, proj)
    again = run("create", f"sysv:ftok={ftok_file},{int(proj, 0) + 256}", "--size", "4096")  # same low byte
    assert again.code == 5 and "exists already" in again.err, again


def test_create_ftok_and_the_address_form_agree(c_ftok, ftok_file, segments):
    address = created(segments, f"sysv:ftok={ftok_file},1234")
    assert key_of(address) == c_ftok(ftok_file, 1234)
    r = run("create", "sysv", "--ftok", f"{ftok_file},0xd2", "--size", "4096")  # the same key, low byte 0xd2
    assert r.code == 5 and "exists already" in r.err


def test_a_low_byte_of_0_is_taken_with_a_note(c_ftok, ftok_file, segments):
    r = run("create", "sysv", "--ftok", f"{ftok_file},256", "--size", "4096")
    assert r.code == 0, r
    segments.append(r.out.strip())
    assert ftok_lines(r.err) == ["shmctl: note: ftok project 256 has 0 in its low 8 bits, the only ones ftok uses: the key "
                     "depends on the file alone (POSIX leaves this unspecified)"]
    key = key_of(r.out.strip())
    assert key == c_ftok(ftok_file, 256) == c_ftok(ftok_file, 0) and key >> 24 == 0
    found = run("stat", f"sysv:ftok={ftok_file},0x300", "--json")  # any id with a low byte 0: the same key
    assert found.code == 0 and found.json()["address"] == r.out.strip()
    assert len(ftok_lines(found.err)) == 1
    assert ftok_lines(found.err)[0].startswith("shmctl: note: ftok project 768 has 0 in its low 8 bits")
    lowest = run("stat", f"sysv:ftok={ftok_file},-2147483648", "--json")  # INT_MIN: low byte 0 too
    assert lowest.json()["address"] == r.out.strip() and "ftok project -2147483648 has 0" in lowest.err


@pytest.mark.parametrize("proj", ["2147483648", "-2147483649", "0x100000000", "99999999999999999999"])
def test_beyond_a_c_int_is_a_usage_error(proj):
    for args in (("stat", f"sysv:ftok=/etc/passwd,{proj}"),
                 ("create", "sysv", "--ftok", f"/etc/passwd,{proj}", "--size", "4096", "--dry-run")):
        r = run_in_process(*args)
        assert r.code == 2 and r.err.count("\n") == 1, r
        assert r.err.startswith(f"shmctl: invalid ftok project '{proj}': ftok takes a C int")


@pytest.mark.parametrize("proj", ["", "abc", "1.5", "AB", " 5", "5\n", "+5", "5_000", "0x_10", "0b101", " ", "٥"])
def test_not_a_number_nor_a_character(proj):
    r = run_in_process("stat", f"sysv:ftok=/etc/passwd,{proj}")
    assert r.code == 2 and r.err.count("\n") == 1, r


def test_the_ctypes_binding_refuses_what_c_int_would_wrap():
    from shmctl_cli import syscalls
    from shmctl_cli.errors import UsageError
    with pytest.raises(UsageError):
        syscalls.ftok("/etc/passwd", 1 << 31)
    assert syscalls.ftok("/etc/passwd", 1234) == syscalls.ftok("/etc/passwd", 0xD2)


def test_a_key_of_0_would_be_ipc_private_and_is_refused():
    """ftok gives 0 only for a low byte 0 and a file whose device and inode low bits are 0
    too: no file here is guaranteed to be one, so the check is tested on its own."""
    from shmctl_cli.syscalls import check_ftok_key
    from shmctl_cli.errors import UsageError
    with pytest.raises(UsageError) as exc:
        check_ftok_key(0, "/x", 256)
    assert "IPC_PRIVATE" in str(exc.value)
    assert check_ftok_key(0x2E3, "/x", 256) == 0x2E3


def test_help_no_longer_says_1_to_255():
    r = run_in_process("--help")
    text = " ".join(r.out.split())
    assert "1-255" not in text and "PROJ (a C int, of which only the low 8 bits count, or a character)" in text
