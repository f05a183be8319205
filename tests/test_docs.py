"""man/, completions/ and README.md's generated blocks are generated (tools/docgen.py) from the
click tree, errors.Exit and address.FORMS, and must be in sync with them."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import HERE, run_in_process

ROOT = os.path.dirname(HERE)


def _docgen():
    """tools/docgen.py, a development tool outside the installed package, loaded by its path."""
    spec = importlib.util.spec_from_file_location("docgen", os.path.join(ROOT, "tools", "docgen.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_files_are_in_sync():
    r = subprocess.run([sys.executable, os.path.join("tools", "docgen.py"), "--check"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr


def test_docgen_is_not_installed_with_the_package():
    assert not os.path.exists(os.path.join(ROOT, "shmctl_cli", "docgen.py"))
    assert importlib.util.find_spec("shmctl_cli.docgen") is None


def test_man_page_documents_every_command_and_option():
    every_command = _docgen().every_command
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


def test_every_exit_code_and_address_form_is_in_help_man_and_readme():
    from shmctl_cli.address import FORMS
    from shmctl_cli.errors import Exit
    assert {int(code) for code in Exit} >= {0, 1, 2, 3, 4, 5, 6, 126, 127, 129, 130, 141, 143}
    out = run_in_process("--help").out
    help_text = " ".join(out.split())
    page = open(os.path.join(ROOT, "man", "shmctl.1")).read()
    readme = open(os.path.join(ROOT, "README.md")).read()
    for code in Exit:
        assert re.search(rf"^  {code.value} +\S", out, re.M), code
        assert " ".join(code.meaning.split()) in help_text, code
        assert f"\\fB{code.value}\\fR" in page, code
        assert f"| {code.value} | " in readme, code
    for form, meaning in FORMS:
        assert form in help_text and meaning in help_text
        assert f"\\fB{form}\\fR" in page
        assert f"| `{form}` | {meaning} |" in readme


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
