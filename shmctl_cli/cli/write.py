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
    """What to write: bytes in memory, a byte repeated, a file object of known size, or a pipe
    (`length` None: its length is known only at its end)."""

    def __init__(self, length, data: bytes = None, fill: int = None, stream=None, label: str = ""):
        self.length, self.data, self.fill, self.stream, self.label = length, data, fill, stream, label


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


def _source(path, data, hex_data, fill, length) -> Source:
    if fill is not None:
        return Source(length, fill=_parse_byte(fill))
    if data is not None or hex_data is not None:
        payload = data.encode() if data is not None else _parse_hex(hex_data)
        if length is not None:
            payload = payload[:length]
        return Source(len(payload), data=payload)
    if path is None and sys.stdin.isatty():
        raise UsageError("write", "nothing to write", "give FILE, '-' for stdin, --data, --hex or --fill")
    from .common import open_source
    path = path or "-"
    stream, size = open_source(path, f"open {path}")
    label = f"read {'stdin' if path == '-' else path}"
    if size is not None:
        return Source(min(size, length) if length is not None else size, stream=stream, label=label)
    return Source(None, stream=stream, label=label)


def _settled(source: Source, handle, limit, capacity, atomic: bool, dry_run: bool) -> Source:
    """A pipe whose length must be known before anything is written: counted for --dry-run,
    staged in an unlinked temporary file for --atomic and --grow (the growth is checked
    against the free space, as for a file). Never more than one byte past what could fit."""
    if source.length is not None or not (atomic or dry_run or capacity is None):
        return source
    bound = capacity + 1 if capacity is not None else -1
    if limit is not None:
        bound = limit if bound < 0 else min(limit, bound)
    from .common import progress_bar
    with progress_bar(None, source.label) as progress, source.stream:
        if dry_run:
            settled = Source(handle.count_input(source.stream, bound, progress))
        else:
            staged, length = handle.stage_input(source.stream, bound, progress)
            settled = Source(length, stream=staged, label=source.label)
    if capacity is not None and settled.length > capacity:
        if settled.stream is not None:
            settled.stream.close()  # unlinked already: closing frees it
        from ..errors import Conflict
        raise Conflict(f"write {handle.address}", f"the input has more than the {capacity} bytes up to the "
                       "segment's end: nothing written", "--grow extends the segment to take it all")
    return settled


@click.command("write", short_help="Write a file, stdin or given bytes into a segment.")
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
@click.option("--atomic", is_flag=True,
              help="From a pipe: stage the input in an unlinked temporary file first (the object's own "
                   "filesystem, or $TMPDIR for SysV), and write nothing if it does not fit.")
@click.option("--dry-run", is_flag=True, help="Say what would be written, write nothing.")
def write_command(address, path, data, hex_data, fill, length, offset, grow, overcommit, atomic, dry_run):
    """Write bytes into a segment from FILE, stdin, --data, --hex or --fill.

    A pipe streams in bounded memory (splice, never all of it in memory). Input that fits
    one 8 MiB buffer is written whole or not at all; a longer one is written as it comes. If
    the pipe has more than fits, what fits is written and the rest refused: exit 5, saying
    exactly how many bytes were written. --atomic changes nothing then: the input is staged
    first and copied in only once it is known to fit. A FILE, --data, --hex and --fill are
    checked before anything is written. --grow from a pipe stages the input too.

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
        source = _settled(_source(path, data, hex_data, fill, length), handle, length, capacity, atomic, dry_run)
        end = offset + (source.length or 0)  # a pipe that streams never passes the end
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
                _write(handle, source, offset, length)
            except OSError as exc:
                from ..errors import from_oserror
                raise from_oserror(exc, where) from None
    return Exit.OK


def _write(handle, source: Source, offset: int, limit) -> None:
    from .common import progress_bar
    if source.fill is not None:
        handle.fill(source.fill, offset, source.length)
    elif source.data is not None:
        handle.write_bytes(source.data, offset)
    elif source.length is None:
        with progress_bar(None, source.label) as progress, source.stream:
            _stream(handle, source.stream, offset, limit, progress)
    else:
        with progress_bar(source.length, f"write {handle.address}") as progress, source.stream:
            got = handle.receive(source.stream, offset, source.length, progress)
        if got != source.length:
            from ..errors import ShmctlError
            raise ShmctlError(f"write {handle.address}", f"the source ended after {got} of {source.length} bytes")


FIRST = 8 << 20  # input up to this long is written at once: whole, or (stopped by a signal) not at all


def _stream(handle, stream, offset: int, limit, progress) -> None:
    """A pipe into the segment up to its end (or `limit`: --length), in bounded memory. The
    first FIRST bytes are gathered before any is written; the rest is spliced in as it comes."""
    room = max(0, handle.size - offset)
    want = room if limit is None else min(limit, room)
    may_overflow = limit is None or limit > room
    first = handle.gather(stream, min(FIRST, want + may_overflow))
    written = min(len(first), want)
    handle.write_bytes(memoryview(first)[:written], offset)
    if progress:
        progress(written)
    if len(first) == FIRST and written < want:  # more may come: stream it
        written += handle.receive(stream, offset + written, want - written,
                                  progress and (lambda n: progress(FIRST + n)))
    if may_overflow and written == want and (len(first) > want or stream.read(1)):
        from ..errors import Conflict
        whole = "the whole segment" if offset == 0 else "up to the segment's end"
        raise Conflict(f"write {handle.address}", f"wrote the first {written} bytes ({whole}); the input has more: "
                       "refused", "add --grow, or --atomic to change nothing in that case")
