"""shmctl rm: remove segments, never one still in use unless --force, never many unasked."""
from __future__ import annotations

import os
import sys
from typing import List, Optional, Tuple

import click

from .. import KINDS
from ..errors import UsageError
from ..units import plural
from .output import line
from .params import (ADDRESS, DURATION, SHMID, SIZE, AddressWordParam, FileParam, complete_all_kinds,
                     complete_posix_names, complete_shm_keys, complete_shmids, complete_users)


IPCRM_WORDS = ("shm", "msg", "sem")  # util-linux's old syntax: ipcrm {shm|msg|sem} ID...


def _addresses(words) -> list:
    """The ADDRESS arguments; or, when the first is `shm`, ipcrm's old form `shm SHMID...`
    (`ipcrm shm 0 1` removes SysV shmids 0 and 1). msg and sem are not shared memory."""
    if not words or words[0] not in IPCRM_WORDS:
        return [ADDRESS.convert(word, None, None) for word in words]
    if words[0] != "shm":
        raise UsageError(f"rm {words[0]}", "shmctl handles shared memory only",
                         "use ipcrm for message queues and semaphores")
    if len(words) == 1:
        raise UsageError("rm shm", "ipcrm's form names shmids after shm", "e.g. shmctl rm shm 32769 32770")
    from ..address import Address
    return [Address.sysv_shmid(SHMID.convert(word, None, None)) for word in words[1:]]


def _explicit(addresses, shmids, keys, names) -> list:
    from ..address import Address, check_posix_name, parse_key, unescape
    targets = _addresses(addresses)
    targets += [Address.sysv_shmid(shmid) for shmid in shmids]
    targets += [Address.sysv_key(parse_key(key)) for key in keys]
    targets += [Address.posix(check_posix_name(unescape(name))) for name in names]  # as NAME prints it
    return targets


def _bulk(view, kinds_wanted, filters, orphans: bool, force: bool):
    """Segments chosen by --orphans or --all and the filters (kinds/cleanup.py)."""
    from ..kinds import cleanup
    return cleanup.select(view, kinds_wanted, orphans, filters, force)


def _filters(user, older_than, name_glob, min_size):
    from ..kinds.cleanup import Filters
    from .list import resolve_user
    uid = resolve_user(user) if user is not None else None
    return Filters(uid=uid, older_than=older_than, name=name_glob, min_size=min_size)


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
    for text in prompt_lines(segments):
        click.echo(text, err=True)
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


def _verbose(seg) -> None:
    """-v (ipcrm -v): what was removed, on stderr."""
    from ..kinds import user_name
    from ..units import format_size
    _note_about(seg.address, f"({seg.kind}, {format_size(seg.size)}, owner {user_name(seg.uid) or '-'})",
                "removed {} {}")


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


def _recheck(segments, notes: List[Tuple[str, str]]):
    """The segments as they are now, with a fresh look at their users: anything replaced or
    gone while the question was on the screen is left alone."""
    from .. import kinds
    from ..address import printable
    from ..errors import ShmctlError
    from ..kinds.cleanup import refind
    view = kinds.View()
    now = refind([printable(seg.address) for seg in segments], view)
    fresh = []
    for seg in segments:
        found = now[printable(seg.address)]
        if isinstance(found, ShmctlError):
            notes.append((seg.address, "went away while you were asked"))
        elif _identity(found) != _identity(seg):
            notes.append((seg.address, "changed while you were asked: left alone"))
        else:
            fresh.append(found)
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


FILTERS_HELP = ("Age is the time since the last use the kernel records: SysV, the last attach or detach "
                "(never attached: creation); files, the last write, read or mmap() (atime moves lazily, "
                "relatime; a mapping's loads and stores touch neither time).")


@click.command("rm", short_help="Remove segments by address, id, key, filter or plan.")
@click.argument("addresses", nargs=-1, type=AddressWordParam())
@click.option("-m", "--shmid", "shmids", type=SHMID, multiple=True, metavar="SHMID", shell_complete=complete_shmids,
              help="SysV segment by id (ipcrm -m).")
