"""The click tree. Every command is registered here, explicitly, and nowhere else."""
from __future__ import annotations

import contextlib
import errno
import gc
import importlib
import os
import signal
import sys
from typing import Dict, List, Optional

import click

from .. import __version__
from ..errors import Exit, ShmctlError, Signalled
from .. import signals

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
# a group that runs alone too (`shmctl`, `shmctl limits`): said so in every click version
OPTIONAL_COMMAND = "[COMMAND] [ARGS]..."

# Every command, registered here and nowhere else: name -> "module:attribute" in this package.
COMMANDS = {
    "list": "list:list_command",
    "stat": "stat:stat_command",
    "create": "create:create_command",
    "attach": "attach:attach_command",
    "read": "read:read_command",
    "write": "write:write_command",
    "rm": "rm:rm_command",
    "limits": "limits:limits_command",
    "metrics": "metrics:metrics_command",
    "watch": "watch:watch_command",
    "doctor": "doctor:doctor_command",
    "help": "help:help_command",
    "completion": "completion:completion_command",
}


class LazyGroup(click.Group):
    """A group that imports a command's module only when that command runs (or --help lists
    it), as click's documentation describes: start-up pays for click, not for the options
    and imports of eight commands."""

    def __init__(self, *args, lazy: Dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> List[str]:
        # not list(): importing the submodule `list` binds that name in this package
        return [*self.lazy]

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name in self.lazy and name not in self.commands:
            module, attribute = self.lazy[name].split(":")
            from .help import add_examples
            self.add_command(add_examples(getattr(importlib.import_module(f"{__name__}.{module}"), attribute)), name)
        return self.commands.get(name)


class ShmctlGroup(LazyGroup):
    """The top-level group: its help ends with the address forms and the exit codes, written
    from address.FORMS and errors.Exit when help is asked for (never copied by hand, and
    nothing more imported at start-up)."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from ..address import FORMS
        with formatter.section("Addresses"):
            formatter.write_dl(FORMS)
        with formatter.section("Exit codes"):
            formatter.write_dl([(str(code.value), code.meaning) for code in Exit])
        super().format_epilog(ctx, formatter)
        from .help import write_examples
        write_examples(formatter, "")

    def _main_shell_completion(self, ctx_args, prog_name, complete_var=None) -> None:
        """A completion run (_SHMCTL_COMPLETE set) answers with shmctl's own shell classes, and
        leaves at once (completion.answer); any other run does not even import them."""
        if not os.environ.get(complete_var or "_SHMCTL_COMPLETE"):
            return
        from .completion import answer
        answer(lambda: super(ShmctlGroup, self)._main_shell_completion(ctx_args, prog_name, complete_var))


class _LazyPid(click.ParamType):
    """--ns PID through params.PID (ASCII digits only), imported only when --ns is given."""
    name = "pid"

    def convert(self, value, param, ctx):
        from .params import PID
        return PID.convert(value, param, ctx)

    def shell_complete(self, ctx, param, incomplete):
        from .params import complete_pids
        return complete_pids(ctx, param, incomplete)


@click.group(cls=ShmctlGroup, lazy=COMMANDS, context_settings=CONTEXT, invoke_without_command=True,
             subcommand_metavar=OPTIONAL_COMMAND)
@click.version_option(__version__, "-V", "--version", prog_name="shmctl", message="%(prog)s %(version)s")
@click.option("--ns", "ns_pid", type=_LazyPid(), metavar="PID",
              help="Run the command in the IPC and mount namespaces of PID (a container's process): its "
                   "SysV segments, its /dev/shm, its paths. Root only.")
@click.pass_context
def cli(ctx: click.Context, ns_pid: Optional[int]) -> None:
    """See, create, fill, hold and remove Linux shared memory: SysV (shmget), POSIX
    (shm_open, /dev/shm) and mmap (MAP_SHARED files, anonymous memory, memfds).

    Every segment has one address, printed by `list` and accepted by every command
    (the forms are below).

    --ns PID looks from a container: SysV calls are made in PID's IPC namespace (setns), and
    /dev/shm and paths are those of PID's mount namespace, reached beneath its root with no
    symlink followed. Files given as options (read -o, write FILE) stay the caller's, and
    pids are the host's.
    """
    if ctx.invoked_subcommand is None:  # `shmctl` alone: the help, on stdout, exit 0
        click.echo(ctx.get_help())
        ctx.exit(Exit.OK)
    if ns_pid is not None:
        from ..kinds import look_from
        look_from(ns_pid)


def all_commands() -> Dict[str, click.Command]:
    """Every command, imported (for --help, man pages and completions)."""
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}


def _fail(message: str, code: int) -> int:
    # one line, whatever names or paths the message holds: they are escaped here, once;
    # a stderr that cannot take it (closed, full, a broken pipe) does not change the code
    from ..address import printable
    with contextlib.suppress(BaseException):  # what stdout holds goes first, whatever stops it
        sys.stdout.flush()
    with contextlib.suppress(OSError):
        sys.stderr.write(f"shmctl: {printable(message)}\n")
        sys.stderr.flush()
    return code


def _signal_status(exc: BaseException) -> Exit:
    return Exit.stopped_by(getattr(exc, "signum", signal.SIGINT))


def _occupy_closed_standard_fds() -> None:
    """A closed stdin, stdout or stderr would be the number our next open() gets: the address
    `create` prints, or a `read`, would land in a segment or a file. Each closed one gets
    /dev/null opened the wrong way round, so that the number is taken and using it fails
    with EBADF, as it would have."""
    for fd, flags in ((0, os.O_WRONLY), (1, os.O_RDONLY), (2, os.O_RDONLY)):
        try:
            os.fstat(fd)
        except OSError:
            taken = os.open(os.devnull, flags)  # the lowest free number: this one
            if taken != fd:
                os.dup2(taken, fd)
                os.close(taken)
            if fd == 0:  # Python left sys.stdin None: `isatty()` must still answer
                sys.stdin = open(0, "r", closefd=False)
            elif fd == 1:
                sys.stdout = open(1, "w", closefd=False)
            elif fd == 2:
                sys.stderr = open(2, "w", closefd=False)


# what a write to a closed, full or broken stdout gives: exit 1 (a full output device is
# not one of shared memory's limits, so never 6); every other failure a layer below
# expected is translated there, with its own words
OUTPUT_ERRNOS = (errno.EBADF, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


def _reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader went away: poll says POLLERR. (Which
    of click's versions says so in its exception's context differs; the kernel does not.)"""
    import select
    if not signals.is_pipe(1):
        return False  # a terminal that hung up is not a reader gone
    poller = select.poll()
    poller.register(1, select.POLLOUT)
    return any(events & (select.POLLERR | select.POLLHUP) for _fd, events in poller.poll(0))


def _utf8_if_ascii() -> None:
    """An ASCII stdout or stderr (PYTHONIOENCODING=ascii, an old C locale) writes UTF-8, as
    click.echo would: a name with é is printed, not an encoding error after the work is done."""
    import codecs
    for stream in (sys.stdout, sys.stderr):
        encoding = getattr(stream, "encoding", None)
        if encoding and codecs.lookup(encoding).name == "ascii" and hasattr(stream, "reconfigure"):
            stream.reconfigure(encoding="utf-8")


def _flush_stdout() -> None:
    if sys.stdout is not None:
        sys.stdout.flush()


def _silence_stdout() -> None:
    """Nothing more can reach stdout: point it at /dev/null, so that the interpreter's last
    flush at exit neither fails nor prints a second error."""
    with contextlib.suppress(OSError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)


def _parsing_context(exc: BaseException) -> Optional[click.Context]:
    """The context of the command whose arguments click was parsing when it raised a usage
    error without one (`list -o` with no value, `list --summary=x`): the innermost `ctx` on
    the way down, so that the hint names `shmctl list --help`, not `shmctl --help`."""
    found, tb = None, exc.__traceback__
    while tb is not None:
        ctx = tb.tb_frame.f_locals.get("ctx")
        if isinstance(ctx, click.Context):
            found = ctx
        tb = tb.tb_next
    return found


def main(argv: Optional[List[str]] = None) -> int:
    if not sys.platform.startswith("linux"):
        return _fail(f"this is {sys.platform}: shmctl works only on Linux "
                     "(it reads /proc and calls Linux's SysV and POSIX shared-memory syscalls)", Exit.FAILED)
    # a short-lived process that builds tens of thousands of acyclic objects: the cyclic
    # collector would only rescan them (10-20% of a large `list`)
    gc.disable()
    _occupy_closed_standard_fds()
    _utf8_if_ascii()
    signals.install()  # SIGINT, SIGTERM, SIGHUP: clean up, then exit 128+N
    try:
        result = cli.main(args=argv, prog_name="shmctl", standalone_mode=False)
        _flush_stdout()  # a full or closed stdout is an error of this command, not of exit
        if _reader_gone():
            # the reader left during a large write: the kernel returns the short count, not
            # EPIPE, and CPython's BufferedWriter hands that on while TextIOWrapper drops the
            # rest. Output was lost all the same: the status says so, as SIGPIPE's would.
            _silence_stdout()
            return Exit.BROKEN_PIPE
        return result if isinstance(result, int) else Exit.OK
    except ShmctlError as exc:
        return _fail(str(exc), exc.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except SystemExit:  # click's own answer to EPIPE (--help, --version) is a silent exit 1
        if _reader_gone():
            _silence_stdout()
            return Exit.BROKEN_PIPE
        raise
    except click.UsageError as exc:  # one line, like every other error
        ctx = exc.ctx or _parsing_context(exc)
        command = ctx.command_path if ctx else "shmctl"
        return _fail(f"{exc.format_message().rstrip('.')} (see '{command} --help')", exc.exit_code)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt, Signalled) as exc:
        status = _signal_status(exc)
        return _fail("interrupted" if status == Exit.INTERRUPTED else
                     f"stopped by {signal.Signals(status - 128).name}", status)
    except BrokenPipeError:
        # the reader went away (`shmctl list | head`): no traceback, the shell's SIGPIPE status
        _silence_stdout()
        return Exit.BROKEN_PIPE
    except OSError as exc:  # a system call no layer above expected to fail: still one line
        from ..errors import from_oserror
        _silence_stdout()
        if exc.filename is None and exc.errno in OUTPUT_ERRNOS:
            why = os.strerror(exc.errno)
            return _fail(f"write to stdout: {why[:1].lower()}{why[1:]}", Exit.FAILED)
        error = from_oserror(exc, exc.filename or "system call")
        return _fail(str(error), error.exit_code)
    except Exception as exc:  # a bug: one line, and the traceback on request
        if os.environ.get("SHMCTL_DEBUG"):
            raise
        return _fail(f"internal error: {type(exc).__name__}: {exc} (a bug: please report it; "
                     "SHMCTL_DEBUG=1 shows the traceback)", Exit.FAILED)


def run() -> None:
    """The `shmctl` command (console script and `python -m shmctl_cli`): main(), then out
    without the interpreter's teardown. By then every with-block and finally clause has run
    (files, mappings, attachments and locks are closed or released) and stdout was flushed
    by main(); teardown would only free every object and module one by one: 6 ms of a 50 ms
    `list`, more after a large one. In-process callers (the tests) call main()."""
    code = main()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):  # a signal during this last flush changes no status
            stream.flush()
    os._exit(code)

