"""rm's cleanup policies: which segments --orphans/--all choose with the filters (--user,
--older-than, --name, --min-size), the plan `rm --dry-run --json` prints, and reading a
plan back for `rm --plan`, every entry found again and checked to be the very object the
plan saw. The removal itself, with every check any rm makes, stays rm's."""
from __future__ import annotations

import json
import time
from fnmatch import fnmatchcase
from typing import Any, Dict, List, Optional, Tuple, Union

from ..address import printable
from ..errors import Conflict, NotFound, ShmctlError, UsageError
from ..model import Segment
from ..system import View, user_name
from ..units import plural
from . import collect, find, kind

# a plan of more entries than this is checked against one collect, not one find each
COLLECT_FROM = 8


class Filters:
    """What --user, --older-than, --name and --min-size ask; None: not asked."""

    def __init__(self, uid: Optional[int] = None, older_than: Optional[float] = None,
                 name: Optional[str] = None, min_size: Optional[int] = None, now: Optional[float] = None):
        self.uid, self.older_than, self.name, self.min_size = uid, older_than, name, min_size
        self.now = time.time() if now is None else now

    def matches(self, seg: Segment) -> bool:
        if self.uid is not None and seg.uid != self.uid:
            return False
        if self.min_size is not None and seg.size < self.min_size:
            return False
        if self.name is not None:
            subject = kind(seg.kind).glob_subject(seg, self.name)
            if subject is None or not fnmatchcase(subject, self.name):
                return False
        if self.older_than is not None:
            age = age_of(seg, self.now)
            if age is None or age < self.older_than:
                return False
        return True


def last_used(seg: Segment) -> Optional[int]:
    return kind(seg.kind).last_used(seg)


def age_of(seg: Segment, now: float) -> Optional[float]:
    """Seconds since the segment's last use (never negative: clocks step), None if unknown."""
    used = last_used(seg)
    return None if used is None else max(now - used, 0.0)


class Selection:
    """What --orphans/--all chose, and what they passed over: (address, why) each."""

    def __init__(self):
        self.chosen: List[Segment] = []
        self.skipped: List[Tuple[str, str]] = []
        self.unseen = False  # something was skipped because processes are hidden
        self.unseen_skipped: List[str] = []  # the addresses skipped for that: rm says why once


def select(view: View, kinds_wanted: List[str], orphans: bool, filters: Filters, force: bool) -> Selection:
    """The segments of the wanted kinds that the filters choose. When some processes are hidden
    (other users' without root; more privileged ones even from root), an object whose users
    the kernel does not count may be in use unseen: skipped, not guessed at, unless `force`.
    SysV's nattch comes from the kernel: certain."""
    inv = collect(kinds_wanted, view, processes=True)
    out = Selection()
    for seg in inv.segments:
        if (orphans and not seg.orphan) or seg.semaphore or not filters.matches(seg):
            continue
        why = skip_reason(seg, view)
        unseen = None if why or force else unseen_users(seg, view)
        if unseen:
            why = f"{unseen} (--force removes it anyway)"
            out.unseen = True
            out.unseen_skipped.append(seg.address)
        if why:
            out.skipped.append((seg.address, why))
        else:
            out.chosen.append(seg)
    return out


def skip_reason(seg: Segment, view: View) -> Optional[str]:
    """Why a cleanup passes over a segment that a filter chose, or None."""
    if seg.deleted:  # never an orphan: it lives exactly as long as the processes holding it
        return (f"deleted, no name left to remove; freed when {plural(len(seg.pids), 'process')} "
                f"({', '.join(map(str, seg.pids))}) let go")
    what = kind(seg.kind).not_shared_memory(seg, view)
    if what:  # a database that processes map MAP_SHARED: never a segment to clean up in bulk
        return f"{what} (remove it by its address with --force)"
    return None


def unseen_users(seg: Segment, view: View) -> Optional[str]:
    """Why whether the segment is in use cannot be told (its kind's users are seen only in
    the processes, and some are hidden), or None."""
    hidden = view.maps.hidden
    if not (kind(seg.kind).unsure_when_hidden and hidden):
        return None
    import os
    who = "run as root" if os.geteuid() != 0 else "more privileged than this root"
    return f"{plural(hidden, 'process')} not visible ({who}), so whether it is in use cannot be told"


# --- the plan: `rm --dry-run --json` writes it, `rm --plan` reads it ---

def identity(seg: Segment) -> Dict[str, Any]:
    """What makes the object the one that was seen: a name re-created since, or a SysV id
    reused, has another inode or ctime."""
    return {"kind": seg.kind, "id": seg.id, "device": seg.device, "ctime": seg.ctime}


def _iso(epoch: Optional[int]) -> Optional[str]:
    from ..units import format_time
    return format_time(epoch, form="iso") if epoch else None


def plan_entry(seg: Segment, now: float) -> Dict[str, Any]:
    used = last_used(seg)
    age = age_of(seg, now)
    return {"address": printable(seg.address), "kind": seg.kind, "id": seg.id,
            "name": None if seg.name is None else printable(seg.name), "size": seg.size,
            "owner": None if seg.uid is None else printable(user_name(seg.uid)), "uid": seg.uid,
            "last_used": _iso(used), "age_seconds": None if age is None else int(age),
            "identity": identity(seg)}


def plan_json(segments: List[Segment], skipped: List[Tuple[str, str]], now: float) -> str:
    plan = {"plan": [plan_entry(s, now) for s in segments],
            "skipped": [{"address": printable(a), "why": printable(why)} for a, why in skipped]}
    return json.dumps(plan, indent=2) + "\n"