@click.option("-M", "--shmkey", "keys", multiple=True, metavar="KEY", shell_complete=complete_shm_keys, help="SysV segment by key (ipcrm -M).")
@click.option("--posix", "names", multiple=True, metavar="NAME", shell_complete=complete_posix_names, help="POSIX object by name.")
@click.option("--orphans", is_flag=True, help="Every orphan (see list --orphans); never a deleted object that "
                                             "processes still hold.")
@click.option("-a", "--all", "all_", is_flag=False, flag_value="", default=None, metavar="[KIND]",
              shell_complete=complete_all_kinds,
              help="Every segment (of --kind, of --user); --all=KIND only that kind: sysv (or shm, as ipcrm "
                   "says), posix or mmap.")
@click.option("-k", "--kind", "kinds_wanted", type=click.Choice(KINDS), multiple=True,
              help="With --orphans/--all: only this kind. Default: sysv and posix.")
@click.option("--user", metavar="NAME|UID", shell_complete=complete_users, help="With --orphans/--all: only this user's segments.")
@click.option("--older-than", type=DURATION, metavar="DURATION",
              help="With --orphans/--all: only segments last used at least this long ago (90s, 30m, 12h, 7d, "
                   "2w). " + FILTERS_HELP)
@click.option("--name", "name_glob", metavar="GLOB",
              help="With --orphans/--all: only names matching the shell pattern (case-sensitive; POSIX names "
                   "without their slash unless GLOB starts with /; mmap paths whole). SysV segments have no "
                   "name: none matches.")
@click.option("--min-size", type=SIZE, metavar="SIZE",
              help="With --orphans/--all: only segments at least this large (their size, not their RSS).")
@click.option("--plan", "plan_file", type=FileParam(), metavar="FILE|-",
              help="Remove what a plan (rm --dry-run --json, reviewed) lists, each only if it is still the "
                   "object the plan saw and nothing uses it: gone is exit 3, replaced, used since or in use 5.")
@click.option("-f", "--force", is_flag=True,
              help="Remove even what processes still use, or (--orphans/--all) may use unseen; "
                   "unlink a named mmap file on a disk filesystem. Never with --plan.")
@click.option("-y", "--yes", is_flag=True, help="Do not ask before removing (--all, --orphans, several).")
@click.option("--dry-run", is_flag=True, help="Say what would be removed, remove nothing.")
@click.option("-J", "--json", "as_json", is_flag=True,
              help="With --dry-run: the plan as JSON on stdout (what would be removed, with identities; what "
                   "is skipped and why), for review and rm --plan.")
@click.option("-q", "--quiet", is_flag=True, help="Do not print the removed addresses.")
@click.option("-v", "--verbose", is_flag=True,
              help="Say on stderr what each removal removed: address, kind, size, owner (ipcrm -v).")
