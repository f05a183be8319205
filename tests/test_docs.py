"""man/, completions/ and README.md's generated blocks are generated (tools/docgen.py) from the
click tree, errors.Exit and address.FORMS, and must be in sync with them."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys

import click
import pytest

from conftest import HERE, run_in_process

ROOT = os.path.dirname(HERE)


def _docgen():
    """tools/docgen.py, a development tool outside the installed package, loaded by its path."""
    spec = importlib.util.spec_from_file_location("docgen", os.path.join(ROOT, "tools", "docgen.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _without_source_date_epoch() -> dict:
    """The environment the checked-in files are generated in: they carry __release_date__, so a
    SOURCE_DATE_EPOCH that a reproducible build exports must not reach the comparison."""
    return {name: value for name, value in os.environ.items() if name != "SOURCE_DATE_EPOCH"}


def test_generated_files_are_in_sync():
    r = subprocess.run([sys.executable, os.path.join("tools", "docgen.py"), "--check"], capture_output=True,
                       text=True, cwd=ROOT, env=_without_source_date_epoch())
    assert r.returncode == 0, r.stderr


def test_the_docs_tests_hold_when_a_reproducible_build_sets_source_date_epoch():
    """Packagers export SOURCE_DATE_EPOCH for the whole build, tests included: the checked-in pages
    carry __release_date__ and the tests compare with that, whatever the environment says."""
    tests = ["test_generated_files_are_in_sync", "test_one_man_page_per_command_documents_every_option"]
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", os.path.join(HERE, "test_docs.py"),
                        "-k", " or ".join(tests)], capture_output=True, text=True, cwd=ROOT, timeout=120,
                       env=dict(os.environ, SOURCE_DATE_EPOCH="1700000000"))
    assert r.returncode == 0 and "2 passed" in r.stdout, r.stdout + r.stderr


def test_docgen_is_not_installed_with_the_package():
    assert not os.path.exists(os.path.join(ROOT, "shmctl_cli", "docgen.py"))
    assert importlib.util.find_spec("shmctl_cli.docgen") is None


def _page(name):
    return open(os.path.join(ROOT, "man", f"{name}.1")).read()


def test_one_man_page_per_command_documents_every_option(monkeypatch):
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)  # the checked-in pages: __release_date__
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
            for part in docgen.example_lines(line):
                assert docgen._roff(part) in page, (name, line)
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
        for name in os.listdir(os.path.join(ROOT, "schema")):
            assert archive.read(data[f"shmctl/schema/{name}"]).decode() == open(os.path.join(ROOT, "schema", name)).read()


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


# --- what a reader meets: whatis lines, pages at 80 columns, synopses as --help has them ---------------

# a short description cut off mid-phrase ends like this
_DANGLING = re.compile(r"(,|;|:|\(|\b(and|or|of|the|a|an|to|with|in|for|by|as|but|nor|from|at))$", re.I)


def _name_line(page: str) -> tuple:
    """(name, description) of a page's NAME section, read as lexgrog and mandb read it."""
    body = page.split("\n.SH NAME\n", 1)[1].split("\n.SH ", 1)[0]
    text = " ".join(line for line in body.splitlines() if not line.startswith("."))
    name, description = text.split(" \\- ", 1)
    return name.replace("\\-", "-"), description.replace("\\-", "-")


@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "man"))))
def test_every_name_line_is_a_whole_short_description(name):
    docgen = _docgen()
    page_name, description = _name_line(_page(name[:-2]))
    assert page_name == name[:-2]
    assert 10 <= len(description) <= docgen.WHATIS_MAX, description
    assert not _DANGLING.search(description) and not description.endswith((".", "...", "…")), description
    assert description.count("(") == description.count(")") and description.count("`") % 2 == 0, description
    if shutil.which("lexgrog"):
        r = subprocess.run(["lexgrog", os.path.join(ROOT, "man", name)], capture_output=True, text=True)
        assert r.stdout.strip().endswith(f'"{page_name} - {description}"'), r.stdout


def test_a_first_sentence_too_long_for_a_whatis_line_stops_docgen_rather_than_being_cut():
    docgen = _docgen()
    long_one = click.Command("x", help="Show the limits: " + ", ".join(["SHMMAX"] * 12) + ". More.")
    with pytest.raises(SystemExit, match="set short_help="):
        docgen.short("x", long_one)
    assert docgen.short("x", click.Command("x", help="Copy bytes out, exactly. Then more.")) == "Copy bytes out, exactly"
    assert docgen.short("x", click.Command("x", help=long_one.help, short_help="Show the limits.")) == "Show the limits"


def test_the_command_list_of_help_shows_every_description_whole():
    for line in run_in_process("--help").out.split("Commands:\n", 1)[1].split("\n\n", 1)[0].splitlines():
        assert not line.rstrip().endswith("..."), line


