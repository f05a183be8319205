r"""Live completion in real interactive shells: bash, zsh (compinit) and fish, each on a
pseudo-terminal with the script `shmctl completion SHELL` prints loaded. A test types a line,
Tab, then Enter, and reads back the arguments the shell passed to `shmctl`: what the
completion inserted, as the shell itself reads it. Each shell that is not installed skips,
saying so (.ci/run installs them).

The `shmctl` on the shells' PATH answers completions with this checkout, then says so on a
FIFO (the test sends Enter only after that); run for real, it prints its arguments, one
`ARG[...]` line each, then ARGS-END, and does nothing else."""
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import sys
import termios
import time

import pytest

from conftest import HERE, run
from shmctl_cli.cli import cli
from shmctl_cli.cli.completion import script

ROOT = os.path.dirname(HERE)
SHELLS = ["bash", "zsh", "fish"]
PROMPT = "READY> "
ANSI = re.compile(r"\x1b\[[0-9;?>=<]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[=>()][0-9A-Za-z]?|\x1b[78]")


def needs(shell):
    return pytest.mark.skipif(shutil.which(shell) is None, reason=f"{shell} is not installed (.ci/run installs it)")


class Interactive:
    """An interactive shell on a pty (250 columns: no line wraps), the completion loaded."""

    def __init__(self, shell: str, place, env=None):
        self.shell, self.place, self.output = shell, place, ""
        self.fifo = os.open(place.fifo, os.O_RDONLY | os.O_NONBLOCK)
        self.keep_open = os.open(place.fifo, os.O_WRONLY)  # no EOF between two completions
        argv = {"bash": ["bash", "--norc", "--noprofile", "-i"], "zsh": ["zsh", "-f", "-i"],
                "fish": ["fish", "--no-config", "-i"]}[shell]
        full_env = {"PATH": f"{place.bin}:/usr/bin:/bin", "HOME": str(place.home), "TERM": "xterm",
                    "LANG": "C.UTF-8", **(env or {})}
        full_env = {k: v for k, v in full_env.items() if v is not None}
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(place.cwd)
            os.execvpe(argv[0], argv, full_env)
        fcntl.ioctl(self.fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 250, 0, 0))
        prompt = "PS1='REA''DY> '"
        setup = {"bash": f"source {place.script('bash')}; {prompt}",
                 "zsh": f"fpath=({place.zsh_dir} $fpath); autoload -U compinit; compinit -u -D; {prompt}; unset RPS1",
                 "fish": f"set -g fish_autosuggestion_enabled 0; source {place.script('fish')}; "
                         "function fish_prompt; printf 'REA''DY> '; end"}[shell]
        self.send(setup + "\n")
        self.read_until(PROMPT)

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def read_until(self, marker: str, timeout: float = 60) -> str:
        """What the shell wrote until `marker` (ANSI sequences out), waiting on the pty."""
        deadline = time.monotonic() + timeout
        while marker not in self.output:
            left = deadline - time.monotonic()
            assert left > 0, f"{self.shell}: no {marker!r} in {self.output[-2000:]!r}"
            if select.select([self.fd], [], [], left)[0]:
                self.output += ANSI.sub("", os.read(self.fd, 65536).decode("utf-8", "replace"))
        before, _, self.output = self.output.partition(marker)
        return before

    def completed(self, timeout: float = 60) -> None:
        """Wait for the completion run the Tab started to answer."""
        assert select.select([self.fifo], [], [], timeout)[0], f"{self.shell}: no completion ran"
        os.read(self.fifo, 64)

    def arguments(self, line: str) -> list:
        """The arguments `shmctl` gets for `line`, Tab, Enter."""
        self.send(line + "\t")
        self.completed()
        self.send("\n")
        return re.findall(r"ARG\[([^\]\r\n]*)\]", self.read_until("ARGS-END"))

    def close(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        for fd in (self.fd, self.fifo, self.keep_open):
            os.close(fd)


class Place:
    """The shells' world: a HOME, a working directory, the generated scripts, a `shmctl`."""

    def __init__(self, tmp_path):
        self.home, self.cwd, self.bin, self.zsh_dir = (tmp_path / d for d in ("home", "cwd", "bin", "zsh"))
        for d in (self.home, self.cwd, self.bin, self.zsh_dir):
            d.mkdir()
        self.fifo = str(tmp_path / "completed")
        os.mkfifo(self.fifo)
        wrapper = self.bin / "shmctl"
        wrapper.write_text(
            "#!/bin/sh\n"
            'if [ -n "$_SHMCTL_COMPLETE" ]; then\n'
            f'    PYTHONPATH={ROOT} {sys.executable} -m shmctl_cli "$@"\n'
            "    status=$?\n"
            f"    printf . > {self.fifo}\n"
            "    exit $status\n"
            "fi\n"
            "printf 'ARG[%s]\\n' \"$@\"\n"
            "echo ARGS-END\n")
        wrapper.chmod(0o755)
        for shell in SHELLS:
            path = self.zsh_dir / "_shmctl" if shell == "zsh" else tmp_path / f"shmctl.{shell}"
            path.write_text(script(shell, cli))

    def script(self, shell):
        return self.zsh_dir / "_shmctl" if shell == "zsh" else self.home.parent / f"shmctl.{shell}"


@pytest.fixture
def place(tmp_path):
    return Place(tmp_path)


@pytest.fixture
def shell(request, place):
    """shell(NAME, env=None): an interactive shell, killed at the end of the test."""
    started = []

    def start(name, env=None):
        started.append(Interactive(name, place, env))
        return started[-1]
    yield start
    for s in started:
        s.close()


@pytest.fixture
def objects(unique, cleanup_shm):
    """POSIX objects of the test, by their names' endings: the real name of each."""
    names, _ = cleanup_shm

    def make(*endings):
        made = {}
        for ending in endings:
            name = f"{unique.name}{ending}"
            with open(f"/dev/shm/{name}", "w") as f:
                f.write("x")
            names.append(name)
            made[ending] = name
        return made
    return make


def _named(address):
    """The address names an object: `stat` finds it."""
    r = run("stat", address)
    assert r.code == 0, r
    return True


@needs("zsh")
def test_zsh_keeps_a_backslash(shell, objects, unique):
    # _describe read `\x5c` as `x5c`: the candidate named another object, or none
    name = objects("back\\slash")["back\\slash"]
    z = shell("zsh")
    [_, address] = z.arguments(f"shmctl stat posix:/{unique.name}b")
    assert address == f"posix:/{unique.name}back\\x5cslash" and _named(address)
    [_, address] = z.arguments(f"shmctl stat /{unique.name}")
    assert address == "/" + name.replace("\\", "\\x5c") and _named(address)


@needs("bash")
def test_bash_completes_after_an_escaped_space(shell, objects, unique):
    # the prefix bash keeps was taken from after the last space, escaped or not: posix:posix:/...
    objects(" b")
    b = shell("bash")
    assert b.arguments(f"shmctl stat posix:/{unique.name}\\ ") == ["stat", f"posix:/{unique.name} b"]
    assert b.arguments(f"shmctl rm sysv:1 posix:/{unique.name}\\ ")[-1] == f"posix:/{unique.name} b"


@needs("bash")
def test_bash_in_the_c_locale_inserts_the_name_itself(shell, objects, unique):
    # printf %q made $'...' of a non-ASCII name in the C locale, and the prefix was given twice
    objects("ü2")
    b = shell("bash", env={"LANG": None})
    [_, address] = b.arguments(f"shmctl stat posix:/{unique.name}")
    assert address == f"posix:/{unique.name}ü2" and _named(address)


@needs("bash")
def test_bash_quotes_inside_a_quote_left_open(shell, objects, unique):
    objects(" it's $x")
    b = shell("bash")
    for line in (f"shmctl stat 'posix:/{unique.name}", f'shmctl stat "posix:/{unique.name}',
                 f"shmctl stat posix:'/{unique.name}"):
        assert b.arguments(line) == ["stat", f"posix:/{unique.name} it's $x"], line


@pytest.mark.parametrize("name", SHELLS)
def test_the_printed_form_is_completed_as_typed(name, shell, objects, unique):
    # list prints `a b` as `a\x20b`; typed so (unquoted: the shell takes the backslash, or
    # quoted) it completed nothing
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    objects("a b")
    s = shell(name)
    printed = f"posix:/{unique.name}a\\x20b"
    quoted = s.arguments(f"shmctl stat 'posix:/{unique.name}a\\x20")
    assert quoted == ["stat", printed] and _named(printed)
    unquoted = s.arguments(f"shmctl stat posix:/{unique.name}a\\x20")
    # in fish \x20 is a space: it passes the name itself
    assert unquoted == ["stat", f"posix:/{unique.name}a b" if name == "fish" else printed]


@pytest.mark.parametrize("name", SHELLS)
def test_a_mapped_path_is_completed_as_typed(name, shell, hold, tmp_path):
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    path = tmp_path / "mapped file"
    hold({"kind": "file", "path": str(path), "size": 4096})
    s = shell(name)
    assert s.arguments(f"shmctl stat mmap:{tmp_path}/mapped\\ ") == ["stat", f"mmap:{path}"]
    printed = f"mmap:{tmp_path}/mapped\\x20file"
    assert s.arguments(f"shmctl stat 'mmap:{tmp_path}/mapped\\x2") == ["stat", printed] and _named(printed)


@pytest.mark.parametrize("name", SHELLS)
def test_attach_completes_a_command_after_double_dash(name, shell, place, unique, hold):
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    command = place.bin / f"{unique.name}-tool"
    command.write_text("#!/bin/sh\n")
    command.chmod(0o755)
    shmid = hold({"kind": "sysv", "key": unique.key, "size": 4096}).objects[0]["shmid"]
    s = shell(name)
    assert s.arguments(f"shmctl attach sysv:{shmid} -- {unique.name}-t") == \
        ["attach", f"sysv:{shmid}", "--", f"{unique.name}-tool"]


@pytest.mark.parametrize("name", SHELLS)
def test_a_directory_option_completes_directories(name, shell, place):
    if shutil.which(name) is None:
        pytest.skip(f"{name} is not installed (.ci/run installs it)")
    (place.cwd / "plan.txt").write_text("")
    (place.cwd / "pldir").mkdir()
    s = shell(name)
    # a file would not do: plan.txt and pldir share `pl` (zsh takes the slash back at Enter)
    assert s.arguments("shmctl metrics --textfile-dir pl") in (["metrics", "--textfile-dir", "pldir/"],
                                                                ["metrics", "--textfile-dir", "pldir"])


@needs("bash")
def test_bash_completes_after_a_colon_and_an_equals(shell, hold, unique):
    # bash breaks words at `:` and `=`: readline replaces only what follows the last one
    hold({"kind": "sysv", "key": unique.key, "size": 4096})
    key = f"0x{unique.key:08x}"
    b = shell("bash")
    assert b.arguments(f"shmctl stat sysv:key={key[:-1]}") == ["stat", f"sysv:key={key}"]
    assert b.arguments(f"shmctl list --id=sysv:key={key[:-1]}") == ["list", f"--id=sysv:key={key}"]
    assert b.arguments(f"shmctl rm -M {key[:-1]}") == ["rm", "-M", key]
    assert b.arguments("shmctl limits set shmma") == ["limits", "set", "shmmax="]  # no space after `=`
