"""The command tree itself: version, help, entry points, platforms, error shape."""
import subprocess
import sys

import click
import pytest

from conftest import needs_isolation, run, run_in_process
from shmctl_cli import __version__
from shmctl_cli.cli import all_commands, cli, main


def test_version_and_module_entry():
    r = run("--version")
    assert (r.code, r.out) == (0, f"shmctl {__version__}\n")
    assert run("-V").out == r.out


def test_help_lists_exactly_the_commands_that_work():
    r = run_in_process("--help")
    assert r.code == 0 and "Exit codes" in r.out
    assert set(all_commands()) == {"list", "stat", "create", "attach", "read", "write", "rm", "limits", "metrics",
                                   "watch", "doctor", "help", "completion"}
    for name in all_commands():
        assert run_in_process(name, "--help").code == 0


def test_console_script_entry_point():
    from importlib.metadata import entry_points
    scripts = entry_points(group="console_scripts") if sys.version_info >= (3, 10) else \
        entry_points()["console_scripts"]
    found = [e for e in scripts if e.name == "shmctl"]
    if not found:
        pytest.skip("shmctl is not installed in this environment (only importable)")
    assert found[0].value == "shmctl_cli.cli:run"


def test_other_platforms_get_one_clear_line(monkeypatch, capsys):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert main(["list"]) == 1
    err = capsys.readouterr().err
    assert err == ("shmctl: this is darwin: shmctl works only on Linux (it reads /proc and calls Linux's SysV "
                   "and POSIX shared-memory syscalls)\n")


def test_usage_errors_are_one_line_exit_2():
    run = run_in_process
    r = run("list", "--no-such-option")
    assert r.code == 2 and r.err.startswith("shmctl: No such option") and "--no-such-option" in r.err
    assert r.err.endswith(" (see 'shmctl list --help')\n") and len(r.err.splitlines()) == 1
    r = run("frobnicate")
    assert r.code == 2 and r.err.startswith("shmctl: No such command 'frobnicate'")
    r = run("stat")
    assert r.code == 2 and "Missing argument 'ADDRESS'" in r.err and len(r.err.splitlines()) == 1


def test_size_notes_go_to_stderr():
    r = run("list", "--min-size", "1kB", "--json")
    assert r.code == 0 and "1kB = 1000 bytes (kB is decimal)" in r.err
    r = run_in_process("list", "--min-size", "lots")
    assert r.code == 2 and r.err.startswith("shmctl: invalid size 'lots'")


def test_no_traceback_on_interrupt(monkeypatch, capsys):
    @click.command()
    def boom():
        raise KeyboardInterrupt
    monkeypatch.setitem(cli.commands, "boom", boom)
    monkeypatch.setitem(cli.lazy, "boom", "-")
    assert main(["boom"]) == 130
    assert capsys.readouterr().err.lstrip("\n") == "shmctl: interrupted\n"  # after click's newline


def test_startup_imports_stay_light():
    """--version must not import any command, rich, psutil or the kernel layer."""
    code = ("import sys; from shmctl_cli.cli import main; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('rich', 'psutil', 'ctypes', 'json') "
            "or m.startswith(('shmctl_cli.kinds', 'shmctl_cli.render', 'shmctl_cli.cli.'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_bug_is_one_line_not_a_traceback(monkeypatch, capsys):
    @click.command()
    def crash():
        raise ValueError("boom")
    monkeypatch.setitem(cli.commands, "crash", crash)
    monkeypatch.setitem(cli.lazy, "crash", "-")
    monkeypatch.delenv("SHMCTL_DEBUG", raising=False)
    assert main(["crash"]) == 1
    assert capsys.readouterr().err == ("shmctl: internal error: ValueError: boom (a bug: please report it; "
                                       "SHMCTL_DEBUG=1 shows the traceback)\n")
    monkeypatch.setenv("SHMCTL_DEBUG", "1")
    with pytest.raises(ValueError):
        main(["crash"])


@needs_isolation
def test_non_ascii_names_on_an_ascii_stdout(unique, cleanup_shm):
    """An ASCII stdout or stderr (PYTHONIOENCODING=ascii, an old C locale) is made UTF-8 at
    start: a name with é comes from list, from rm's record and in an error line."""
    name = unique.name + "é"
    cleanup_shm[0].extend([name, unique.name])
    assert run("create", f"posix:/{name}", "--size", "4096").code == 0
    assert run("create", f"posix:/{unique.name}", "--size", "4096").code == 0
    ascii_env = {"PYTHONIOENCODING": "ascii"}
    listed = run("list", "--kind", "posix", env=ascii_env, binary=True)
    assert listed.code == 0 and f"posix:/{name}".encode() in listed.out
    removed = run("rm", "--yes", f"posix:/{name}", f"posix:/{unique.name}", env=ascii_env, binary=True)
    assert removed.code == 0, removed.err
    assert removed.out == f"posix:/{name}\nposix:/{unique.name}\n".encode()
    missing = run("stat", f"posix:/{name}", env=ascii_env)  # stderr too
    assert missing.code == 3 and missing.err.startswith(f"shmctl: posix:/{name}: no such object")
