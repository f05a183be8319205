"""shmctl metrics: the Prometheus text exposition of every segment, total and limit."""
from __future__ import annotations

from typing import Optional, Tuple

import click

from .. import KINDS
from ..errors import Exit
from .params import DIR, NumberParam


@click.command("metrics", short_help="Print Prometheus metrics of segments, limits and pools.")
@click.option("--top", type=NumberParam("--top count", minimum=0), default=50, show_default=True, metavar="N",
              help="Series of their own for the N segments using the most memory (rss+swap); the others are "
                   "summed per kind and owner in shmctl_other_*. 0: none one by one.")
@click.option("--here", is_flag=True,
              help="Only the caller's own IPC namespace and /dev/shm (default: every namespace of the host, "
                   "as list -A; root sees them all).")
@click.option("-k", "--kind", "kinds", type=click.Choice(KINDS), multiple=True,
              help="Only this kind (repeatable; default: all three). SysV limits come with sysv, /dev/shm "
                   "with posix.")
@click.option("--textfile-dir", "textfile_dir", type=DIR, metavar="DIR",
              help="Write DIR/shmctl.prom for node_exporter's textfile collector instead of stdout: "
                   "atomically (temp file, fsync, rename), mode 0644, a symlink at the name replaced, "
                   "never followed.")
def metrics_command(top: int, here: bool, kinds: Tuple[str, ...], textfile_dir: Optional[str]):
    """Print Prometheus metrics: the largest segments one by one (size, rss, swap, attachments,
    with kind, address, name, owner, status, namespace and container labels), totals per
    kind, orphans and deleted-but-held objects, Shmem and how much of it the segments explain,
    shmmax/shmall/shmmni and their use per IPC namespace, each /dev/shm (size, used, free,
    promised), the huge page pools, and how long the collection took.

    All are gauges named shmctl_*, in base units (bytes, seconds). Label values are in the
    printable form every command accepts (control characters and backslashes as \\xHH).

    For node_exporter: run it every minute with --textfile-dir
    /var/lib/prometheus/node-exporter (contrib/shmctl-metrics.service and .timer do).
    """
    from .. import kinds as backend
    from .. import metrics
    from ..render.prometheus import exposition
    chosen = list(dict.fromkeys(kinds)) or list(KINDS)
    if textfile_dir is not None:
        _check_directory(textfile_dir)
    text = exposition(metrics.collect(backend.View(), chosen, top, everywhere=not here))
    if textfile_dir is None:
        click.echo(text, nl=False)
    else:
        metrics.write_textfile(textfile_dir, text)
    return Exit.OK


def _check_directory(directory: str) -> None:
    """A missing or unusable DIR fails at once, before the collection: 2 when it does not
    exist, 4 when it may not be reached, 1 when it is something else than a directory (the
    local-file rule of errors.local_error)."""
    import os
    import stat
    from ..errors import PermissionDenied, ShmctlError, UsageError
    what, hint = f"--textfile-dir {directory}", "give the directory node_exporter's --collector.textfile.directory reads"
    try:
        is_dir = stat.S_ISDIR(os.stat(directory).st_mode)
    except PermissionError:
        raise PermissionDenied(what, "permission denied", "run as root, or as the owner of the directory") from None
    except OSError:
        raise UsageError(what, "no such directory", hint) from None
    if not is_dir:
        raise ShmctlError(what, "not a directory", hint)