def rm_command(addresses, shmids, keys, names, orphans, all_, kinds_wanted, user, older_than, name_glob, min_size,
               plan_file, force, yes, dry_run, as_json, quiet, verbose):
    """Remove segments: by address, ipcrm's -m/-M, --orphans or --all, or a reviewed --plan.
    ipcrm's old form works too: `shmctl rm shm SHMID...` (SysV shmids).

    Each removed address is printed, one per line. A segment still in use is refused (exit
    5, naming the pids) unless --force. Several segments are removed only after a yes on
    the terminal, or with --yes; --all and --orphans always ask on a terminal, even for
    one segment, and need --yes elsewhere. A declined question removes nothing (exit 1).
    When some fail, the rest are still removed and the exit code is the first failure's.

    Cleanup policies: --older-than, --name, --min-size and --user narrow --orphans/--all
    (e.g. rm --orphans --older-than 1d --yes, as contrib/shmctl-cleanup.timer runs it daily).
    An object in use is never removed by them, whatever its age. rm --dry-run --json writes
    the plan; rm --plan FILE applies it after review, each entry only while it is still the
    object planned (same inode or shmid, same ctime), unused since and unused now.

    An mmap file on a disk filesystem (a database mapped MAP_SHARED) is not shared memory:
    --orphans and --all skip it with a note, and removing it by address needs --force.
    Paths are followed through no symlink, and a name is unlinked only while it still is
    the file that was found.
    """
    from .. import kinds
    from ..errors import ShmctlError

    explicit = _explicit(addresses, shmids, keys, names)
    all_kinds = all_kind(all_)
    if orphans and all_kinds is not None:  # ipcrm -a removes all: --orphans would silently narrow it
        raise UsageError("rm", "--all conflicts with --orphans", "--all removes every segment, --orphans the orphans")
    bulk = orphans or all_kinds is not None
    _check_usage(explicit, bulk, kinds_wanted, user, older_than, name_glob, min_size, plan_file, force, dry_run,
                 as_json)
    filters = _filters(user, older_than, name_glob, min_size)
    view = kinds.View()
    failures: List[ShmctlError] = []
    skipped: List[Tuple[str, str]] = []
    if plan_file is not None:
        segments = _planned(plan_file, view, failures, skipped)
    elif bulk:
        wanted = list(dict.fromkeys(list(kinds_wanted) + (all_kinds or []))) or kinds.bulk_kinds()
        segments = _chosen(view, wanted, filters, orphans, force, skipped)
    else:
        segments = _found(explicit, view, failures, skipped)
    if not segments and (bulk or plan_file is not None) and not as_json:
        note("nothing to remove")
        return failures[0].exit_code if failures else 0
    if not dry_run and _confirm(segments, yes, bulk):
        notes: List[Tuple[str, str]] = []
        segments, view = _recheck(segments, notes)
        for address, why in notes:
            _note_about(address, why)
    removed = _remove_all(segments, view, force, dry_run, quiet, verbose, failures, skipped,
                          printing=not as_json)
    if as_json:
        from ..kinds.cleanup import plan_json
        click.echo(plan_json(removed, skipped, filters.now), nl=False)
    return failures[0].exit_code if failures else 0


def _check_usage(explicit, bulk, kinds_wanted, user, older_than, name_glob, min_size, plan_file, force, dry_run,
                 as_json) -> None:
    if as_json and not dry_run:
        raise UsageError("rm --json", "the JSON is the plan of a dry run", "add --dry-run")
    narrowing = [flag for flag, value in (("--older-than", older_than), ("--name", name_glob),
                                          ("--min-size", min_size)) if value is not None]
    if plan_file is not None:
        if explicit or bulk or kinds_wanted or user or narrowing:
            raise UsageError("rm --plan", "a plan names its segments itself",
                             "give no addresses, --orphans/--all or filters with it")
        if force:
            raise UsageError("rm --plan", "--force does not apply: a plan removes nothing in use")
        return
    if bool(explicit) == bulk:
        raise UsageError("rm", "name segments, or choose --orphans or --all" if not explicit
                         else "give addresses or --orphans/--all, not both")
    if (kinds_wanted or user) and not bulk:
        raise UsageError("rm", "--kind and --user choose among --orphans/--all")
    if narrowing and not bulk:
        raise UsageError("rm", f"{narrowing[0]} chooses among --orphans/--all", "add --orphans or --all")


def note(text: str) -> None:
    from .output import note as say
    say(text)


UNSEEN_WHY = "may be in use unseen (--force removes it anyway)"


def _chosen(view, wanted, filters, orphans, force, skipped) -> list:
    """What --orphans/--all chose; a line for each segment passed over, and which processes
    were hidden said once, after them (not on every line: the plan's JSON keeps each why whole)."""
    from .output import note_hidden
    selection = _bulk(view, wanted, filters, orphans, force)
    unseen = set(selection.unseen_skipped)
    for address, why in selection.skipped:
        _note_about(address, UNSEEN_WHY if address in unseen else why, "skipped {}: {}")
    skipped += selection.skipped
    if selection.unseen:
        note_hidden(view.maps.hidden_pids)
    return selection.chosen


