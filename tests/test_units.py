import pytest
from hypothesis import given
from hypothesis import strategies as st

from shmctl_cli.errors import Exit, UsageError
from shmctl_cli.units import (format_key, format_mode, format_size, format_time, mode_string, parse_duration,
                              parse_mode, parse_size, parse_size_note)


@pytest.mark.parametrize("text,expected", [
    ("4096", 4096), ("1", 1), ("64K", 65536), ("64k", 65536), ("1M", 1 << 20), ("2G", 2 << 30),
    ("1.5GiB", 3 << 29), ("1.5G", 3 << 29), ("1MiB", 1 << 20), ("1T", 1 << 40), ("0.5K", 512),
    ("8K", 8192), ("10B", 10), ("0", 0),
    ("0x1000", 4096), ("0X10", 16), ("0x10K", 16 << 10), ("0x1MiB", 1 << 20), ("0x1B", 27),  # ipcmk -M 0x1000
])
def test_parse_size(text, expected):
    assert parse_size(text) == expected


@pytest.mark.parametrize("text,expected", [("64kB", 64000), ("1MB", 1000000), ("2GB", 2 * 10 ** 9)])
def test_decimal_units_are_accepted_and_explained(text, expected):
    size, note = parse_size_note(text)
    assert size == expected
    assert note.startswith(f"{text} = {expected} bytes") and "decimal" in note
    binary = parse_size(text[:-1])
    assert f"for {binary}" in note


@pytest.mark.parametrize("text", ["", "abc", "-1", "1.3K", "0.1", "1X", "K", "1 2", "9E", "1e3", " 8K ", "8K\n",
                                  "8 K", "+8", "8_000", "0x", "0x1.8", "0x10KB", "0x_10", "0b101", "-0x10",
                                  "0x８", "0x8000000000000000"])
def test_parse_size_refuses(text):
    with pytest.raises(UsageError) as exc:
        parse_size(text)
    assert exc.value.exit_code == Exit.USAGE


@given(st.integers(min_value=0, max_value=(1 << 63) - 1))
def test_sizes_in_bytes_round_trip(n):
    assert parse_size(str(n)) == n
    assert parse_size(format_size(n, exact=True)) == n


@pytest.mark.parametrize("n,text", [(None, "-"), (0, "0B"), (10, "10B"), (1024, "1KiB"), (1536, "1.5KiB"),
                                    (1 << 20, "1MiB"), (3 << 29, "1.5GiB"), (4095, "4KiB")])
def test_format_size(n, text):
    assert format_size(n) == text


@pytest.mark.parametrize("text,seconds", [("30", 30), ("1.5s", 1.5), ("10m", 600), ("2h", 7200), ("250ms", 0.25),
                                          ("1d", 86400)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "-1", "5y", "s", " 5", "5\n", "5 s", "+5", "5_0", "٥"])
def test_parse_duration_refuses(text):
    with pytest.raises(UsageError):
        parse_duration(text)


def test_modes():
    assert parse_mode("0600") == 0o600 and parse_mode("644") == 0o644
    assert format_mode(0o600) == "0600" and mode_string(0o640) == "rw-r-----"
    for bad in ("0800", "abc", "7777", "-1", "+5", " 5", "5\n", "0o600", "6_00", "٦٠٠"):
        with pytest.raises(UsageError):
            parse_mode(bad)


def test_keys_and_times():
    assert format_key(0xDEADBEEF) == "0xdeadbeef" and format_key(1) == "0x00000001"
    assert format_time(0) is None
    assert format_time(1700000000).startswith("2023-11-")
    zoned = format_time(1700000000, iso_zone=True)
    assert zoned[-6] in "+-" and zoned[-3] == ":"
