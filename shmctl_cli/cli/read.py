"""shmctl read ADDRESS: a segment's bytes to stdout or a file, exactly, or as a hexdump."""
from __future__ import annotations

import os
import sys

import click

from .params import ADDRESS, SIZE


def _open_output(path):
    if path is None:
        sys.stdout.flush()
        return sys.stdout.fileno(), False
    try:  # a segment's contents are often private: the copy starts private too
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600), True
    except OSError as exc:
        from ..errors import from_oserror
        raise from_oserror(exc, f"open {path}") from None


def _chunks(handle, offset: int, length: int):
    from ..kinds.access import CHUNK
    end = offset + length
    while offset < end:
        n = min(CHUNK, end - offset)
        yield handle.read_bytes(offset, n)
        offset += n


@click.command("read")
@click.argument("address", type=ADDRESS)
@click.option("-o", "--output", "output_path", metavar="FILE", help="Write to FILE (created mode 0600), not stdout.")
@click.option("--offset", type=SIZE, default="0", help="Start this far in.")
@click.option("--length", type=SIZE, help="Read this much (default: to the end).")
@click.option("-x/-B", "--hexdump/--binary", default=None,
              help="hexdump -C layout, or raw bytes. Default: hexdump on a terminal, raw elsewhere.")
@click.option("--string", is_flag=True, help="Stop at the first NUL byte.")
def read_command(address, output_path, offset, length, hexdump, string):
    """Copy a segment's bytes out, exactly.

    A range past the end is exit 5, never a short read passed off as whole. Works for SysV
    (attached read-only while it reads), POSIX objects and mmap files, and for anonymous
    and memfd segments through /proc/PID/map_files when root.
    """
    from .. import kinds
    from ..kinds.access import write_all
    from .common import check_range, progress_bar

    with kinds.open_segment(address, kinds.View(), writable=False) as handle:
        length = check_range(f"read {handle.address}", handle.size, offset, length)
        fd, close = _open_output(output_path)
        try:
            if hexdump is None:
                hexdump = output_path is None and sys.stdout.isatty()
            if string:
                data = handle.read_bytes(offset, length)
                data = data.split(b"\0", 1)[0]
                if hexdump:
                    _write_hexdump(fd, [data], offset)
                else:
                    write_all(fd, data)
            elif hexdump:
                _write_hexdump(fd, _chunks(handle, offset, length), offset)
            else:
                with progress_bar(length, f"read {handle.address}") as progress:
                    handle.send(fd, offset, length, progress and (lambda at: progress(at - offset)))
        finally:
            if close:
                os.close(fd)
    return 0


def _write_hexdump(fd: int, chunks, offset: int) -> None:
    from ..render.hexdump import hexdump_lines
    out = os.fdopen(os.dup(fd), "w")
    with out:
        for line in hexdump_lines(chunks, offset):
            out.write(line + "\n")
