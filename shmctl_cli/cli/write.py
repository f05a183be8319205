"""shmctl write ADDRESS [FILE|-]: bytes into a segment, never past its end unless --grow."""
from __future__ import annotations

import sys

import click

from ..errors import Exit, UsageError
from .params import ADDRESS, FILE, SIZE


def _parse_hex(text: str) -> bytes:
    cleaned = "".join(text.split())
    if cleaned.lower().startswith("0x"):
        cleaned = cleaned[2:]
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        raise UsageError(f"invalid --hex '{text}'", "expected pairs of hex digits",
                         "e.g. --hex 'de ad be ef'") from None


def _parse_byte(text: str) -> int:
    from ..units import ascii_int
    try:
        value = ascii_int(text, 0)
    except ValueError:
        if len(text) == 1 and text.isascii():
            return ord(text)
        raise UsageError(f"invalid --fill '{text}'",
                         "expected a byte: 0-255, 0x00-0xff or one ASCII character") from None
    if not 0 <= value <= 255:
        raise UsageError(f"invalid --fill '{text}'", "a byte is 0-255")
    return value


class Source:
    """What to write: bytes in memory, a byte repeated, or a file object with a known size."""

    def __init__(self, length: int, data: bytes = None, fill: int = None, stream=None):
        self.length, self.data, self.fill, self.stream = length, data, fill, stream


def check_options(path, data, hex_data, fill, length, grow: bool, overcommit: bool) -> None:
    """Options that contradict each other: exit 2 before any segment is looked for."""
    given = [name for name, value in (("FILE", path), ("--data", data), ("--hex", hex_data), ("--fill", fill))
             if value is not None]
    if len(given) > 1:
        raise UsageError("write", f"{given[0]} and {given[1]} both name what to write", "give one")
    if fill is not None:
        if length is None:
            raise UsageError("write", "--fill needs --length")
        _parse_byte(fill)
    if hex_data is not None:
        _parse_hex(hex_data)
    if overcommit and not grow:
        raise UsageError("write", "--overcommit goes with --grow", "without --grow nothing grows")


def _source(path, data, hex_data, fill, length, capacity) -> Source:
    if fill is not None:
        return Source(length, fill=_parse_byte(fill))
    if data is not None or hex_data is not None:
        payload = data.encode() if data is not None else _parse_hex(hex_data)
        if length is not None:
            payload = payload[:length]
        return Source(len(payload), data=payload)
    if path is None and sys.stdin.isatty():
        raise UsageError("write", "nothing to write", "give FILE, '-' for stdin, --data, --hex or --fill")
    return _stream_source(path or "-", length, capacity)


def _stream_source(path: str, length, capacity) -> Source:
    from .common import open_source
    stream, size = open_source(path, f"open {path}")
    if size is not None:
        return Source(min(size, length) if length is not None else size, stream=stream)
    # a pipe: its length is known only at its end. Read one byte more than fits, so that
    # an overflow is refused before anything is written (with --grow: all of it).
    limit = length if length is not None else (-1 if capacity is None else capacity + 1)
    from .common import read_all
    data = read_all(stream, limit, f"read {'stdin' if path == '-' else path}")
    stream.close()
    return Source(len(data), data=data)


@click.command("write")
@click.argument("address", type=ADDRESS)
@click.argument("path", metavar="[FILE|-]", type=FILE, required=False)
@click.option("--data", metavar="STRING", help="Write this text (UTF-8).")
@click.option("--hex", "hex_data", metavar="HEX", help="Write these bytes, in hex ('de ad be ef').")
@click.option("--fill", metavar="BYTE", help="Write BYTE (0-255, 0xNN or a character) --length times.")
@click.option("--length", type=SIZE, help="Write at most this much (with --fill: exactly this much).")
@click.option("--offset", type=SIZE, default="0", help="Start this far in.")
@click.option("--grow", is_flag=True, help="POSIX/mmap: extend the segment to take what passes its end.")
@click.option("--overcommit", is_flag=True,
              help="With --grow on tmpfs: grow even if the growth and what sparse objects there already promise "
                   "pass the free space.")
@click.option("--dry-run", is_flag=True, help="Say what would be written, write nothing.")
def write_command(address, path, data, hex_data, fill, length, offset, grow, overcommit, dry_run):
    """Write bytes into a segment from FILE, stdin, --data, --hex or --fill.

    With --grow on tmpfs, the growth plus what sparse files there already promise must fit
    the free space, else exit 6 unless --overcommit.

    Writing past the end is refused (exit 5) unless --grow, which POSIX objects and mmap
    files allow and SysV segments cannot (the kernel fixes their size).

    Concurrent shmctl writes of one user never interleave: each holds an flock on a lock file
    named after the segment, in a directory only that user can enter: /run/shmctl for root,
    else $XDG_RUNTIME_DIR/shmctl or /tmp/shmctl-UID (SHMCTL_LOCK_DIR overrides; a directory
    that is a symlink, another user's or open to others is refused). A writer waits for the
    lock up to SHMCTL_LOCK_TIMEOUT seconds (default 30), then exits 5 naming the holder's
    pid. Programs that do not take the lock, and shmctl run by other users, are not held off.
    """
    from .. import kinds
    from ..errors import Conflict

    check_options(path, data, hex_data, fill, length, grow, overcommit)
    view = kinds.View()
    with kinds.open_segment(address, view, writable=not dry_run) as handle:
        where = f"write {handle.address}"
        if offset > handle.size and not grow:
            raise Conflict(where, f"offset {offset} is past the end ({handle.size} bytes)")
        capacity = None if grow else max(0, handle.size - offset)
        source = _source(path, data, hex_data, fill, length, capacity)
        end = offset + source.length
        room = (kinds.kind(address.kind).check_growth(where, address, view, handle.size, end, grow, overcommit)
                if end > handle.size else None)
        if dry_run:
            if room:
                click.echo(room)
            click.echo(f"would write {source.length} bytes at offset {offset} of {handle.address} "
                       f"({handle.size} bytes{', growing it to ' + str(end) if end > handle.size else ''})")
            return Exit.OK
        with handle.write_lock():
            # under the lock, the size again: another writer may have grown or cut it
            if end > handle.current_size():
                if not grow:
                    raise Conflict(where, f"the segment shrank to {handle.size} bytes while waiting for the lock")
                handle.grow(end)
            try:
                _write(handle, source, offset)
            except OSError as exc:
                from ..errors import from_oserror
                raise from_oserror(exc, where) from None
    return Exit.OK


def _write(handle, source: Source, offset: int) -> None:
    from .common import progress_bar
    if source.fill is not None:
        handle.fill(source.fill, offset, source.length)
    elif source.data is not None:
        handle.write_bytes(source.data, offset)
    else:
        with progress_bar(source.length, f"write {handle.address}") as progress, source.stream:
            got = handle.receive(source.stream, offset, source.length, progress)
        if got != source.length:
            from ..errors import ShmctlError
            raise ShmctlError(f"write {handle.address}", f"the source ended after {got} of {source.length} bytes")
