"""man/ and completions/ are generated from the click tree and must be in sync with it."""
import os
import shutil
import subprocess
import sys

import pytest

from conftest import HERE

ROOT = os.path.dirname(HERE)


def test_generated_files_are_in_sync():
    r = subprocess.run([sys.executable, "-m", "shmctl_cli.docgen", "--check"], capture_output=True, text=True,
                       cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_man_page_documents_every_command_and_option():
    from shmctl_cli.docgen import every_command
    page = open(os.path.join(ROOT, "man", "shmctl.1")).read()
    paths = [path for path, _ in every_command()]
    assert {"limits set", "limits hugepages", "limits recommend"} <= set(paths)
    for name, command in every_command():
        assert f".SS shmctl {name} " in page
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt.replace("-", "\\-") in page, (name, opt)
    assert ".SH EXIT STATUS" in page


@pytest.mark.skipif(not shutil.which("man"), reason="no man")
def test_man_page_renders():
    r = subprocess.run(["man", "-l", os.path.join(ROOT, "man", "shmctl.1")], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="100"))
    assert r.returncode == 0 and "EXIT STATUS" in r.stdout and "mmap:@INODE" in r.stdout


def complete(*words):
    script = f"""
source {os.path.join(ROOT, 'completions', 'shmctl.bash')}
COMP_WORDS=(shmctl {' '.join(words)}); COMP_CWORD={len(words)}
compopt() {{ :; }}
_shmctl; printf '%s\\n' "${{COMPREPLY[@]}}"
"""
    return subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True).stdout.split()


def test_bash_completion_works():
    assert {"list", "stat"} <= set(complete(""))
    assert "--kind" in complete("list", "--k")
    assert complete("list", "--kind", "") == ["sysv", "posix", "mmap"]
    assert "posix:" in complete("stat", "")
    assert complete("limits", "") == ["hugepages", "recommend", "set"] + complete("limits", "-")
    assert "shmmax=" in complete("limits", "set", "")
    assert "--count" in complete("limits", "hugepages", "--")
