"""shmctl create ADDRESS --size SIZE: a new segment, and its address on stdout."""
from __future__ import annotations

import click

from ..errors import Exit, UsageError
from .params import FILE, MODE, SIZE, AddressParam, FtokParam, SizeParam, complete_users


def _source(path):
    """(file object, size) of --from; size None for a pipe."""
    from .common import open_source
    return open_source(path, f"--from {path}") if path is not None else (None, None)


@click.command("create", short_help="Create a segment and print its address.")
@click.argument("address", type=AddressParam(allow_new=True), required=False)
@click.option("-s", "--size", type=SizeParam(minimum=1),
              help="Size: 4096, 64K, 1M, 1.5GiB, 0x1000 (default: of --from).")
@click.option("--key", metavar="KEY", help="SysV key: decimal, 0x hex or 0o octal (0 = IPC_PRIVATE).")
@click.option("--ftok", metavar="PATH,PROJ", type=FtokParam(),
              help="SysV key derived by ftok(3) as glibc does: PROJ is a C int (its low 8 bits count) or a character.")
@click.option("-p", "--mode", type=MODE, default="0600", show_default=True,
              help="Permissions, octal (ipcmk -p; ipcmk's default is 0644, shmctl's the safer 0600).")
@click.option("-M", "--shmem", "shmem", type=SizeParam(minimum=1), metavar="SIZE",
              help="A SysV segment of SIZE (ipcmk -M): ADDRESS may be left out, it is then `sysv`; with an "
                   "ADDRESS, -M is its --size.")
@click.option("--hugetlb", is_flag=True, help="SysV: back it with huge pages (SHM_HUGETLB).")
@click.option("--huge-size", type=SIZE, metavar="SIZE", help="Huge page size for --hugetlb: 2M or 1G.")
@click.option("--lock", is_flag=True, help="SysV: SHM_LOCK it, so its pages are never swapped.")
@click.option("--from", "source_path", type=FILE, metavar="FILE", help="Initial contents ('-' for stdin).")
@click.option("--exist-ok", is_flag=True,
              help="Use an existing segment of this address if it is the owner's, its mode no wider and its "
                   "size the one asked; else exit 5.")
@click.option("--larger-ok", is_flag=True, help="With --exist-ok: a larger existing segment will do too.")
@click.option("--owner", metavar="USER|UID", shell_complete=complete_users,
              help="Owner of the new segment (root), and the owner an existing one must have for --exist-ok.")
@click.option("--resize", is_flag=True, help="POSIX/mmap: set an existing object to --size (shrinking needs --force).")
@click.option("--force", is_flag=True, help="Create even past the filesystem's free space; let --resize shrink.")
@click.option("--overcommit", is_flag=True,
              help="POSIX/mmap on tmpfs: create even if it and what sparse objects there already promise pass "
                   "the free space (a writer past it dies of SIGBUS).")
@click.option("--dry-run", is_flag=True, help="Say what would be created and which limits it meets.")
def create_command(address, size, key, ftok, mode, shmem, hugetlb, huge_size, lock, source_path, exist_ok,
                   larger_ok, owner, resize, force, overcommit, dry_run):
    """Create a segment; print its address, and nothing else, on stdout.

    ADDRESS is sysv (the kernel picks the id; add --key or --ftok for a key),
    sysv:key=KEY, sysv:ftok=PATH,PROJ, posix:/NAME (or /NAME), or mmap:/PATH (a file on
    tmpfs, hugetlbfs or disk). An existing key, name or path is never reused or resized
    unless asked: exit 5. --exist-ok adopts an existing one only if it is what was asked
    for (owner, mode no wider, size, one link), never with --from. If the address cannot be
    written to stdout, the new segment is removed again and the exit status is 1.

    tmpfs allocates lazily: on tmpfs and hugetlbfs the new size, plus what sparse files there
    already promise (size beyond what they occupy), must fit the free space, else exit 6
    unless --overcommit (or --force). --dry-run shows free, promised and needed.
    """
    from .. import kinds
    from ..errors import Conflict
    from ..kinds.base import CreateOptions

    address, size = _ipcmk_style(address, size, shmem)
    if larger_ok and not exist_ok:
        raise UsageError(f"create {address}", "--larger-ok goes with --exist-ok", "it says which existing one will do")
    options = CreateOptions(size, mode, exist_ok, dry_run, larger_ok=larger_ok, resize=resize, force=force,
                            overcommit=overcommit, key=key, ftok=ftok, hugetlb=hugetlb, huge_size=huge_size, lock=lock)
    kinds.kind(address.kind).check_create_options(address, options)
    source, source_size = _source(source_path)
    if size is None:
        if source_size is None:
            raise UsageError(f"create {address}", "--size is required", "or --from a regular file")
        size = source_size
        if size == 0:
            raise UsageError(f"create {address}", f"--from {source_path} is empty", "give --size")
    if source_size is not None and source_size > size:
        raise Conflict(f"create {address}", f"--from {source_path} has {source_size} bytes, more than --size {size}")

    def fill(handle):
        from .common import progress_bar
        with progress_bar(source_size, f"create {address}") as progress:  # source_size None: a pipe
            handle.receive(source, 0, size, progress)
        if source_size is None and source.read(1):  # a pipe with more than fits: refuse, never cut
            raise Conflict(f"create {address}", f"--from {source_path} has more than --size {size} bytes")

    options.size, options.fill, options.owner = size, fill if source is not None else None, _owner(owner)
    created = kinds.create(address, options, kinds.View())  # mmap:/dev/shm/NAME is the POSIX object NAME
    if dry_run:
        click.echo("\n".join(created.plan))
    else:
        _print_address(created)
    return Exit.OK


def _ipcmk_style(address, size, shmem):
    """-M SIZE (ipcmk -M): a SysV segment of SIZE, at `sysv` unless an address is given."""
    if shmem is not None:
        if size is not None and size != shmem:
            raise UsageError("create", "-M and --size give different sizes", "give one of them")
        if address is None:
            from ..address import parse_address
            from ..fields import IPCS_KINDS  # the kind ipcmk makes
            address = parse_address(IPCS_KINDS[0], allow_new=True)
        return address, shmem
    if address is None:
        raise UsageError("create", "missing ADDRESS", "e.g. shmctl create sysv --size 1M, or -M 1M")
    return address, size


def _owner(owner):
    if owner is None:
        return None
    from .list import resolve_user
    return resolve_user(owner)


def _print_address(created) -> None:
    """The address is the one thing the caller learns: if it cannot be written (stdout
    closed, full, or a reader gone), what was made is removed again, and that is an error."""
    import os
    import sys

    from ..address import printable
    from ..errors import ShmctlError, from_oserror
    try:
        if sys.stdout is not None:
            sys.stdout.flush()
        os.write(1, (printable(created.address) + "\n").encode())  # one write: nothing left for exit
    except OSError as exc:
        if created.undo is not None:
            created.undo()
            why = "removed it again: the caller could never learn its address"
        else:
            why = "the existing segment is left as it was"
        error = from_oserror(exc, f"create {created.address}: cannot write the address to stdout")
        raise ShmctlError(error.what, f"{error.why}; {why}") from None
