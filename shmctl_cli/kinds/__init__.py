"""The three kinds behind one interface: `collect` everything, `find` one address, in the
View (shmctl_cli/system.py) that holds the roots and caches of one run."""
from __future__ import annotations

from typing import TYPE_CHECKING, Dict, Iterable, List

from .. import REGISTRY  # noqa: F401  (kinds.REGISTRY: the one in shmctl_cli/__init__.py)
from ..model import Inventory, Segment
from ..system import System, View, user_name  # noqa: F401  (re-exported: kinds.View, kinds.user_name)

if TYPE_CHECKING:
    from ..address import Address
    from .base import CreateOptions, Kind


_loaded: Dict[str, "Kind"] = {}


def kind(name: str) -> "Kind":
    """The Kind registered under `name`, its module imported on first use."""
    found = _loaded.get(name)
    if found is None:
        found = _loaded[name] = kind_module(name).KIND
    return found


def kind_module(name: str):
    from importlib import import_module
    return import_module(REGISTRY[name]["module"])


def bulk_kinds() -> List[str]:
    """The kinds `rm --orphans/--all` takes when no --kind is given."""
    return [name for name in REGISTRY if kind(name).removed_in_bulk]


def collect(kinds: Iterable[str], view: View, all_mappings: bool = False,
            processes: bool = False) -> Inventory:
    inventory = Inventory()
    wanted = set(kinds)
    for name in REGISTRY:
        if name in wanted:
            segments, skipped = kind(name).collect(view, all_mappings, processes)
            inventory.segments += segments
            inventory.skipped += skipped
    if view.host.scanned:
        inventory.hidden_processes = view.maps.hidden
    return inventory


def resolve(address: "Address", view: View) -> "Address":
    """The address as its kind handles it: `mmap:/dev/shm/NAME` is the POSIX object NAME."""
    return kind(address.kind).resolve(address, view)


def find(address: "Address", view: View) -> Segment:
    address = resolve(address, view)
    return kind(address.kind).find(address, view)


def open_segment(address: "Address", view: View, writable: bool):
    """A Handle on the segment's bytes (kinds/access.py); close it, or use it in a with."""
    address = resolve(address, view)
    return kind(address.kind).open_segment(address, view, writable)


def create(address: "Address", options: "CreateOptions", view: View):
    """A new segment at the address (resolved first); a Created (kinds/files)."""
    address = resolve(address, view)
    return kind(address.kind).create(address, options, view)


def remove(segment: Segment, view: View) -> None:
    kind(segment.kind).remove(segment, view)


def meminfo(view: View) -> Dict[str, int]:
    from ..procfs.meminfo import read_meminfo
    try:
        return read_meminfo(view.proc)
    except OSError:
        return {}


def describe_processes(segment: Segment) -> None:
    """Full command lines of the attached processes, for `stat` (psutil knows the corners:
    zombies, kernel threads, NUL-separated and rewritten argv)."""
    import psutil
    commands: Dict[int, str] = {}
    for a in segment.attachments or ():
        if a.pid not in commands:
            try:
                argv = psutil.Process(a.pid).cmdline()
                commands[a.pid] = " ".join(argv) or f"[{a.comm}]"  # escaped when printed
            except (psutil.Error, OSError):
                commands[a.pid] = a.comm
        a.command = commands[a.pid]


def users(segment: Segment, view: View) -> List[int]:
    """Pids that keep a segment in use: attached, mapping it, or (POSIX) holding it open."""
    return kind(segment.kind).users(segment, view)
