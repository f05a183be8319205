"""--persist: kernel parameters into a sysctl.d file, so that they survive a reboot. The
file is rewritten whole, atomically (a temporary file in the same directory, then
rename), keeping every other line of it."""
from __future__ import annotations

import os
import stat
import tempfile
from typing import Dict, List, Optional

from ..errors import Conflict, PermissionDenied, UsageError, from_oserror
from ..procfs.sysctl import parse_sysctl_conf, update_sysctl_conf

SYSCTL_D = "/etc/sysctl.d"
DEFAULT_NAME = "60-shmctl.conf"
HEADER = "# shared-memory kernel parameters, written by shmctl limits --persist"


def default_dir() -> str:
    return os.environ.get("SHMCTL_SYSCTL_DIR") or SYSCTL_D


def target_path(arg: Optional[str]) -> str:
    """The file --persist writes: ours in sysctl.d by default, or FILE, or DIR/ours."""
    if not arg:
        return os.path.join(default_dir(), DEFAULT_NAME)
    return os.path.join(arg, DEFAULT_NAME) if os.path.isdir(arg) else arg


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


def plan(path: str, values: Dict[str, object]) -> PersistPlan:
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except FileNotFoundError:
        return PersistPlan(path, None, values)
    except OSError as exc:
        raise from_oserror(exc, f"cannot read {path}") from None
    if not stat.S_ISREG(st.st_mode):
        raise Conflict(f"cannot persist to {path}", "not a regular file", f"give a file such as "
                       f"{os.path.join(default_dir(), DEFAULT_NAME)}")
    try:
        with open(real, encoding="utf-8", errors="surrogateescape") as f:
            return PersistPlan(path, f.read(), values)
    except OSError as exc:
        raise from_oserror(exc, f"cannot read {path}") from None


def require_writable(path: str) -> None:
    directory = os.path.dirname(os.path.realpath(path)) or "."
    if not os.path.isdir(directory):
        raise UsageError(f"cannot persist to {path}", f"no directory {directory}", "give a file in an existing "
                         "directory")
    if not os.access(directory, os.W_OK):
        raise PermissionDenied(f"cannot persist to {path}", f"{directory} is not writable", "run as root")


def write(persist: PersistPlan) -> None:
    """Temporary file in the same directory, fsync, rename over the old one, fsync the
    directory: a reader (or a crash) sees the old file or the new one, never half."""
    real = os.path.realpath(persist.path)
    directory, name = os.path.split(real)
    try:
        mode = stat.S_IMODE(os.stat(real).st_mode)
    except FileNotFoundError:
        mode = 0o644
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise from_oserror(exc, f"cannot persist to {persist.path}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(persist.new_text)
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(temp, real)
    except OSError as exc:
        _remove(temp)
        raise from_oserror(exc, f"cannot persist to {persist.path}") from None
    _sync_directory(directory)


def _remove(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _sync_directory(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