class PlanEntry:
    """One entry of a plan read back: its address (as printed), parsed, and the identity and
    last use the plan saw."""

    def __init__(self, text: str, address, identity: Dict[str, Any], last_used: Optional[int],
                 reviewed: Optional[Dict[str, Any]] = None):
        self.text, self.address, self.identity, self.last_used = text, address, identity, last_used
        # the owner and size the reviewer read: a SysV id reused within the ctime's second
        # (shm_next_id, a wrapped sequence) by another user's or a larger segment is not it
        self.reviewed = reviewed or {}

    def is_reviewed(self, seg: Segment) -> bool:
        return identity(seg) == self.identity and all(getattr(seg, k) == v for k, v in self.reviewed.items())


_IDENTITY_TYPES = {"kind": (str,), "id": (int,), "device": (int, type(None)), "ctime": (int,)}


def read_plan(text: str, where: str) -> List[PlanEntry]:
    """The entries of a plan; UsageError naming the first thing wrong with it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(where, f"not JSON: {exc}", "give what rm --dry-run --json printed") from None
    if not isinstance(data, dict) or not isinstance(data.get("plan"), list):
        raise UsageError(where, 'no "plan" list in it', "give what rm --dry-run --json printed")
    entries, seen = [], set()
    for n, item in enumerate(data["plan"], 1):
        entry = _entry(item, f"{where}: entry {n}")
        if entry.text in seen:
            raise UsageError(f"{where}: entry {n}", f"{entry.text} is in the plan twice")
        seen.add(entry.text)
        entries.append(entry)
    return entries


def _entry(item, where: str) -> PlanEntry:
    from ..address import parse_address
    if not isinstance(item, dict):
        raise UsageError(where, "not an object")
    text = item.get("address")
    if not isinstance(text, str):
        raise UsageError(where, '"address" is missing or not a string')
    try:
        address = parse_address(text)
    except UsageError as exc:
        raise UsageError(where, str(exc)) from None
    ident = item.get("identity")
    if not isinstance(ident, dict):
        raise UsageError(where, f'{text} has no "identity": the plan never saw it', "make the plan with "
                         "rm --dry-run --json")
    for key, types in _IDENTITY_TYPES.items():
        value = ident.get(key)
        if not isinstance(value, types) or isinstance(value, bool):
            raise UsageError(where, f'identity "{key}" of {text} is missing or of the wrong type')
    if ident["kind"] != address.kind or (address.shmid is not None and address.shmid != ident["id"]):
        raise UsageError(where, f"the identity of {text} is not of that address")
    return PlanEntry(text, address, {k: ident[k] for k in _IDENTITY_TYPES}, _epoch(item.get("last_used"), where),
                     _reviewed(item, text, where))


def _reviewed(item: Dict[str, Any], text: str, where: str) -> Dict[str, Any]:
    """The plan's "uid" and "size" of the entry (every plan rm writes has both), checked again."""
    reviewed = {}
    for key, nullable in (("uid", True), ("size", False)):
        if key not in item:
            continue
        value = item[key]
        if not (value is None and nullable) and (not isinstance(value, int) or isinstance(value, bool)):
            raise UsageError(where, f'"{key}" of {text} is of the wrong type')
        reviewed[key] = value
    return reviewed


def _epoch(text, where: str) -> Optional[int]:
    """The plan's ISO 8601 last_used back in epoch seconds (None: unknown)."""
    if text is None:
        return None
    from datetime import datetime
    try:
        moment = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise UsageError(where, '"last_used" is not an ISO 8601 time with its offset')
    return int(moment.timestamp())


def refind(addresses: List[str], view: View) -> Dict[str, Union[Segment, ShmctlError]]:
    """Each address (as printed) found again, as it is now: a segment, or the error saying why
    not. Many are found by one collect of their kinds, not one find (one read of
    /proc/sysvipc/shm) each; what that does not list (other namespaces, files by path) by find."""
    from ..address import parse_address
    parsed = {text: parse_address(text) for text in addresses}
    listed: Dict[str, Segment] = {}
    if len(addresses) > COLLECT_FROM:
        wanted = sorted({a.kind for a in parsed.values()})
        listed = {printable(s.address): s for s in collect(wanted, view, processes=True).segments}
    found: Dict[str, Union[Segment, ShmctlError]] = {}
    for text, address in parsed.items():
        try:
            found[text] = listed[text] if text in listed else find(address, view)
        except ShmctlError as exc:
            found[text] = exc
    return found


def current(entries: List[PlanEntry], view: View) -> Tuple[List[Segment], List[ShmctlError]]:
    """The plan's segments that are still what the plan saw, and an error for each that is
    not: gone (NotFound, 3), another object at its address now, or used since the plan
    (Conflict, 5). In use now is rm's own refusal, as for any address; whether hidden
    processes may use it was the plan's to decide (rm --dry-run skips such objects unless
    --force)."""
    found = refind([e.text for e in entries], view)
    fresh, errors = [], []
    for entry in entries:
        seg = found[entry.text]
        if isinstance(seg, NotFound):
            errors.append(NotFound(entry.text, seg.why or "gone", "gone since the plan was made"))
        elif isinstance(seg, ShmctlError):
            errors.append(seg)
        elif not entry.is_reviewed(seg):
            errors.append(Conflict(entry.text, "another object has that address since the plan was made",
                                   "left alone; make a new plan"))
        elif entry.last_used is not None and (last_used(seg) or 0) > entry.last_used:
            errors.append(Conflict(entry.text, "used since the plan was made", "left alone; make a new plan"))
        else:
            fresh.append(seg)
    return fresh, errors
