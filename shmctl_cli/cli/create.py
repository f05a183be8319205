"""shmctl create ADDRESS --size SIZE: a new segment, and its address on stdout."""
from __future__ import annotations

import click

from ..errors import Exit, UsageError
from .params import MODE, SIZE, AddressParam, SizeParam


def _sysv_key(address, key, ftok) -> int:
    from ..address import parse_key, parse_proj
    from ..syscalls import ftok as derive
    given = [x for x in (address.key or None, address.ftok, key, ftok) if x]
    if len(given) > 1:
        raise UsageError("create sysv", "give the key once: in the address, --key or --ftok")
    if ftok:
        path, sep, proj = ftok.rpartition(",")
        if not sep:
            raise UsageError(f"invalid --ftok '{ftok}'", "expected PATH,PROJ")
        return derive(path, parse_proj(proj))
    if address.ftok:
        return derive(*address.ftok)
    return parse_key(key) if key is not None else (address.key or 0)


def _check_kind_options(address, key, ftok, hugetlb, huge_size, lock, resize, overcommit=False) -> None:
    sysv_only = {"--key": key, "--ftok": ftok, "--hugetlb": hugetlb, "--huge-size": huge_size, "--lock": lock}
    if address.kind != "sysv":
        wrong = [name for name, value in sysv_only.items() if value]
        if wrong:
            hint = "for POSIX and mmap, shmctl attach --lock pins pages while it holds them" if lock else ""
            raise UsageError(f"create {address}", f"{wrong[0]} applies to SysV segments only", hint)
    elif resize:
        raise UsageError(f"create {address}", "a SysV segment cannot be resized", "remove it and create it anew")
    elif overcommit:
        raise UsageError(f"create {address}", "--overcommit applies to files on tmpfs and hugetlbfs",
                         "SysV segments are bounded by shmmax and shmall instead")
    if huge_size and not hugetlb:
        raise UsageError("create sysv", "--huge-size goes with --hugetlb")
    if huge_size and huge_size & (huge_size - 1):
        raise UsageError("create sysv", f"--huge-size {huge_size} is not a power of two", "e.g. 2M or 1G")
    if not address.is_new and address.kind == "sysv" and address.shmid is not None:
        raise UsageError(f"create {address}", "the kernel picks the shmid", "create sysv [--key KEY]")


def _source(path):
    """(file object, size) of --from; size None for a pipe."""
    from .common import open_source
    return open_source(path, f"--from {path}") if path is not None else (None, None)


@click.command("create")
@click.argument("address", type=AddressParam(allow_new=True))
@click.option("-s", "--size", type=SizeParam(minimum=1), help="Size: 4096, 64K, 1M, 1.5GiB (default: of --from).")
@click.option("--key", metavar="KEY", help="SysV key, any base (0 = IPC_PRIVATE).")
@click.option("--ftok", metavar="PATH,PROJ", help="SysV key derived by ftok(3).")
@click.option("--mode", type=MODE, default="0600", show_default=True, help="Permissions, octal.")
@click.option("--hugetlb", is_flag=True, help="SysV: back it with huge pages (SHM_HUGETLB).")
@click.option("--huge-size", type=SIZE, metavar="SIZE", help="Huge page size for --hugetlb: 2M or 1G.")
@click.option("--lock", is_flag=True, help="SysV: SHM_LOCK it, so its pages are never swapped.")
@click.option("--from", "source_path", metavar="FILE", help="Initial contents ('-' for stdin).")
@click.option("--exist-ok", is_flag=True,
              help="Use an existing segment of this address if it is the owner's, its mode no wider and its "
                   "size the one asked; else exit 5.")
@click.option("--larger-ok", is_flag=True, help="With --exist-ok: a larger existing segment will do too.")
@click.option("--owner", metavar="USER|UID",
              help="Owner of the new segment (root), and the owner an existing one must have for --exist-ok.")
@click.option("--resize", is_flag=True, help="POSIX/mmap: set an existing object to --size (shrinking needs --force).")
@click.option("--force", is_flag=True, help="Create even past the filesystem's free space; let --resize shrink.")
@click.option("--overcommit", is_flag=True,
              help="POSIX/mmap on tmpfs: create even if it and what sparse objects there already promise pass "
                   "the free space (a writer past it dies of SIGBUS).")
@click.option("--dry-run", is_flag=True, help="Say what would be created and which limits it meets.")
def create_command(address, size, key, ftok, mode, hugetlb, huge_size, lock, source_path, exist_ok, larger_ok,
                   owner, resize, force, overcommit, dry_run):
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
    from ..kinds.files import FileRequest

    _check_kind_options(address, key, ftok, hugetlb, huge_size, lock, resize, overcommit)
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
        handle.receive(source, 0, size)
        if source_size is None and source.read(1):  # a pipe with more than fits: refuse, never cut
            raise Conflict(f"create {address}", f"--from {source_path} has more than --size {size} bytes")

    fill_with = fill if source is not None else None
    owner_uid = _owner(owner)
    view = kinds.View()
    address = kinds.resolve(address, view)  # mmap:/dev/shm/NAME is the POSIX object NAME
    if address.kind == "sysv":
        from ..kinds.sysv import SysvRequest
        request = SysvRequest(_sysv_key(address, key, ftok), size, mode, hugetlb, huge_size, lock, exist_ok,
                              dry_run, fill_with, owner=owner_uid, larger_ok=larger_ok)
        created = kinds.kind_module("sysv").create(request, view)
    else:
        request = FileRequest(size, mode, exist_ok, resize, force, dry_run, fill_with, owner=owner_uid,
                              larger_ok=larger_ok, overcommit=overcommit)
        if address.kind == "posix":
            created = kinds.kind_module("posix").create(address.name, request, view)
        else:
            created = kinds.kind_module("mmap").create(address.path, request, view)
    if dry_run:
        click.echo("\n".join(created.plan))
    else:
        _print_address(created)
    return Exit.OK


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
