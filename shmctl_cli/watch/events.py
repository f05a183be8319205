"""Two snapshots of the segments -> the events between them, as the JSON objects that
`watch --events` prints (keys in the contract's order). Pure: the clock, user names, process
names and what fanotify said come in through a Context.

What each kind can tell:
- sysv: nattch, lpid, atime and dtime from /proc/sysvipc/shm (the kernel's own count), the
  pids from the maps scan; `by` of an attach or detach is lpid (the last shmat/shmdt), of a
  creation cpid; a removal or an IPC_RMID names nobody (the kernel keeps no such pid).
- posix: the name, size and inode from /dev/shm, the pids from the maps scan (and open fds);
  `by` of a creation, removal or resize is the pid fanotify reported, where it works.
- mmap: exists only while mapped: first seen = created, last let go = removed.
"""
from __future__ import annotations

from typing import Callable, Dict, Hashable, Iterable, List, Optional, Tuple

from ..address import printable
from ..model import Segment
from ..units import format_time

CHANGES = ("created", "removed", "resized", "attached", "detached", "marked")

Key = Tuple[Hashable, ...]
Snapshot = Dict[Key, Segment]


def identity(seg: Segment) -> Key:
    """What stays the same while a segment lives: a shmid in its IPC namespace; an inode on its
    device. A POSIX object unlinked while mapped keeps its identity (its address changes)."""
    if seg.kind == "sysv":
        return ("sysv", seg.namespace, seg.id)
    return (seg.kind, seg.device, seg.id)


def snapshot(segments: Iterable[Segment]) -> Snapshot:
    return {identity(s): s for s in segments}


class Context:
    """What the diff may ask: the time of the new snapshot, user and process names, and
    `actor(change, segment)`: who made a change, as notifications told (None: unknown)."""

    def __init__(self, now: float, user_name: Callable[[Optional[int]], Optional[str]] = str,
                 comm: Callable[[int], Optional[str]] = lambda pid: None,
                 actor: Callable[[str, Segment], Optional[dict]] = lambda change, seg: None):
        self.now, self.user_name, self.comm, self.actor = now, user_name, comm, actor

    def by(self, pid: Optional[int], source: str) -> Optional[dict]:
        if not pid:  # 0: a pid outside our PID namespace
            return None
        return by_dict(pid, self.comm(pid), source)


def by_dict(pid: int, comm: Optional[str], source: str) -> dict:
    return {"pid": pid, "comm": None if comm is None else printable(comm), "source": source}


def event(change: str, seg: Segment, ctx: Context, pids: Iterable[int], by: Optional[dict] = None,
          old_size: Optional[int] = None) -> dict:
    """One event, keys in the contract's order."""
    data = {"time": format_time(ctx.now, form="iso"), "event": change, "address": printable(seg.address),
            "kind": seg.kind, "name": None if seg.name is None else printable(seg.name), "size": seg.size}
    if change == "resized":
        data["old_size"] = old_size
    owner = None if seg.uid is None else (ctx.user_name(seg.uid) or str(seg.uid))
    data.update(owner=None if owner is None else printable(owner), uid=seg.uid, nattch=seg.nattch,
                pids=sorted(set(pids)), by=by)
    return data


def diff(old: Snapshot, new: Snapshot, ctx: Context) -> List[dict]:
    """The events that turn `old` into `new`: removals first, then creations, then the
    changes of segments in both, each group in the snapshots' order."""
    events = [e for key, seg in old.items() if key not in new for e in _gone(seg, ctx)]
    events += [_created(seg, ctx) for key, seg in new.items() if key not in old]
    for key, seg in new.items():
        if key in old:
            events += changed(old[key], seg, ctx)
    return events


def _created(seg: Segment, ctx: Context) -> dict:
    if seg.kind == "sysv":
        by = ctx.by(seg.cpid, "cpid")
    else:
        by = ctx.actor("created", seg) or _scan_actor(seg.pids, ctx)
    return event("created", seg, ctx, seg.pids, by)


def _gone(seg: Segment, ctx: Context) -> List[dict]:
    if seg.deleted and seg.kind == "posix":
        # its name was already reported removed; now the last holder let go and it is freed
        return [event("detached", seg, ctx, seg.pids, _scan_actor(seg.pids, ctx))]
    by = None if seg.kind == "sysv" else ctx.actor("removed", seg)
    return [event("removed", seg, ctx, seg.pids, by)]


def changed(old: Segment, new: Segment, ctx: Context) -> List[dict]:
    events = []
    if new.kind == "posix" and new.deleted and not old.deleted:  # unlinked, still held
        events.append(event("removed", old, ctx, new.pids, ctx.actor("removed", old)))
    if new.kind == "posix" and old.deleted and not new.deleted:
        # linked: a file made unnamed (O_TMPFILE, as `shmctl create` makes them) got its name,
        # whole; its size as it was being made is no change of the named object's
        events.append(_created(new, ctx))
    elif new.size != old.size:
        events.append(event("resized", new, ctx, new.pids, ctx.actor("resized", new), old_size=old.size))
    events += (_sysv_attachments if new.kind == "sysv" else _scanned_attachments)(old, new, ctx)
    if new.dest and not old.dest:
        events.append(event("marked", new, ctx, new.pids))
    return events


def _scan_actor(pids: Iterable[int], ctx: Context) -> Optional[dict]:
    pids = sorted(set(pids))
    return ctx.by(pids[0], "scan") if len(pids) == 1 else None


def _scanned_attachments(old: Segment, new: Segment, ctx: Context) -> List[dict]:
    """posix and mmap: the maps scan's pids, before and after."""
    before, after = set(old.pids), set(new.pids)
    events = []
    if before - after:
        events.append(event("detached", new, ctx, before - after, _scan_actor(before - after, ctx)))
    if after - before:
        events.append(event("attached", new, ctx, after - before, _scan_actor(after - before, ctx)))
    return events


def _sysv_attachments(old: Segment, new: Segment, ctx: Context) -> List[dict]:
    """The kernel's nattch, atime, dtime and lpid, and the pids the scan saw come and go. lpid
    is the pid of the last shmat or shmdt: it names the actor of whichever came last."""
    came, went = set(new.pids) - set(old.pids), set(old.pids) - set(new.pids)
    o_n, n_n = old.nattch or 0, new.nattch or 0
    attached = n_n > o_n or bool(came) or new.atime != old.atime
    detached = n_n < o_n or bool(went) or new.dtime != old.dtime
    attach_last = new.atime >= new.dtime
    events = []
    if detached:
        last = detached and not (attached and attach_last)
        by = ctx.by(new.lpid, "lpid") if last else _scan_actor(went, ctx)
        events.append(event("detached", new, ctx, went or ([new.lpid] if last and new.lpid else []), by))
    if attached:
        last = attach_last or not detached
        by = ctx.by(new.lpid, "lpid") if last else _scan_actor(came, ctx)
        events.append(event("attached", new, ctx, came or ([new.lpid] if last and new.lpid else []), by))
    if attached and detached and not attach_last:
        events.reverse()  # the attach came first
    return events
