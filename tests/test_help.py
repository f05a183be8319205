"""Help people meet: `shmctl` alone, `shmctl help [COMMAND [SUB]]`, and the examples every
--help ends with (cli/examples.py), each of which parses, and the safe ones run."""
import os
import shlex

import click
import pytest

from conftest import needs_isolation, run, run_in_process
from shmctl_cli.cli import cli
from shmctl_cli.cli.examples import EXAMPLES
from shmctl_cli.cli.help import SHOWN_IN_HELP


def every_path():
    """"" (shmctl itself) and every command and subcommand path."""
    ctx = click.Context(cli)
    paths = [""]
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        paths.append(name)
        if isinstance(command, click.Group):
            sub_ctx = click.Context(command, parent=ctx)
            paths += [f"{name} {sub}" for sub in command.list_commands(sub_ctx)]
    return paths


def test_shmctl_alone_prints_the_help_on_stdout_and_succeeds():
    r = run()
    assert r.code == 0 and r.err == ""
    assert r.out.startswith("Usage: shmctl") and "Commands:" in r.out and "Examples:" in r.out
    assert r.out == run("--help").out


@pytest.mark.parametrize("words", [[], ["rm"], ["limits"], ["limits", "set"], ["list"]])
def test_help_command_is_the_commands_help(words):
    asked = run_in_process("help", *words)
    assert asked.code == 0 and asked.err == ""
    assert asked.out == run_in_process(*words, "--help").out


@pytest.mark.parametrize("words", [["nope"], ["list", "extra"], ["limits", "nope"]])
def test_help_of_an_unknown_command_is_a_usage_error(words):
    r = run_in_process("help", *words)
    assert r.code == 2 and r.out == ""
    assert r.err.count("\n") == 1 and r.err.startswith("shmctl: help ") and "no such command" in r.err


def test_every_command_has_examples_and_every_example_a_command():
    paths = every_path()
    assert {"", "list", "limits set", "help", "completion"} <= set(paths)
    for path in paths:
        assert EXAMPLES.get(path), f"no example for '{path}'"
    assert set(EXAMPLES) <= set(paths)
    for path, examples in EXAMPLES.items():
        for line, why in examples:
            assert line.startswith(f"shmctl {path}".rstrip()), line
            assert why.endswith(".") and why[0].isupper() and "\n" not in why, why


@pytest.mark.parametrize("path", every_path())
def test_every_help_ends_with_its_first_examples(path):
    out = run_in_process(*path.split(), "--help").out
    section = out.split("\nExamples:\n")
    assert len(section) == 2, out
    shown = section[1]
    for line, why in EXAMPLES[path][:SHOWN_IN_HELP]:
        assert f"\n  {line}\n" in "\n" + shown
        assert " ".join(why.split()) in " ".join(shown.split())
    for line, _ in EXAMPLES[path][SHOWN_IN_HELP:]:
        assert line not in shown


def command_words(line: str):
    """The shmctl argv of an example: the part before a pipe or a redirection."""
    for cut in (" | ", " > "):
        line = line.split(cut)[0]
    words = shlex.split(line)
    assert words[0] == "shmctl"
    return words[1:]


def parse(argv):
    """Parse as click would run it (types converted, no callback run); the innermost context."""
    ctx = cli.make_context("shmctl", list(argv))
    args = [*ctx._protected_args, *ctx.args]
    while isinstance(ctx.command, click.Group) and args:
        name, command, rest = ctx.command.resolve_command(ctx, args)
        ctx = command.make_context(name, rest, parent=ctx)
        args = [*ctx._protected_args, *ctx.args]
    assert args == [], argv
    return ctx


ALL_EXAMPLES = [(path, line) for path, examples in EXAMPLES.items() for line, _ in examples]


@pytest.mark.parametrize("path,line", ALL_EXAMPLES)
def test_every_example_parses(path, line):
    ctx = parse(command_words(line))
    assert path == "" or " ".join(ctx.command_path.split()[1:]) == path  # "": shmctl's own, of any command


# read-only examples (or dry runs) that run as they are, in the test namespace
SAFE = ["shmctl list", "shmctl help rm", "shmctl help limits set", "shmctl help", "shmctl list -u",
        "shmctl list --orphans --sort SIZE", "shmctl list -k sysv -o ADDRESS,SIZE,OWNER,NATTCH",
        "shmctl list --list-columns", "shmctl limits", "shmctl limits --json", "shmctl limits hugepages",
        "shmctl limits recommend --for 16G", "shmctl rm --orphans --dry-run",
        "shmctl limits set shmmax=default --dry-run"]


@needs_isolation
@pytest.mark.parametrize("line", SAFE)
def test_safe_examples_run(line):
    assert line in [example for _, example in ALL_EXAMPLES]
    r = run(*command_words(line))
    assert r.code == 0, r


@needs_isolation
def test_the_examples_of_a_segments_life_run(tmp_path, cleanup_shm):
    """create, stat, write, read, then rm: the examples themselves, on a real /orders."""
    names, _ = cleanup_shm
    names.append("orders")
    env = {}
    lines = ["shmctl create posix:/orders --size 64M", "shmctl stat --json /orders",
             "shmctl write posix:/orders orders.bin", "shmctl read posix:/orders -o orders.bin"]
    (tmp_path / "orders.bin").write_bytes(b"order 1\n")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        for line in lines:
            assert line in [example for _, example in ALL_EXAMPLES]
            if line.startswith("shmctl read"):
                os.unlink("orders.bin")  # read makes its file anew, never over one
            r = run(*command_words(line), env=env)
            assert r.code == 0, (line, r)
        assert (tmp_path / "orders.bin").stat().st_size == 64 << 20
        assert (tmp_path / "orders.bin").read_bytes()[:8] == b"order 1\n"
    finally:
        os.chdir(cwd)
