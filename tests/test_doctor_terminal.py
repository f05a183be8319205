"""shmctl doctor on a real terminal (a pty of 60, 80, 100 and 200 columns): its prose wrapped
at word boundaries with a hanging indent, nothing lost or cut (a size, a path, a command to
copy stays whole, the command on one line even past the width); on a pipe, one line per
finding, evidence and fix, as before. The finding is a real one: a tmpfs of 100 TiB mounted
at a long path of the test's own (tmpfs-overcommit)."""
from __future__ import annotations

import re

import pytest

from conftest import ISOLATED, ROOT, run
from test_terminal import WIDTHS, on_terminal

pytestmark = pytest.mark.skipif(not (ROOT and ISOLATED), reason="needs root in the session's own mount namespace")
INDENT = " " * 10


@pytest.fixture(scope="module")
def huge_tmpfs(tmp_path_factory):
    """A tmpfs promising 100 TiB, at a path longer than a narrow terminal."""
    import subprocess
    point = tmp_path_factory.mktemp("doctor") / "a-rather-long-directory-name-for-doctor" / "mounted-tmpfs-with-a-long-name"
    point.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=100T", "shmctl-test", str(point)], check=True)
    yield str(point)
    subprocess.run(["umount", "-l", str(point)], check=True)


@pytest.fixture(scope="module")
def on_a_pipe(huge_tmpfs):
    r = run("doctor", "--check", "tmpfs-overcommit")
    assert r.code == 8, r
    return r.out


def test_a_pipe_keeps_one_line_each(on_a_pipe, huge_tmpfs):
    lines = on_a_pipe.splitlines()
    assert lines[0].startswith("WARNING   tmpfs-overcommit: ") and "OOM killer cannot free tmpfs pages" in lines[0]
    assert any(line.startswith(f"{INDENT}{huge_tmpfs} (dev ") and line.endswith("(/proc/self/mountinfo)")
               for line in lines)
    fix = next(line for line in lines if line.startswith(f"{INDENT}fix: "))
    assert re.fullmatch(rf"{INDENT}fix: mount -o remount,size=[0-9]+[KMG] {re.escape(huge_tmpfs)}  "
                        r"\(and the same size= in /etc/fstab\)", fix), fix


@pytest.mark.parametrize("columns", WIDTHS)
def test_a_terminal_wraps_at_words_and_keeps_commands_whole(on_a_pipe, huge_tmpfs, columns):
    screen = on_terminal("doctor", "--check", "tmpfs-overcommit", columns=columns)
    assert screen.code == 8, screen.err
    # the same words in the same order: nothing lost, nothing broken inside a word
    assert screen.text.split() == on_a_pipe.split()
    command = re.search(r"fix: (.*?)  \(", on_a_pipe).group(1)
    fix = f"{INDENT}fix: {command}"
    assert any(line.startswith(fix) for line in screen.lines)  # the command to copy: one line, whole
    for line in screen.lines:
        if len(line) <= columns or line == fix:
            continue
        # longer than the terminal only for one piece that may not be cut: the long path
        assert line.strip() == huge_tmpfs, (columns, line)
    # a continuation hangs two columns in from the line it continues
    continued = [line for line in screen.lines if line.startswith(INDENT + "  ")]
    if columns < 100:
        assert continued and all(not line.startswith(INDENT + "   ") or "(and the same" in line for line in continued)
    if columns == 200:  # room enough: the pipe's lines
        assert screen.lines == on_a_pipe.splitlines()


def test_numbers_keep_their_units_and_quoted_words_stay_whole():
    """The renderer alone (pure): `2097152 bytes` never ends a line between number and unit, a
    short parenthesis stays whole, a quoted command word is never broken at its `, `."""
    from shmctl_cli.doctor import Report
    from shmctl_cli.doctor.findings import Finding
    from shmctl_cli.render.doctor import report_text
    finding = Finding("sysv-limits", "warning", "a segment of 2GiB exists but shmmax is 1GiB",
                      ["largest segment 2097152 bytes (dev 0:23) read from /proc/sysvipc/shm"],
                      "printf 'a, b: c' > /etc/x, then shmctl limits set shmmax=2097152 --persist  (or not)")
    report = Report([("sysv-limits", "warning")], [finding])
    for width in range(30, 90):
        text = report_text(report, width=width)
        assert text.split() == report_text(report).split()
        lines = text.splitlines()
        assert not any(line.endswith(" 2097152") or line.endswith("(dev") for line in lines), (width, text)
        assert any("printf 'a, b: c' > /etc/x," in line for line in lines), (width, text)
        assert any(line.strip().startswith("then shmctl limits set shmmax=2097152 --persist") or
                   "/etc/x, then shmctl limits set shmmax=2097152 --persist" in line for line in lines), (width, text)
