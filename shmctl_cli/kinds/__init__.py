"""The three kinds behind one interface: `collect` everything, `find` one address, in the
View (shmctl_cli/system.py) that holds the roots and caches of one run."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Dict, Iterable, List, Optional, Tuple

from .. import REGISTRY  # noqa: F401  (kinds.REGISTRY: the one in shmctl_cli/__init__.py)
from ..address import NAMESPACE_WORDS, namespace_prefix
from ..errors import ShmctlError
from ..model import Inventory, Namespace, Segment
from ..system import System, View, look_from, user_name  # noqa: F401  (re-exported: kinds.View, ...)

if TYPE_CHECKING:
    from ..address import Address
    from .base import CreateOptions, Kind, Typed


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
            processes: bool = False, everywhere: bool = False) -> Inventory:
    """The segments of the wanted kinds as `view` sees them; `everywhere`: in every namespace
    of the host (the view's own first), each segment labelled with its namespace and container."""
    inventory = Inventory()
    wanted = set(kinds)
    places = Places(view, inventory) if everywhere else None
    for name in REGISTRY:
        if name not in wanted:
            continue
        for where in (places.views(name) if places else [view]):
            try:
                segments, skipped = kind(name).collect(where, all_mappings, processes)
            except ShmctlError as exc:
                if where is view:
                    raise
                # its last process ended between the look at the namespaces and this one
                ns_type = REGISTRY[name]["namespace"]
                inventory.skipped.append(f"{ns_type}:{where.namespace(ns_type)} ({exc})")
                continue
            if places:
                places.label(name, where, segments)
            inventory.segments += segments
            inventory.skipped += skipped
    if view.host.scanned:
        inventory.hidden_processes = view.maps.hidden
    return inventory


class Places:
    """The namespaces of the host for `--all-namespaces`: one View for each distinct place of a
    kind (an IPC namespace; a /dev/shm filesystem, however many mount namespaces share it), the
    home one first, and what the inventory says about each."""

    def __init__(self, view: View, inventory: Inventory):
        self.view, self.inventory = view, inventory
        self.containers: Dict[int, Optional[str]] = {}

    def views(self, name: str) -> List[View]:
        k = kind(name)
        if k.place(self.view) is None:  # one look covers the host
            return [self.view]
        ns_type = REGISTRY[name]["namespace"]
        chosen, seen = [], set()
        home = self.view.namespace(ns_type)
        members = self.view.host.members(ns_type)
        order = [home] + [ns for ns in members if ns != home]
        for ns in order:
            where = self.view if ns == home else self.view.sibling(members[ns][0])
            try:
                place = k.place(where)
            except ShmctlError as exc:
                self.inventory.skipped.append(f"{ns_type}:{ns} ({exc})")
                continue
            if place is None or place in seen:
                continue
            seen.add(place)
            chosen.append(where)
            self._note(ns_type, ns, where, name, ns == home)
        return chosen

    def _note(self, ns_type: str, ns: Optional[int], where: View, name: str, home: bool) -> None:
        for known in self.inventory.namespaces:
            if (known.type, known.inode) == (ns_type, ns):
                known.kinds.append(name)
                return
        pid = where.ns_pid if where.ns_pid is not None else os.getpid()
        self.inventory.namespaces.append(Namespace(ns_type, ns, pid=pid, command=where.comm(pid),
                                                   container=self.container(pid), kinds=[name], home=home))

    def container(self, pid: int) -> Optional[str]:
        if pid not in self.containers:
            from ..procfs.cgroup import container_of
            found = container_of(pid, self.view.proc)
            self.containers[pid] = None if found is None else str(found)
        return self.containers[pid]

    def label(self, name: str, where: View, segments: List[Segment]) -> None:
        """Namespace, container and (outside the home namespace) a qualified address."""
        if kind(name).place(where) is None:  # host-wide: the container of the first process
            for seg in segments:
                pids = seg.pids
                seg.container = self.container(pids[0]) if pids else None
            return
        qualify(segments, name, where)
        container = self.container(where.ns_pid if where.ns_pid is not None else os.getpid())
        for seg in segments:
            seg.container = container


def namespace_view(kind_name: str, namespace: Optional[int], view: View, where: str) -> View:
    """The View from which objects of `kind_name` in that namespace are seen (None: the run's
    own): this one, or one from a process that is in it."""
    ns_type = REGISTRY[kind_name]["namespace"]
    if namespace is None or namespace == view.namespace(ns_type):
        return view
    if namespace == view.host.own[ns_type]:
        return view.sibling(None)
    pid = view.host.member(ns_type, namespace)
    if pid is None:
        from ..errors import NotFound
        raise NotFound(where, f"no process is in {NAMESPACE_WORDS[ns_type]} namespace {namespace}",
                       "the namespace ended, or its processes are not visible to you")
    return view.sibling(pid)



def view_for(address: "Address", view: View) -> View:
    return namespace_view(address.kind, address.namespace, view, str(address))


def resolve(address: "Address", view: View) -> "Address":
    """The address as its kind handles it: `mmap:/dev/shm/NAME` is the POSIX object NAME."""
    return kind(address.kind).resolve(address, view_for(address, view))


def find(address: "Address", view: View) -> Segment:
    view = view_for(address, view)
    address = kind(address.kind).resolve(address, view)
    segment = kind(address.kind).find(address, view)
    qualify([segment], address.kind, view)
    return segment


def qualify(segments: List[Segment], name: str, view: View) -> None:
    """Addresses of objects seen from another namespace than the run's own carry it."""
    ns_type = REGISTRY[name]["namespace"]
    if kind(name).place(view) is None:
        return  # host-wide kinds qualify each address themselves
    qualifier = view.qualifier(name)
    prefix = namespace_prefix(name, qualifier)
    for seg in segments:
        seg.namespace = view.namespace(ns_type)
        if qualifier is not None and not seg.address.startswith(prefix + ":"):
            seg.address = prefix + seg.address[len(name):]


def open_segment(address: "Address", view: View, writable: bool):
    """A Handle on the segment's bytes (kinds/access.py); close it, or use it in a with."""
    view = view_for(address, view)
    address = kind(address.kind).resolve(address, view)
    return kind(address.kind).open_segment(address, view, writable)


def create(address: "Address", options: "CreateOptions", view: View):
    """A new segment at the address (resolved first); a Created (kinds/files)."""
    address = resolve(address, view)
    return kind(address.kind).create(address, options, view)


def segment_view(segment: Segment, view: View) -> View:
    """The View from which the segment was seen (its namespace's)."""
    return namespace_view(segment.kind, segment.namespace, view, segment.address)


def remove(segment: Segment, view: View) -> None:
    kind(segment.kind).remove(segment, segment_view(segment, view))


def meminfo(view: View) -> Dict[str, int]:
    from ..procfs.meminfo import read_meminfo
    try:
        return read_meminfo(view.proc)
    except OSError:
        return {}


def describe_processes(segment: Segment) -> None:
    """Full command lines of the attached processes, for `stat` (psutil knows the corners:
    zombies, kernel threads, NUL-separated and rewritten argv)."""
    if not segment.attachments:
        return  # nobody to describe: psutil is not even imported
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


def complete_pids(word: str, describe: bool) -> List[Tuple[str, str]]:
    """Shell completion of --ns PID: (pid, description) of the processes whose pid starts with
    `word`, those in IPC or mount namespaces other than ours first; described (comm and the
    namespaces that differ) when the shell shows descriptions and at most 512 are offered."""
    from ..procfs import PROC
    from ..procfs.namespaces import namespace_inode
    own = {t: namespace_inode("self", t, PROC) for t in ("ipc", "mnt")}
    theirs, ours = [], []
    for name in os.listdir(PROC):
        if not (name.isascii() and name.isdigit() and name.startswith(word)):
            continue
        other = [f"{t}:{n}" for t in ("ipc", "mnt") for n in [namespace_inode(name, t, PROC)]
                 if n is not None and n != own[t]]
        (theirs if other else ours).append((int(name), other))
    chosen = sorted(theirs) + sorted(ours)
    described = describe and len(chosen) <= 512
    return [(str(pid), _process_note(pid, other) if described else "") for pid, other in chosen]


def _process_note(pid: int, other: List[str]) -> str:
    from ..procfs import PROC
    try:
        with open(f"{PROC}/{pid}/comm", "rb") as f:
            comm = os.fsdecode(f.read().rstrip(b"\n"))
    except OSError:
        comm = "?"
    return comm + (f" ({', '.join(other)})" if other else "")


def complete_addresses(typed: "Typed", view: View) -> List[Tuple[str, str, int]]:
    """Shell completion of an ADDRESS: (candidate, description, typed form) of every segment
    that exists now whose address, as shmctl prints it (escaped: no name can inject into the
    shell), continues what was typed (base.Typed); and `KIND:` for a kind the word may still
    become whose segments show only after it (mmap: the maps scan waits for `mmap:`). A kind
    the word cannot become is not even imported."""
    found: List[Tuple[str, str, int]] = []
    for name in REGISTRY:
        prefix = name + ":"
        if not (typed.may_become(prefix) or (name == "posix" and typed.starts("/"))):  # `/NAME`: address.py
            continue
        try:
            offered = kind(name).complete(typed, view)
        except (OSError, ShmctlError):
            offered = []  # a completion says nothing rather than fail
        if not offered:
            begun = [i for i, form in enumerate(typed.forms) if prefix.startswith(form) and form != prefix]
            offered = [(prefix, f"{name} segments", begun[0])] if begun else []
        found += offered
    return found
