"""The click tree. Every command is registered here, explicitly, and nowhere else."""
from __future__ import annotations

import gc
import os
import sys
from typing import List, Optional

import click

from .. import __version__
from ..errors import Exit, ShmctlError
from .attach import attach_command
from .create import create_command
from .limits import limits_command
from .list import list_command
from .read import read_command
from .rm import rm_command
from .stat import stat_command
from .write import write_command

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="shmctl", message="%(prog)s %(version)s")
def cli() -> None:
    """See, create, fill, hold and remove Linux shared memory: SysV (shmget), POSIX
    (shm_open, /dev/shm) and mmap (MAP_SHARED files, anonymous memory, memfds).

    Every segment has one address, printed by `list` and accepted by every command:
    sysv:SHMID, sysv:key=KEY, posix:/NAME (or /NAME), mmap:/PATH, mmap:@INODE.

    Exit codes: 0 ok, 1 failed, 2 usage, 3 no such segment, 4 permission denied,
    5 conflict (exists, attached, would truncate), 6 a kernel limit.
    """


cli.add_command(list_command)
cli.add_command(stat_command)
cli.add_command(create_command)
cli.add_command(attach_command)
cli.add_command(read_command)
cli.add_command(write_command)
cli.add_command(rm_command)
cli.add_command(limits_command)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"shmctl: {message}\n")
    return code


def main(argv: Optional[List[str]] = None) -> int:
    if not sys.platform.startswith("linux"):
        return _fail(f"this is {sys.platform}: shmctl works only on Linux "
                     "(it reads /proc and calls Linux's SysV and POSIX shared-memory syscalls)", Exit.FAILED)
    # a short-lived process that builds tens of thousands of acyclic objects: the cyclic
    # collector would only rescan them (10-20% of a large `list`)
    gc.disable()
    try:
        result = cli.main(args=argv, prog_name="shmctl", standalone_mode=False)
        return result if isinstance(result, int) else Exit.OK
    except ShmctlError as exc:
        return _fail(str(exc), exc.exit_code)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.UsageError as exc:  # one line, like every other error
        command = exc.ctx.command_path if exc.ctx else "shmctl"
        return _fail(f"{exc.format_message().rstrip('.')} (see '{command} --help')", exc.exit_code)
    except click.ClickException as exc:
        return _fail(exc.format_message(), exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        return _fail("interrupted", Exit.INTERRUPTED)
    except BrokenPipeError:
        # the reader went away (`shmctl list | head`): no traceback, the shell's SIGPIPE status
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