def _render(name: str, width: int = 80) -> subprocess.CompletedProcess:
    return subprocess.run(["man", "-l", os.path.join(ROOT, "man", name)], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH=str(width), MAN_KEEP_FORMATTING="", LC_ALL="C.UTF-8"))


@pytest.mark.skipif(not shutil.which("man"), reason="no man")
@pytest.mark.parametrize("name", sorted(os.listdir(os.path.join(ROOT, "man"))))
def test_every_page_fits_80_columns_and_breaks_no_name(name):
    """man at 80 columns: no line wider, no warning, nothing hyphenated (a page, option or file name
    broken as `shmctl-lim‐` / `its-hugepages(1)` is a name no one can type), every page named whole."""
    r = _render(name)
    assert r.returncode == 0 and r.stderr == "", r.stderr
    lines = r.stdout.splitlines()
    assert lines and not [line for line in lines if len(line) > 80]
    assert not [line for line in lines if line.rstrip().endswith("\u2010")]
    text = " ".join(r.stdout.split())
    see_also = text.split(" SEE ALSO ", 1)[1]
    for page in sorted(os.listdir(os.path.join(ROOT, "man"))):
        if page != name:
            assert f"{page[:-2]}(1)" in see_also, page


def _expected_synopsis(path: str) -> str:
    """--help's usage line of the command, with the global `--ns PID` before its words."""
    from shmctl_cli.cli import cli
    ctx = click.Context(cli, info_name="shmctl")
    for word in path.split():
        ctx = click.Context(ctx.command.get_command(ctx, word), info_name=word, parent=ctx)
    usage = ctx.command.get_usage(ctx).replace("Usage: ", "", 1)
    if path and path.split()[0] not in ("help", "completion"):
        usage = usage.replace("shmctl ", "shmctl [--ns PID] ", 1)
    return " ".join(usage.split())


@pytest.mark.skipif(not shutil.which("man"), reason="no man")
def test_every_synopsis_is_the_usage_line_of_help_with_the_global_ns():
    docgen = _docgen()
    for path in [""] + [p for p, _ in docgen.every_command()]:
        text = " ".join(_render(f"{docgen.page_name(path)}.1").stdout.split())
        synopsis = text.split(" SYNOPSIS ", 1)[1].split(" DESCRIPTION ", 1)[0]
        assert synopsis == _expected_synopsis(path), path
    assert _expected_synopsis("rm") == "shmctl [--ns PID] rm [OPTIONS] [ADDRESSES]..."


@pytest.mark.skipif(not shutil.which("man"), reason="no man")
def test_every_option_reads_as_help_shows_it_choices_spelled_out():
    """Names and value as in --help (`--user NAME|UID`, `--persist [FILE]`); a choice as its values,
    `-k, --kind sysv|posix|mmap`, never click's placeholder CHOICE."""
    docgen = _docgen()
    for path, command in docgen.every_command():
        page = re.sub(r"\|\s+", "|", " ".join(_render(f"{docgen.page_name(path)}.1").stdout.split()))
        assert "CHOICE" not in page, path
        ctx = docgen._context(path)
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden:
                names = param.get_help_record(ctx)[0]
                if isinstance(param.type, click.Choice):
                    names = names.replace("[", "").replace("]", "").replace("{", "").replace("}", "")
                assert f" {names} " in page, (path, names)
    assert " -k, --kind sysv|posix|mmap " in " ".join(_render("shmctl-list.1").stdout.split())


def test_the_sdist_carries_everything_its_tests_read(tmp_path):
    """An unpacked sdist runs its own tests: schema/ and contrib/ (read by the JSON and cleanup tests)
    and the rest of what tests open by path are in it, and its test suite collects without an error."""
    import tarfile
    backend = tmp_path / "backend"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(backend), "hatchling"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-c", "import sys; from hatchling.build import build_sdist; "
                        "print(build_sdist(sys.argv[1]))", str(tmp_path)], capture_output=True, text=True,
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(backend)), timeout=300)
    assert r.returncode == 0, r.stderr
    with tarfile.open(tmp_path / r.stdout.split()[-1]) as sdist:
        top = sdist.getnames()[0].split("/")[0]
        names = {name.split("/", 1)[1] for name in sdist.getnames() if "/" in name}
        if hasattr(tarfile, "data_filter"):  # Python 3.12+, and 3.9-3.11 security releases
            sdist.extractall(tmp_path, filter="data")
        else:
            sdist.extractall(tmp_path)
    for folder in ("schema", "contrib", "man", "completions", "tools", "bench"):
        for name in os.listdir(os.path.join(ROOT, folder)):
            if os.path.isfile(os.path.join(ROOT, folder, name)):
                assert f"{folder}/{name}" in names, f"{folder}/{name}"
    assert "README.md" in names and "pyproject.toml" in names
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "--collect-only", "-p", "no:cacheprovider"],
                       capture_output=True, text=True, cwd=tmp_path / top, timeout=300)
    assert r.returncode == 0 and " error" not in r.stdout.splitlines()[-1], r.stdout[-3000:] + r.stderr
