"""`limits set NAME=VALUE...`: parse the values, check them against the kernel's rules and
against what is in use now, and only then write them all (undoing the ones written if a
later write fails), reading each back."""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Dict, List, Optional, Sequence, Tuple

from ..errors import Conflict, PermissionDenied, UsageError, from_oserror
from ..procfs.sysctl import read_sysctl_int, sysctl_path
from ..units import is_ascii_digits
from . import KERNEL_DEFAULT, ROOT_HINT, ULONG_MAX, Limits, write_value

if TYPE_CHECKING:
    from ..system import System

KEYS = {"shmmax": "kernel.shmmax", "shmall": "kernel.shmall", "shmmni": "kernel.shmmni",
        "shm_rmid_forced": "kernel.shm_rmid_forced"}
DEFAULTS = {"shmmax": KERNEL_DEFAULT, "shmall": KERNEL_DEFAULT, "shmmni": 4096, "shm_rmid_forced": 0}
HINTS = {"shmmax": "a size in bytes, e.g. 34359738368 or 32G",
         "shmall": "pages, or a size with a unit, e.g. 8388608 or 32G",
         "shmmni": "a number of segments, e.g. 32768",
         "shm_rmid_forced": "0 or 1"}
ASSIGNMENT = re.compile(r"^(?:kernel\.)?(shmmax|shmall|shmmni|shm_rmid_forced)=")


class Change:
    """One kernel parameter to set: `value` asked, `old` before, `kept` read back after."""
    __slots__ = ("name", "key", "text", "value", "old", "kept")

    def __init__(self, name: str, text: str, value: int):
        self.name, self.key, self.text, self.value = name, KEYS[name], text, value
        self.old: Optional[int] = None
        self.kept: Optional[int] = None

    @property
    def changes(self) -> bool:
        return self.old != self.value


def is_assignment(text: str) -> bool:
    return bool(ASSIGNMENT.match(text))


def parse_assignments(texts: Sequence[str], page_size: int) -> Tuple[List[Change], List[str]]:
    """The changes asked for, and notes on how values were read (shmall=32G is pages)."""
    changes: Dict[str, Change] = {}
    notes: List[str] = []
    for text in texts:
        name, sep, value = text.partition("=")
        name = name.strip().lower()
        name = name[len("kernel."):] if name.startswith("kernel.") else name
        if not sep:
            raise UsageError(f"invalid assignment '{text}'", "expected NAME=VALUE", "names: " + ", ".join(KEYS))
        if name not in KEYS:
            raise UsageError(f"unknown limit '{name}'", "not one shmctl sets", "names: " + ", ".join(KEYS))
        if name in changes:
            raise UsageError(f"{text}", f"{name} is given twice")
        number, note = parse_value(name, value, page_size)  # as typed: `shmmni= 5` is no number
        changes[name] = Change(name, text, number)
        if note:
            notes.append(note)
    return list(changes.values()), notes


def parse_value(name: str, text: str, page_size: int) -> Tuple[int, Optional[str]]:
    what = f"{name}={text}"
    if text.lower() == "default":
        return DEFAULTS[name], None
    if text.startswith("-"):
        raise UsageError(what, "negative values are not allowed", HINTS[name])
    if is_ascii_digits(text):
        value, note = int(text), None
    elif name in ("shmmax", "shmall") and text:
        value, note = _size(what, text, name, page_size)
    else:
        raise UsageError(what, "not a number", HINTS[name])
    if value > ULONG_MAX:  # the kernel would refuse it (an unsigned long), not wrap it
        raise UsageError(what, f"too large: the kernel keeps an unsigned long, at most {ULONG_MAX}")
    if name == "shm_rmid_forced" and value > 1:
        raise UsageError(what, "must be 0 or 1")
    return value, note


