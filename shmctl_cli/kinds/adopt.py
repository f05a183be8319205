"""Whether an existing object may be adopted by `create --exist-ok` (or resized by --resize).

Anyone can squat a free name in /dev/shm or a free SysV key before us, and a SysV owner can
even give a segment away (IPC_SET to our uid keeps their cuid). So an existing object is
used only when it is what was asked for: owned by the expected user, mode no wider than
asked, the size asked (or larger with --larger-ok), one link (a hard link would make another
object answer to this name), the right kind. Otherwise exit 5 saying what differs.
"""
from __future__ import annotations

import os
from typing import List, Optional

from ..errors import Conflict


class Wanted:
    """What the caller asked for: the owner (None: the caller), mode and size."""

    def __init__(self, size: int, mode: int, owner: Optional[int] = None, larger_ok: bool = False):
        self.size, self.mode, self.larger_ok = size, mode, larger_ok
        self.owner = os.geteuid() if owner is None else owner


def _user(uid: int) -> str:
    from ..system import user_name
    name = user_name(uid)
    return f"uid {uid}" if name == str(uid) else f"{name} (uid {uid})"


def differences(wanted: Wanted, uid: int, mode: int, cuid: Optional[int] = None, nlinks: int = 1) -> List[str]:
    """What makes the object other than asked, except its size (the caller may resize)."""
    found = []
    if uid != wanted.owner:
        found.append(f"owned by {_user(uid)}, not {_user(wanted.owner)}")
    elif cuid is not None and cuid != wanted.owner:
        found.append(f"created by {_user(cuid)}, not {_user(wanted.owner)}")
    wider = mode & 0o7777 & ~wanted.mode
    if wider:
        found.append(f"mode {mode & 0o7777:04o} is wider than the {wanted.mode:04o} asked")
    if nlinks != 1:
        found.append(f"it has {nlinks} hard links, so another object may answer to this name")
    return found


def check(where: str, wanted: Wanted, uid: int, mode: int, cuid: Optional[int] = None, nlinks: int = 1) -> None:
    found = differences(wanted, uid, mode, cuid, nlinks)
    if found:
        raise Conflict(where, "exists but is not what was asked: " + "; ".join(found),
                       "shmctl adopts only an object of the expected owner, mode and size; "
                       "remove it, or give --owner/--mode to match")


def size_refusal(where: str, wanted: Wanted, size: int, hint: str) -> Optional[Conflict]:
    """None when `size` fits what was asked; else the Conflict to raise."""
    if size == wanted.size or (size > wanted.size and wanted.larger_ok):
        return None
    if size > wanted.size:
        return Conflict(where, f"exists with {size} bytes, not the {wanted.size} asked",
                        "--larger-ok uses a larger one as it is")
    return Conflict(where, f"exists with {size} bytes, fewer than the {wanted.size} asked", hint)
