"""shmctl rm: remove segments, never one still in use unless --force, never many unasked."""
from __future__ import annotations

import os
import sys
from typing import List, Optional, Tuple

import click

from .. import KINDS
from ..errors import UsageError
from ..units import plural
from .params import ADDRESS, SHMID, complete_users


def _explicit(addresses, shmids, keys, names) -> list:
    from ..address import Address, check_posix_name, parse_key, unescape
    targets = list(addresses)
    targets += [Address.sysv_shmid(shmid) for shmid in shmids]
    targets += [Address.sysv_key(parse_key(key)) for key in keys]
    targets += [Address.posix(check_posix_name(unescape(name))) for name in names]  # as NAME prints it
    return targets


def _bulk(view, kinds_wanted, user, orphans: bool, force: bool) -> Tuple[list, List[str], bool]:
    """Segments chosen by --orphans or --all, and notes on what was skipped and why. When some
    processes are hidden (other users' without root; more privileged ones even from root),
    a POSIX object that looks unused may not be: it is skipped, not guessed at, unless
    --force. SysV's nattch comes from the kernel: certain."""
    from .. import kinds
    from .list import resolve_user
    inv = kinds.collect(kinds_wanted, view, processes=True)
    uid = resolve_user(user) if user is not None else None
    hidden = view.maps.hidden if not force else 0
    why = "run as root" if os.geteuid() != 0 else "more privileged than this root"
    chosen, notes, skipped_unseen = [], [], False
    for seg in inv.segments:
        if (uid is not None and seg.uid != uid) or (orphans and not seg.orphan) or seg.semaphore:
            continue
        if seg.deleted:  # never an orphan: it lives exactly as long as the processes holding it
            notes.append(f"skipped {seg.address}: deleted, no name left to remove; freed when "
                         f"{plural(len(seg.pids), 'process')} ({', '.join(map(str, seg.pids))}) let go")
            continue
        kind = kinds.kind(seg.kind)
        what = kind.not_shared_memory(seg, view)
        if what:  # a database that processes map MAP_SHARED: never a segment to clean up in bulk
            notes.append(f"skipped {seg.address}: {what} (remove it by its address with --force)")
            continue
        if kind.unsure_when_hidden and hidden:
            notes.append(f"skipped {seg.address}: {plural(hidden, 'process')} not visible ({why}), so whether "
                         "it is in use cannot be told (--force removes it anyway)")
            skipped_unseen = True
            continue
        chosen.append(seg)
    return chosen, notes, skipped_unseen


def _confirm(segments, yes: bool, filtered: bool) -> bool:
    """True when a person was asked (and said yes): what they saw must be checked again.
    A selection made by a filter (--all, --orphans) is asked about whatever its size; named
    addresses only when there are several."""
    if yes or not segments or (not filtered and len(segments) <= 1):
        return False
    if not sys.stdin.isatty():
        chosen = f"{plural(len(segments), 'segment')} chosen" + (" by --all/--orphans" if filtered else "")
        raise UsageError("rm", f"{chosen} and no terminal to ask", "add --yes")
    click.echo(f"about to remove {plural(len(segments), 'segment')}:", err=True)
    for line in prompt_lines(segments):
        click.echo(line, err=True)
    try:
        agreed = click.confirm("remove them?" if len(segments) > 1 else "remove it?", err=True)
    except click.exceptions.Abort:  # end of input, or ^C at the question: no
        click.echo("", err=True)
        agreed = False
    if not agreed:
        from ..errors import ShmctlError
        raise ShmctlError("rm", "nothing removed (declined)")
    return True


def prompt_lines(segments) -> List[str]:
    """`  ADDRESS  SIZE  owner NAME  nattch N`, sizes human and columns aligned."""
    from ..address import printable
    from ..kinds import user_name
    from ..units import format_size
    rows = [(printable(s.address), format_size(s.size), user_name(s.uid) or "-", _nattch(s)) for s in segments]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"  {a:<{widths[0]}}  {z:>{widths[1]}}  owner {o:<{widths[2]}}  nattch {n}" for a, z, o, n in rows]


def _nattch(seg) -> str:
    if seg.nattch is None:
        return "-"
    return f"{seg.nattch}+" if seg.nattch_unsure else str(seg.nattch)


def _verbose(seg) -> str:
    """-v (ipcrm -v): what was removed, on stderr."""
    from ..kinds import user_name
    from ..units import format_size
    return f"removed {seg.address} ({seg.kind}, {format_size(seg.size)}, owner {user_name(seg.uid) or '-'})"


ALL_KINDS_WORDS = {"shm": "sysv"}  # ipcrm's words


def all_kind(value: Optional[str]) -> Optional[List[str]]:
    """--all[=KIND]: None when not given, [] for every kind, else the kind (ipcrm's `shm` is sysv)."""
    if value is None:
        return None
    if value == "":
        return []
    kind = ALL_KINDS_WORDS.get(value, value)
    if value in ("msg", "sem"):
        raise UsageError(f"rm --all={value}", "shmctl handles shared memory only", "use ipcrm for message "
                         "queues and semaphores")
    if kind not in KINDS:
        raise UsageError(f"rm --all={value}", "unknown kind", "one of " + ", ".join(KINDS) + ", or shm (sysv)")
    return [kind]


def _identity(seg) -> tuple:
    return seg.kind, seg.id, seg.device, seg.ctime


