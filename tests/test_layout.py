"""The terminal layout's pure parts (render/layout.py), table-tested: cutting a cell to a
width never leaves half an escape or half a wide character."""
import pytest

from shmctl_cli.render.layout import ELLIPSIS, cut, text_width


@pytest.mark.parametrize("text, width, expected", [
    ("short", 8, "short"),
    ("exactly8", 8, "exactly8"),
    ("abcdefghij", 8, "abcdefg…"),
    ("26623:\\x1b]0;pw\\x07", 16, "26623:\\x1b]0;pw…"),  # an escape whole: kept
    ("abcdefgh\\x1bxyz", 11, "abcdefgh…"),  # `\x1` would be cut: the escape goes whole
    ("abcdefgh\\x1bxyz", 10, "abcdefgh…"),
    ("abcdefgh\\x1bxyz", 13, "abcdefgh\\x1b…"),
    ("a\\b\\x5c", 4, "a\\b…"),  # a backslash that starts no escape is a character
    ("éééééé", 4, "ééé…"),
    ("日本語日本語", 5, "日本…"),  # never half a wide character
])
def test_cut(text, width, expected):
    got = cut(text, width)
    assert got == expected
    assert text_width([got]) <= width and (got == text or got.endswith(ELLIPSIS))
