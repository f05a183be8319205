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


def _page(name):
    return open(os.path.join(ROOT, "man", f"{name}.1")).read()


def test_one_man_page_per_command_documents_every_option():
    docgen = _docgen()
    paths = [path for path, _ in docgen.every_command()]
    assert {"limits set", "limits hugepages", "limits recommend", "help", "completion"} <= set(paths)
    pages = sorted(os.listdir(os.path.join(ROOT, "man")))
    assert pages == sorted(["shmctl.1"] + [f"shmctl-{p.replace(' ', '-')}.1" for p in paths])
    main = _page("shmctl")
    for path, command in docgen.every_command():
        name = docgen.page_name(path)
        page = _page(name)
        assert f"\\fB{docgen._roff(name)}\\fR(1)" in main
        assert page.startswith(f'.TH {name.upper()} 1 "{docgen.page_date()}" "shmctl ')
        for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "ENVIRONMENT", "FILES",
                        "EXAMPLES", "SEE ALSO"):
            assert f"\n.SH {section}\n" in page, (name, section)
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("-"):
                    assert opt.replace("-", "\\-") in page, (name, opt)
        for line, _ in docgen.EXAMPLES[path]:
            assert docgen._roff(line) in page, (name, line)
        assert ("\n.SH OUTPUT COLUMNS\n" in page) == (path in ("list", "stat"))
    for column in ("ADDRESS", "SIZE", "NATTCH", "OWNER"):
        assert f"\\fB{column}\\fR" in _page("shmctl-list")
    assert "shmctl\\fR(2)" in main and "man 1 shmctl" in main


def test_every_page_says_its_files_environment_and_relatives():
    page = _page("shmctl-stat")
    for path in ("/proc/sysvipc/shm", "/dev/shm", "/proc/PID/maps", "/proc/PID/map_files", "/proc/sys/kernel/shm*",
                 "/sys/kernel/mm/hugepages", "/etc/sysctl.d/60\\-shmctl.conf", "/run/shmctl"):
        assert f"\\fI{path}\\fR" in page, path
    for see in ("ipcs", "ipcrm", "ipcmk", "lsipc", "lsfd", "shmget", "shmctl", "shm_open", "mmap", "proc",
                "shmctl\\-list", "shmctl\\-limits\\-set"):
        assert f"\\fB{see}\\fR(" in page, see


def test_every_environment_variable_the_code_reads_is_documented():
    """Whatever the code reads from the environment (os.environ, environ.get) has a line."""
    docgen = _docgen()
    documented = {name for names, _ in docgen.ENVIRONMENT for name in names.split(", ")}
    read = set()
    for folder, _dirs, files in os.walk(os.path.join(ROOT, "shmctl_cli")):
        for file in files:
            if file.endswith(".py"):
                text = open(os.path.join(folder, file)).read()
                read |= set(re.findall(r"environ(?:\.get\(|\[)\s*\"([A-Z_]+)\"", text))
                read |= set(re.findall(r"\"([A-Z_]+)\" in os\.environ", text))
    assert {"SHMCTL_LOCK_DIR", "SHMCTL_LOCK_TIMEOUT", "SHMCTL_SYSCTL_DIR", "SHMCTL_DEBUG", "XDG_RUNTIME_DIR",
            "TMPDIR"} <= read
    assert read <= documented, read - documented
    assert {"NO_COLOR", "COLUMNS", "TZ"} <= documented


def test_page_date_is_source_date_epoch_or_the_release_date(monkeypatch):
    docgen = _docgen()
    from shmctl_cli import __release_date__
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert docgen.page_date() == __release_date__ and re.fullmatch(r"\d{4}-\d\d-\d\d", __release_date__)
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert docgen.page_date() == "2023-11-14"
    assert '"2023-11-14"' in docgen.command_page("stat", dict(docgen.every_command())["stat"]).splitlines()[0]


@pytest.mark.skipif(not shutil.which("groff"), reason="no groff (apt-get install groff-base)")
@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "man"))))
def test_groff_finds_nothing_to_warn_about(name):
    r = subprocess.run(["groff", "-man", "-ww", "-z", os.path.join(ROOT, "man", name)], capture_output=True,
                       text=True)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def test_pip_installs_the_man_pages_and_completions(tmp_path):
    """The wheel pip builds carries every page for share/man/man1 and each script where its shell
    looks (pip installs a wheel's .data/data/ under the prefix). Built, not installed: installing
    into a --prefix would uninstall the shmctl of this environment."""
    import zipfile
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), ROOT],
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    [wheel] = tmp_path.glob("shmctl-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        data = {name.split(".data/data/share/", 1)[1]: name for name in archive.namelist() if ".data/data/share/" in name}
        for name in os.listdir(os.path.join(ROOT, "man")):
            assert archive.read(data[f"man/man1/{name}"]).decode() == _page(name[:-2])
        installed = {"completions/shmctl.bash": "bash-completion/completions/shmctl",
                     "completions/_shmctl": "zsh/site-functions/_shmctl",
                     "completions/shmctl.fish": "fish/vendor_completions.d/shmctl.fish"}
        for source, target in installed.items():
            assert archive.read(data[target]).decode() == open(os.path.join(ROOT, source)).read()


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
def test_man_pages_render():
    for name, words in (("shmctl", ("EXIT STATUS", "mmap:@INODE", "shmctl-list(1)")),
                        ("shmctl-limits-set", ("EXAMPLES", "shmmax=32G", "ENVIRONMENT"))):
        r = subprocess.run(["man", "-l", os.path.join(ROOT, "man", f"{name}.1")], capture_output=True, text=True,
                           env=dict(os.environ, MANWIDTH="100"))
        assert r.returncode == 0 and all(w in r.stdout for w in words), r.stdout


def test_docgen_check_fails_on_a_stale_or_stray_file(tmp_path, monkeypatch):
    docgen = _docgen()
    monkeypatch.setattr(docgen, "ROOT", str(tmp_path))
    for folder in ("man", "completions"):
        (tmp_path / folder).mkdir()
    (tmp_path / "README.md").write_text(open(os.path.join(ROOT, "README.md")).read())
    monkeypatch.setattr(docgen, "generated", lambda: {"man/shmctl.1": lambda: "page\n"})
    assert docgen.main([]) == 0 and (tmp_path / "man" / "shmctl.1").read_text() == "page\n"
    (tmp_path / "man" / "shmctl-gone.1").write_text("old")
    assert docgen.main(["--check"]) == 1
    (tmp_path / "man" / "shmctl-gone.1").unlink()
    (tmp_path / "man" / "shmctl.1").write_text("edited by hand")
    assert docgen.main(["--check"]) == 1
