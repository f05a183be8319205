"""shmctl read ADDRESS: a segment's bytes to stdout or a file, exactly, or as a hexdump."""
from __future__ import annotations

import contextlib
import errno
import os
import sys

import click

from ..errors import Exit
from .params import ADDRESS, FILE, MODE, SIZE


@click.command("read")
@click.argument("address", type=ADDRESS)
@click.option("-o", "--output", "output_path", type=FILE, metavar="FILE",
              help="Write to FILE, not stdout ('-' is stdout). FILE must not exist unless --force; it appears "
                   "only when complete.")
@click.option("-f", "--force", is_flag=True,
              help="Replace an existing FILE (a regular file of your own) atomically; never a symlink, FIFO, "
                   "device or another user's file.")
@click.option("--mode", type=MODE, default="0600", show_default=True,
              help="Permissions of FILE, octal, exactly (the umask does not apply).")
@click.option("--offset", type=SIZE, default="0", help="Start this far in.")
@click.option("--length", type=SIZE, help="Read this much (default: to the end).")
@click.option("-x/-B", "--hexdump/--binary", default=None,
              help="hexdump -C layout, or raw bytes. Default: hexdump on a terminal, raw elsewhere.")
@click.option("--string", is_flag=True, help="Stop at the first NUL byte.")
def read_command(address, output_path, force, mode, offset, length, hexdump, string):
    """Copy a segment's bytes out, exactly.

    A range past the end is exit 5, never a short read passed off as whole; so is a segment
    that shrinks or vanishes during the copy (the message says how many bytes were read).
    Works for SysV (attached read-only while it reads), POSIX objects and mmap files, and for
    anonymous and memfd segments through /proc/PID/map_files when root.

    -o FILE is written safely in shared directories such as /tmp: the bytes go to a new
    temporary file beside FILE (mode 0600, or --mode), which is fsynced and then renamed to
    FILE, so FILE is never seen half-written and an error or a signal leaves no trace (only
    SIGKILL can leave a hidden .FILE.*.shmctl-tmp beside it). FILE is never followed if it is
    a symlink and never opened if it is a FIFO, socket or device (use stdout for pipes and
    devices); an existing FILE is replaced only with --force and only if it is a regular file
    you own; the segment itself is never FILE.
    """
    from .. import kinds
    from .common import check_range

    check_options(output_path, force)
    with kinds.open_segment(address, kinds.View(), writable=False) as handle:
        length = check_range(f"read {handle.address}", handle.size, offset, length)
        path = output_path if output_path not in (None, "-") else None  # None: stdout
        with _output(path, handle, force, mode) as fd:
            if hexdump is None:
                hexdump = path is None and sys.stdout.isatty()
            got = _copy(handle, fd, offset, length, hexdump, string, path or "stdout")
            if got < length:
                raise _short_read(handle.address, got, length, path)
    return Exit.OK


def check_options(output_path, force: bool) -> None:
    """--force and --mode are about -o FILE: without one they would be silently ignored.
    (--hexdump with -o FILE or --string is meant: a hexdump into FILE, of the bytes before NUL.)"""
    from ..errors import UsageError
    mode_given = click.get_current_context().get_parameter_source("mode") != click.core.ParameterSource.DEFAULT
    if output_path in (None, "-") and (force or mode_given):
        option = "--force" if force else "--mode"
        raise UsageError("read", f"{option} applies to -o FILE", "stdout is written as it is")


@contextlib.contextmanager
def _output(path, handle, force: bool, mode: int):
    """stdout as it is (a pipe, a device, a file the shell opened), or FILE made safely."""
    if path is None:
        sys.stdout.flush()
        yield sys.stdout.fileno()
        return
    from ..outfile import output_file
    with output_file(path, replace=force, mode=mode, not_same_as=handle.fd) as fd:
        yield fd


def _copy(handle, fd: int, offset: int, length: int, hexdump: bool, string: bool, target: str) -> int:
    """Copy the range to fd; returns how many bytes of the segment were read."""
    from ..kinds.access import write_all
    from .common import progress_bar
    try:
        if string:
            text = _BeforeNul(_CountedChunks(handle, offset, length))
            if hexdump:
                _write_hexdump(fd, text, offset)
            else:
                for chunk in text:
                    write_all(fd, chunk)
            return length if text.found else text.chunks.got
        if hexdump:
            counted = _CountedChunks(handle, offset, length)
            _write_hexdump(fd, counted, offset)
            return counted.got
        with progress_bar(length, f"read {handle.address}") as progress:
            return handle.send(fd, offset, length, progress and (lambda at: progress(at - offset)))
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise
        from ..outfile import local_error
        raise local_error(exc, f"write {target}") from None


class _CountedChunks:
    """The range in chunks, stopping at the first short one (the segment shrank)."""

    def __init__(self, handle, offset: int, length: int):
        self.handle, self.offset, self.length, self.got = handle, offset, length, 0

    def __iter__(self):
        from ..kinds.access import CHUNK
        while self.got < self.length:
            want = min(CHUNK, self.length - self.got)
            chunk = self.handle.read_bytes(self.offset + self.got, want)
            self.got += len(chunk)
            yield chunk
            if len(chunk) < want:
                return


class _BeforeNul:
    """The chunks up to the first NUL byte (--string), read no further than the chunk holding it."""

    def __init__(self, chunks: _CountedChunks):
        self.chunks, self.found = chunks, False

    def __iter__(self):
        for chunk in self.chunks:
            head, nul, _ = chunk.partition(b"\0")
            if head:
                yield head
            if nul:
                self.found = True
                return


def _short_read(address: str, got: int, length: int, path):
    from ..errors import Conflict
    return Conflict(f"read {address}", f"only {got} of {length} bytes could be read: the segment shrank or "
                    "was removed during the copy", f"{path} was left as it was" if path else
                    "the output is incomplete")


def _write_hexdump(fd: int, chunks, offset: int) -> None:
    from ..render.hexdump import hexdump_lines
    out = os.fdopen(os.dup(fd), "w")
    with out:
        for line in hexdump_lines(chunks, offset):
            out.write(line + "\n")