def _note_removed(seg, message: str) -> None:
    """The kind's word on a segment removed while in use, its address as `list` prints it."""
    head = f"{seg.address} "
    if message.startswith(head):
        _note_about(seg.address, message[len(head):], "{} {}")
    else:
        note(message)


def _note_about(address, why: str, form: str = "{}: {}") -> None:
    """A note naming a segment by its address as `list` prints it (white space escaped too),
    so that it can be pasted back; the rest of the line escaped as every note is."""
    from ..address import printable
    sys.stdout.flush()
    click.echo("shmctl: " + form.format(printable(str(address), space=True), printable(why)), err=True)


def _found(explicit, view, failures, skipped) -> list:
    """The named segments; an error noted (and kept for the exit code) for each not found."""
    from .. import kinds
    from ..errors import ShmctlError
    segments = []
    for address in explicit:
        try:
            segments.append(kinds.find(address, view))
        except ShmctlError as exc:
            _failed(exc, failures, skipped)
    _note_unseen(segments, view)
    return segments


def _planned(plan_file: str, view, failures, skipped) -> list:
    """The plan's segments that are still the objects it saw (kinds/cleanup.py)."""
    from ..kinds import cleanup
    where = "rm --plan " + ("-" if plan_file == "-" else plan_file)
    entries = cleanup.read_plan(_read_plan(plan_file, where), where)
    segments, errors = cleanup.current(entries, view)
    for exc in errors:
        _failed(exc, failures, skipped)
    _note_unseen(segments, view)
    return segments


def _note_unseen(segments, view) -> None:
    """Named segments whose users only the processes tell, while some are hidden from a user
    who is not root: said once (root's own blind spots were the plan's or the caller's to see)."""
    from .. import kinds
    from .output import note_hidden
    unsure = [s for s in segments if not kinds.kind(s.kind).kernel_counts_users]
    if unsure and view.maps.hidden and os.geteuid() != 0:
        note_hidden(view.maps.hidden_pids)


def _read_plan(plan_file: str, where: str) -> str:
    """The plan's text: stdin for `-`; a file opened with no symlink followed, that only its
    reader (or root) owns and nobody else may write: a plan says what root removes."""
    import errno
    import stat
    if plan_file == "-":
        return click.get_text_stream("stdin").read()
    try:
        fd = os.open(plan_file, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):
            from ..errors import PermissionDenied
            raise PermissionDenied(where, "permission denied") from None
        if exc.errno == errno.ELOOP:
            raise UsageError(where, "a symlink (not followed)") from None
        from ..errors import local_error
        raise local_error(exc, where) from None  # missing: 2; anything else: 1
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # before fdopen, which fails on a directory naming only the fd
        os.close(fd)
        from ..errors import ShmctlError
        raise ShmctlError(where, "is a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file",
                          "give the plan file that rm --dry-run --json wrote")
    with os.fdopen(fd, "rb") as f:
        if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
            raise UsageError(where, "another user owns it or may write it", "a plan must be yours alone")
        return f.read().decode("utf-8", "replace")


def _failed(exc, failures, skipped) -> None:
    """A segment not removed: noted on stderr, kept for the exit code and the plan's "skipped"."""
    failures.append(exc)
    note(str(exc))
    why = exc.why + (f" ({exc.hint})" if exc.hint else "")
    skipped.append((exc.what, why))


def _remove_all(segments, view, force, dry_run, quiet, verbose, failures, skipped, printing=True) -> list:
    """Remove each (or, dry, check each); the ones that were (or would be) removed."""
    from ..address import printable
    from ..errors import ShmctlError
    removed = []
    for seg in segments:
        try:
            message = _remove_one(seg, view, force, dry_run)
        except ShmctlError as exc:
            _failed(exc, failures, skipped)
            continue
        removed.append(seg)
        if message and not dry_run:
            _note_removed(seg, message)
        if dry_run and printing:
            line(f"would remove {printable(seg.address)}")
        elif not dry_run and not quiet:
            line(printable(seg.address))
        if verbose and not dry_run:
            _verbose(seg)
    return removed