def _recheck(segments, notes: List[str]):
    """The segments as they are now, with a fresh look at their users: anything replaced or
    gone while the question was on the screen is left alone."""
    from .. import kinds
    from ..address import parse_address, printable
    from ..errors import ShmctlError
    view = kinds.View()
    fresh = []
    for seg in segments:
        try:
            now = kinds.find(parse_address(printable(seg.address)), view)  # the form parse_address reads
        except ShmctlError:
            notes.append(f"{seg.address} went away while you were asked")
            continue
        if _identity(now) != _identity(seg):
            notes.append(f"{seg.address} changed while you were asked: left alone")
            continue
        fresh.append(now)
    return fresh, view


def _remove_one(seg, view, force: bool, dry_run: bool) -> str:
    """Remove one segment; returns a note for stderr (or "")."""
    from .. import kinds
    from ..errors import Conflict
    kind = kinds.kind(seg.kind)
    view = kinds.segment_view(seg, view)  # an object of another namespace is removed from there
    users = kind.users(seg, view)
    in_use = kind.in_use(seg, users)
    kind.check_removable(seg)  # nothing to unlink: said before anything else
    what = kind.not_shared_memory(seg, view)
    if what and not force:
        raise Conflict(seg.address, what, "--force unlinks it")
    if in_use and not force:
        raise kind.in_use_refusal(seg, users, view)
    if not dry_run:
        kind.remove(seg, view)
    return kind.removed_note(seg, in_use) if in_use else ""


@click.command("rm")
@click.argument("addresses", nargs=-1, type=ADDRESS)
@click.option("-m", "--shmid", "shmids", type=SHMID, multiple=True, metavar="SHMID",
              help="SysV segment by id (ipcrm -m).")
@click.option("-M", "--shmkey", "keys", multiple=True, metavar="KEY", help="SysV segment by key (ipcrm -M).")
@click.option("--posix", "names", multiple=True, metavar="NAME", help="POSIX object by name.")
@click.option("--orphans", is_flag=True, help="Every orphan (see list --orphans); never a deleted object that "
                                             "processes still hold.")
@click.option("-a", "--all", "all_", is_flag=False, flag_value="", default=None, metavar="[KIND]",
              help="Every segment (of --kind, of --user); --all=KIND only that kind: sysv (or shm, as ipcrm "
                   "says), posix or mmap.")
@click.option("-k", "--kind", "kinds_wanted", type=click.Choice(KINDS), multiple=True,
              help="With --orphans/--all: only this kind. Default: sysv and posix.")
@click.option("--user", metavar="NAME|UID", shell_complete=complete_users, help="With --orphans/--all: only this user's segments.")
@click.option("-f", "--force", is_flag=True,
              help="Remove even what processes still use, or (--orphans/--all) may use unseen; "
                   "unlink a named mmap file on a disk filesystem.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing (--all, --orphans, several).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the removed addresses.")
@click.option("-v", "--verbose", is_flag=True,
              help="Say on stderr what each removal removed: address, kind, size, owner (ipcrm -v).")
def rm_command(addresses, shmids, keys, names, orphans, all_, kinds_wanted, user, force, yes, dry_run, quiet,
               verbose):
    """Remove segments: by address, ipcrm's -m/-M, --orphans or --all.

    Each removed address is printed, one per line. A segment still in use is refused (exit
    5, naming the pids) unless --force. Several segments are removed only after a yes on
    the terminal, or with --yes; --all and --orphans always ask on a terminal, even for
    one segment, and need --yes elsewhere. A declined question removes nothing (exit 1).
    When some fail, the rest are still removed and the exit code is the first failure's.

    An mmap file on a disk filesystem (a database mapped MAP_SHARED) is not shared memory:
    --orphans and --all skip it with a note, and removing it by address needs --force.
    Paths are followed through no symlink, and a name is unlinked only while it still is
    the file that was found.
    """
    from .. import kinds
    from ..address import printable
    from ..errors import ShmctlError
    from .output import note, note_hidden

    explicit = _explicit(addresses, shmids, keys, names)
    all_kinds = all_kind(all_)
    bulk = orphans or all_kinds is not None
    if bool(explicit) == bulk:
        raise UsageError("rm", "name segments, or choose --orphans or --all" if not explicit
                     else "give addresses or --orphans/--all, not both")
    if (kinds_wanted or user) and not bulk:
        raise UsageError("rm", "--kind and --user choose among --orphans/--all")
    view = kinds.View()
    failures: List[ShmctlError] = []
    if bulk:
        wanted = list(dict.fromkeys(list(kinds_wanted) + (all_kinds or []))) or kinds.bulk_kinds()
        segments, notes, skipped_unseen = _bulk(view, wanted, user, orphans, force)
        for text in notes:
            note(text)
        if skipped_unseen:
            note_hidden(view.maps.hidden_pids)
        if not segments:
            note("nothing to remove")
            return failures[0].exit_code if failures else 0
    else:
        segments = []
        for address in explicit:
            try:
                segments.append(kinds.find(address, view))
            except ShmctlError as exc:
                failures.append(exc)
                note(str(exc))
        unsure = [s for s in segments if not kinds.kind(s.kind).kernel_counts_users]
        if unsure and view.maps.hidden and os.geteuid() != 0:
            note_hidden(view.maps.hidden_pids)
    if not dry_run and _confirm(segments, yes, bulk):
        notes: List[str] = []
        segments, view = _recheck(segments, notes)
        for text in notes:
            note(text)
    for seg in segments:
        try:
            message = _remove_one(seg, view, force, dry_run)
        except ShmctlError as exc:
            failures.append(exc)
            note(str(exc))
            continue
        if message and not dry_run:
            note(message)
        if dry_run:
            click.echo(f"would remove {printable(seg.address)}")
        elif not quiet:
            click.echo(printable(seg.address))
        if verbose and not dry_run:
            note(_verbose(seg))
    return failures[0].exit_code if failures else 0
