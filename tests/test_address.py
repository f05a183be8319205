import pytest
from hypothesis import given
from hypothesis import strategies as st

from shmctl_cli.address import Address, check_posix_name, parse_address, parse_key, printable
from shmctl_cli.errors import Exit, UsageError


@pytest.mark.parametrize("text,expected,canonical", [
    ("sysv:32769", Address("sysv", shmid=32769), "sysv:32769"),
    ("sysv:key=0x5eed0001", Address("sysv", key=0x5EED0001), "sysv:key=0x5eed0001"),
    ("sysv:key=1592590337", Address("sysv", key=0x5EED0001), "sysv:key=0x5eed0001"),
    ("sysv:key=-559038737", Address("sysv", key=0xDEADBEEF), "sysv:key=0xdeadbeef"),
    ("sysv:key=0o17", Address("sysv", key=15), "sysv:key=0x0000000f"),
    ("sysv:ftok=/etc/hosts,1", Address("sysv", ftok=("/etc/hosts", 1)), "sysv:ftok=/etc/hosts,1"),
    ("sysv:ftok=/a,b/c,A", Address("sysv", ftok=("/a,b/c", 65)), "sysv:ftok=/a,b/c,65"),
    ("posix:/db", Address("posix", name="db"), "posix:/db"),
    ("/db", Address("posix", name="db"), "posix:/db"),
    ("mmap:/var/lib/x.mdb", Address("mmap", path="/var/lib/x.mdb"), "mmap:/var/lib/x.mdb"),
    ("mmap:@620692", Address("mmap", inode=620692), "mmap:@620692"),
])
def test_parse_and_format(text, expected, canonical):
    addr = parse_address(text)
    assert addr == expected
    assert str(addr) == canonical
    assert parse_address(canonical) == addr


def test_new_addresses_only_where_allowed():
    assert parse_address("sysv", allow_new=True).is_new
    assert parse_address("sysv:key=0", allow_new=True).is_new
    for text in ("sysv", "sysv:key=0"):
        with pytest.raises(UsageError):
            parse_address(text)


@pytest.mark.parametrize("text,why", [
    ("shm:1", "unknown kind"), ("sysv:abc", "shmid"), ("sysv:-1", "shmid"), ("sysv:99999999999", "31-bit"),
    ("sysv:key=zz", "integer"), ("sysv:key=0x10000000000", "32 bits"), ("sysv:key=4294967296", "32 bits"),
    ("sysv:ftok=/etc", "PATH,PROJ"), ("sysv:ftok=/etc,2147483648", "C int"), ("sysv:ftok=/etc,x1", "integer"),
    ("posix:db", "starts with '/'"), ("posix:/", "empty"), ("/a/b", "'/'"), ("/..", "'..'"), ("/.", "'.'"),
    ("/" + "x" * 256, "NAME_MAX"), ("/a\0b", "NUL"), ("mmap:rel/path", "absolute"), ("mmap:@x", "inode"),
    ("mmap:", "needs an identity"), ("", "unknown kind"),
])
def test_malformed_addresses_are_usage_errors(text, why):
    with pytest.raises(UsageError) as exc:
        parse_address(text)
    assert exc.value.exit_code == Exit.USAGE
    assert why in str(exc.value)


def test_a_key_is_never_wrapped():
    # c_int would turn 2**40 into 0 = IPC_PRIVATE and create a new private segment
    with pytest.raises(UsageError):
        parse_key(str(1 << 40))
    with pytest.raises(UsageError):
        parse_key(str(-(1 << 31) - 1))


@given(st.integers(min_value=1, max_value=0xFFFFFFFF))
def test_keys_round_trip(key):
    addr = parse_address(f"sysv:key={key:#x}")
    assert addr.key == key and parse_address(str(addr)) == addr


@given(st.integers(min_value=-(1 << 31), max_value=-1))
def test_signed_keys_as_proc_prints_them(key):
    assert parse_key(str(key)) == key & 0xFFFFFFFF


@given(st.text(alphabet=st.characters(blacklist_characters="/\0", blacklist_categories=("Cs",)),
               min_size=1, max_size=60).filter(lambda s: s not in (".", "..")))
def test_posix_names_round_trip(name):
    assert check_posix_name("/" + name) == name
    # a backslash starts an escape (\xHH, as every output prints a byte): the printed form is
    # the one that always comes back; a name without one is read as it is
    assert parse_address(f"posix:/{printable(name)}").name == name
    if "\\" not in name:
        assert parse_address(f"posix:/{name}").name == name