def _size(what: str, text: str, name: str, page_size: int) -> Tuple[int, Optional[str]]:
    from ..units import parse_size_note
    try:
        size, note = parse_size_note(text)
    except UsageError as exc:
        raise UsageError(what, exc.why or "not a size", HINTS[name]) from None
    if name == "shmmax":
        return size, note
    pages = -(-size // page_size)
    rounded = "" if pages * page_size == size else ", rounded up"
    converted = f"shmall={text} is {pages} pages of {page_size} bytes{rounded} (shmall counts pages)"
    return pages, f"{note}; {converted}" if note else converted


def validate(changes: List[Change], limits: Limits, force: bool) -> List[str]:
    """Refuse what the kernel would refuse and what would hurt; return warnings. Reads
    nothing new and writes nothing."""
    res = limits.resources
    new = {c.name: c.value for c in changes}
    for c in changes:
        c.old = res[c.name].limit if c.name in res else limits.shm_rmid_forced
    if new.get("shmmni", 0) > limits.ipcmni:
        extend = " (boot with ipcmni_extend for up to 16777216)" if limits.ipcmni < 1 << 24 else ""
        raise UsageError(f"shmmni={new['shmmni']}", f"above IPCMNI {limits.ipcmni}: the kernel refuses it{extend}")
    if not force:
        _refuse_below_use(new, "shmall", res["shmall"].used, "pages SysV segments use now")
        _refuse_below_use(new, "shmmni", res["shmmni"].used, "SysV segments that exist now")
        if new.get("shm_rmid_forced") == 1 and limits.shm_rmid_forced == 0 and limits.orphans:
            raise Conflict("shm_rmid_forced=1", f"the kernel would destroy {limits.orphans} orphaned segment(s) "
                           "at once: no process attached, creator gone",
                           "see them with shmctl list --orphans; --force to set it anyway")
    return _warnings(new, limits)


def _refuse_below_use(new: Dict[str, int], name: str, used: int, what: str) -> None:
    if name in new and new[name] < used:
        raise Conflict(f"{name}={new[name]}", f"below the {used} {what}",
                       "remove segments first, or --force: existing segments stay, new ones get ENOSPC")


def _warnings(new: Dict[str, int], limits: Limits) -> List[str]:
    if "shmmax" not in new and "shmall" not in new:
        return []
    shmmax = new.get("shmmax", limits.resources["shmmax"].limit)
    shmall = new.get("shmall", limits.resources["shmall"].limit)
    total = shmall * limits.page_size
    if shmmax <= total or ("shmmax" not in new and limits.resources["shmmax"].unlimited):
        return []
    return [f"shmmax {shmmax} is more than shmall allows in total ({shmall} pages = {total} bytes): "
            f"no segment can be larger than {total} bytes"]


def write_sysctl(name: str, value: int, system: "System") -> None:
    write_value(sysctl_path(name, system.proc), value)


def may_write(name: str, system: "System") -> bool:
    """access(2) asks procfs itself: per-namespace sysctls check the capability there."""
    return os.access(sysctl_path(name, system.proc), os.W_OK)


def require_writable(keys: Sequence[str], system: "System") -> None:
    if os.geteuid() != 0:
        raise PermissionDenied(f"cannot set {', '.join(keys)}", "permission denied", ROOT_HINT)
    for key in keys:
        if not may_write(key, system):
            raise PermissionDenied(f"cannot set {key}", "not writable here",
                                   f"{ROOT_HINT} (in a container: root of the host or of the IPC namespace)")


def apply(changes: List[Change], system: "System") -> None:
    """Write what changes, undo on a failed write, then read every value back."""
    written: List[Change] = []
    for c in changes:
        if not c.changes:
            continue
        try:
            write_sysctl(c.key, c.value, system)
        except OSError as exc:
            undo(written, system)
            raise from_oserror(exc, f"cannot set {c.key}={c.value}", "nothing was changed") from None
        except BaseException:  # a signal (exit 128+N) leaves nothing half set, this one included
            undo([*written, c], system)
            raise
        written.append(c)
    for c in changes:
        c.kept = read_sysctl_int(c.key, system.proc)


def undo(changes: List[Change], system: "System") -> None:
    for c in reversed(changes):
        try:
            write_sysctl(c.key, c.old, system)
        except OSError:
            pass


def not_kept(changes: List[Change]) -> List[Change]:
    """Values the kernel did not keep as written (it clamped, or something else wrote)."""
    return [c for c in changes if c.kept is not None and c.kept != c.value]


def apply_and_persist(changes: List[Change], plan, system: "System") -> None:
    """The values, then the file: a file that cannot be written undoes the values."""
    from . import persist
    if plan is not None:
        persist.require_writable(plan.path)
    apply(changes, system)
    if plan is None:
        return
    try:
        persist.write(plan)
    except BaseException:  # an error or a signal: the values go back as the file stays
        undo([c for c in changes if c.changes], system)
        raise
