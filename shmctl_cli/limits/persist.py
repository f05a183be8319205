"""--persist: kernel parameters into a sysctl.d file, so that they survive a reboot. The
file is rewritten whole, atomically (a temporary file in the same directory, then
rename), keeping every other line of it."""
from __future__ import annotations

import errno
import os
import stat
from typing import TYPE_CHECKING, Dict, List, Optional

from ..errors import Conflict, PermissionDenied, UsageError, from_oserror
from ..procfs.sysctl import normalize_key, parse_line, parse_sysctl_conf
from . import ROOT_HINT

if TYPE_CHECKING:
    from ..system import System

DEFAULT_NAME = "60-shmctl.conf"
HEADER = "# shared-memory kernel parameters, written by shmctl limits --persist"


def target_path(arg: Optional[str], system: "System") -> str:
    """The file --persist writes: ours in the system's sysctl.d by default (SHMCTL_SYSCTL_DIR
    overrides it, read once into the System), or FILE, or DIR/ours."""
    if not arg:
        return os.path.join(system.sysctl_dir, DEFAULT_NAME)
    return os.path.join(arg, DEFAULT_NAME) if os.path.isdir(arg) else arg


def update_sysctl_conf(text: str, values: Dict[str, object], header: str = "") -> str:
    """The text with each key of `values` set: its first line rewritten in place, later
    duplicates dropped (they would win), missing keys appended; every other line is kept
    as it was. `header` starts a file that was empty."""
    wanted = {normalize_key(k): v for k, v in values.items()}
    out: List[str] = []
    placed = set()
    for line in text.splitlines():
        parsed = parse_line(line)
        if parsed is None or parsed[1] not in wanted:
            out.append(line)
        elif parsed[1] not in placed:
            placed.add(parsed[1])
            out.append(f"{parsed[0]}{parsed[1]} = {wanted[parsed[1]]}")
    if not text.strip() and header:
        out = [header]
    out += [f"{key} = {value}" for key, value in wanted.items() if key not in placed]
    return "\n".join(out) + "\n"


class PersistPlan:
    """What the file holds now and what it will hold."""

    def __init__(self, path: str, old_text: Optional[str], values: Dict[str, object]):
        self.path, self.old_text, self.values = path, old_text, values
        self.new_text = update_sysctl_conf(old_text or "", values, HEADER)

    @property
    def before(self) -> Dict[str, str]:
        return parse_sysctl_conf(self.old_text or "")

    def describe(self, dry_run: bool = False) -> List[str]:
        """One line a key: added, replaced (and what it was), or there already."""
        lines, before = [], self.before
        for key, value in self.values.items():
            if key not in before:
                verb = "would add" if dry_run else "added"
                lines.append(f"{verb} {key} = {value} to {self.path}")
            elif before[key] != str(value):
                verb = "would replace" if dry_run else "replaced"
                lines.append(f"{verb} {key} = {before[key]} with {value} in {self.path}")
            else:
                lines.append(f"{key} = {value} is in {self.path} already")
        return lines


def plan(path: str, values: Dict[str, object], system: "System") -> PersistPlan:
    """The file as it is now, read without following a symlink at its name (it is replaced
    by rename, so a symlink there is refused rather than written through)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return PersistPlan(path, None, values)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Conflict(f"cannot persist to {path}", "it is a symbolic link",
                           "give the file it points to") from None
        raise from_oserror(exc, f"cannot read {path}") from None
    with open(fd, encoding="utf-8", errors="surrogateescape") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise Conflict(f"cannot persist to {path}", "not a regular file", f"give a file such as "
                           f"{os.path.join(system.sysctl_dir, DEFAULT_NAME)}")
        try:
            return PersistPlan(path, f.read(), values)
        except OSError as exc:
            raise from_oserror(exc, f"cannot read {path}") from None


def require_writable(path: str) -> None:
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise UsageError(f"cannot persist to {path}", f"{directory}: no such file or directory",
                         "give a file in an existing directory")
    if not os.access(directory, os.W_OK):
        raise PermissionDenied(f"cannot persist to {path}", f"{directory} is not writable", ROOT_HINT)


def write(persist: PersistPlan) -> None:
    """Through outfile: a temporary file in the same directory, fsync, rename over the old
    one (never written through a symlink, never another user's file), fsync the directory:
    a reader (or a crash) sees the old file or the new one, never half. The old file's
    mode is kept; a new one is 0644, as sysctl.d files are."""
    from ..kinds.access import write_all
    from ..outfile import output_file
    try:
        mode = stat.S_IMODE(os.lstat(persist.path).st_mode)
    except FileNotFoundError:
        mode = 0o644
    except OSError as exc:
        raise from_oserror(exc, f"cannot persist to {persist.path}") from None
    from ..outfile import local_error
    try:
        with output_file(persist.path, replace=True, mode=mode) as fd:
            write_all(fd, persist.new_text.encode("utf-8", "surrogateescape"))
    except OSError as exc:  # a full device is exit 1, not a shared-memory limit
        raise local_error(exc, f"cannot persist to {persist.path}") from None
