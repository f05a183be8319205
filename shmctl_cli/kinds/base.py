"""The Kind interface: what every kind of segment does, and the kernel's rules for it.

inspect:   collect (every segment), find (one address)
lifecycle: create, open_segment, remove; check_create_options (which create options it
           takes), check_growth (whether and where it may grow), users / in_use (what keeps
           it alive), in_use_refusal / removed_note (what rm says about it).

One subclass per kind (sysv.py, posix.py, mmap.py), each module's KIND, looked up by name
in the registry of kinds/__init__.py. The commands call these and never ask a kind's name.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Hashable, List, Optional, Tuple

from ..errors import Conflict, UsageError
from ..system import user_name
from ..units import format_size, plural

if TYPE_CHECKING:
    from ..address import Address
    from ..model import Segment
    from ..system import View
    from .access import Handle
    from .files import Created


class CreateOptions:
    """Everything `create` was asked, whatever the kind; each kind takes what suits it."""

    def __init__(self, size: int, mode: int = 0o600, exist_ok: bool = False, dry_run: bool = False,
                 fill: Optional[Callable[["Handle"], None]] = None, owner: Optional[int] = None,
                 larger_ok: bool = False, resize: bool = False, force: bool = False, overcommit: bool = False,
                 key: Optional[str] = None, ftok: Optional[str] = None, hugetlb: bool = False,
                 huge_size: Optional[int] = None, lock: bool = False):
        self.size, self.mode, self.exist_ok, self.dry_run, self.fill = size, mode, exist_ok, dry_run, fill
        self.owner, self.larger_ok, self.resize, self.force, self.overcommit = owner, larger_ok, resize, force, overcommit
        self.key, self.ftok, self.hugetlb, self.huge_size, self.lock = key, ftok, hugetlb, huge_size, lock


class Kind:
    name = ""
    # whether the kernel itself counts the users (SysV's nattch): hidden processes change nothing
    kernel_counts_users = False
    # whether `rm --orphans/--all` skips it when processes are hidden (in use cannot be told)
    unsure_when_hidden = False
    # whether `rm --orphans/--all` takes it when no --kind is given
    removed_in_bulk = True
    # whether only the processes' maps show its segments (mmap): a hidden process hides segments
    found_in_processes = False
    force_hint = "--force unlinks it; the memory is freed when the last process lets go"

    # --- inspect ---

    def collect(self, view: "View", all_mappings: bool, processes: bool) -> Tuple[List["Segment"], List[str]]:
        """Every segment of the kind, and notes on entries skipped."""
        raise NotImplementedError

    def find(self, address: "Address", view: "View") -> "Segment":
        raise NotImplementedError

    def place(self, view: "View") -> Optional[Hashable]:
        """Where the kind's objects seen from `view` live: Views with the same place see the same
        objects (SysV: the IPC namespace; POSIX: the /dev/shm filesystem). None: one look
        covers the whole host, whatever the namespace (mmap: every process's maps)."""
        return None

    def resolve(self, address: "Address", view: "View") -> "Address":
        """The address under which the object is handled (another kind's, where it is one)."""
        return address

    def complete(self, typed: "Typed", view: "View") -> List[Tuple[str, str, int]]:
        """Shell completion: the segments that exist now whose address continues what was
        typed (Typed.choose), each as (candidate, short description or "", which typed form
        it continues); cheaply: no maps scan unless the kind needs one, no description past
        DESCRIBED candidates or where the shell shows none."""
        return []

    # --- lifecycle ---

    def check_create_options(self, address: "Address", options: CreateOptions) -> None:
        """UsageError for an option that does not suit the kind."""

    def create(self, address: "Address", options: CreateOptions, view: "View") -> "Created":
        raise NotImplementedError

    def open_segment(self, address: "Address", view: "View", writable: bool) -> "Handle":
        raise NotImplementedError

    def check_growth(self, where: str, address: "Address", view: "View", size: int, end: int, grow: bool,
                     overcommit: bool) -> str:
        """The room line for growing from size to end; Conflict or LimitReached if it may not."""
        raise Conflict(where, f"{end - size} bytes would pass the end ({size} bytes)", "--grow extends it")

    def users(self, segment: "Segment", view: "View") -> List[int]:
        """Pids that keep the segment in use."""
        return sorted(set(segment.pids))

    def in_use(self, segment: "Segment", users: List[int]) -> int:
        """How many processes use it (counted by the kernel where it counts them)."""
        return len(users)

    def not_shared_memory(self, segment: "Segment", view: "View") -> Optional[str]:
        """What the segment is when it is no shared memory at all (never removed in bulk)."""
        return None

    def check_removable(self, segment: "Segment") -> None:
        """Conflict for a segment that has nothing to remove, before anything else is asked."""

    def remove(self, segment: "Segment", view: "View") -> None:
        raise NotImplementedError

    def in_use_refusal(self, segment: "Segment", users: List[int], view: "View") -> Conflict:
        names = ", ".join(f"{pid} ({view.comm(pid)})" for pid in users[:8]) + (" ..." if len(users) > 8 else "")
        who = f"pids {names}" if users else "processes not visible to you"
        return Conflict(segment.address, f"still in use by {plural(self.in_use(segment, users), 'process')}: {who}",
                        self.force_hint)

    def removed_note(self, segment: "Segment", in_use: int) -> str:
        """What rm says after removing a segment that `in_use` processes still use."""
        return f"{segment.address} unlinked; its memory is freed when the {plural(in_use, 'process')} using it let go"

    # --- cleanup policies (rm --older-than, --name: kinds/cleanup.py) ---

    def last_used(self, segment: "Segment") -> Optional[int]:
        """When the segment was last used, in epoch seconds as the kernel keeps it; None where
        unknown. Files: the later of mtime (last write) and atime (last read, which tmpfs
        updates lazily: relatime). A mapping's page faults touch neither."""
        return max(segment.mtime, segment.atime) or None

    def glob_subject(self, segment: "Segment", glob: str) -> Optional[str]:
        """The text `rm --name GLOB` matches, None for a segment without a name."""
        return segment.name


class FileKind(Kind):
    """A kind whose segments are files (POSIX objects, mmap files): made, grown and locked
    through kinds/files."""

    _sysv_only = (("--key", "key"), ("--ftok", "ftok"), ("--hugetlb", "hugetlb"), ("--huge-size", "huge_size"),
                  ("--lock", "lock"))

    def check_create_options(self, address: "Address", options: CreateOptions) -> None:
        wrong = [flag for flag, attr in self._sysv_only if getattr(options, attr)]
        if wrong:
            hint = "for POSIX and mmap, shmctl attach --lock pins pages while it holds them" if options.lock else ""
            raise UsageError(f"create {address}", f"{wrong[0]} applies to SysV segments only", hint)

    def request(self, options: CreateOptions):
        from .files import FileRequest
        return FileRequest(options.size, options.mode, options.exist_ok, options.resize, options.force,
                           options.dry_run, options.fill, owner=options.owner, larger_ok=options.larger_ok,
                           overcommit=options.overcommit)

    def growth_directory(self, where: str, address: "Address", view: "View", size: int, end: int) -> str:
        """The directory whose filesystem must hold the growth."""
        raise NotImplementedError

    def check_growth(self, where: str, address: "Address", view: "View", size: int, end: int, grow: bool,
                     overcommit: bool) -> str:
        """Only the growth counts: the write then fills part of it, which takes as much free
        space as it releases of promise, so the sparse rest is what stays promised."""
        if not grow:
            return super().check_growth(where, address, view, size, end, grow, overcommit)
        from .room import check_room
        return check_room(where, self.growth_directory(where, address, view, size, end), end - size, overcommit,
                          hint="--overcommit grows it anyway: the first writer past the space dies of SIGBUS")


DESCRIBED = 256  # more candidates than this are listed without descriptions (no stat each)


class Typed:
    r"""The word being completed, in the forms it may take: first what the shell will pass
    (quotes and backslashes removed: `posix:/a b`), then, where the user typed backslashes
    the shell would remove, the word as typed (`posix:/a\x20`, pasted from a pipe's output).
    An address is offered in the form that continues one of them: as the shell passes it
    (escaped by address.printable, spaces as they are) or as a pipe prints it (`\x20`);
    every command reads both back as the same object. `taken`: addresses already on the
    line, not offered again. `describe`: whether the shell shows descriptions (zsh, fish)."""

    def __init__(self, forms: List[str], describe: bool = True, taken: Tuple["Address", ...] = ()):
        self.forms, self.describe, self.taken = forms or [""], describe, taken

    def starts(self, prefix: str) -> bool:
        """Whether a form starts with `prefix`."""
        return any(form.startswith(prefix) for form in self.forms)

    def may_become(self, prefix: str) -> bool:
        """Whether a form is `prefix` begun, or continues it."""
        return any(form.startswith(prefix) or prefix.startswith(form) for form in self.forms)

    def taken_strings(self) -> set:
        return {str(address) for address in self.taken}

    def choose(self, addresses: List[str]) -> List[Tuple[str, int, int]]:
        """(candidate, form, position in `addresses`) of the addresses (raw, as the system
        names them) that continue a typed form, in their order."""
        from ..address import printable
        shells = [a if a.isprintable() and "\\" not in a else printable(a) for a in addresses]
        if len(self.forms) == 1 and "\\" not in self.forms[0]:  # the common case, in C loops
            form = self.forms[0]
            return [(s, 0, i) for i, s in enumerate(shells) if s.startswith(form)]
        chosen = []
        for i, shell in enumerate(shells):
            printed = shell.replace(" ", "\\x20")
            for index, form in enumerate(self.forms):
                if shell.startswith(form) or printed.startswith(form):
                    chosen.append((shell if shell.startswith(form) else printed, index, i))
                    break
        return chosen


def completion_note(kind_word: str, size: int, uid: int) -> str:
    """What a completion candidate shows beside the address (zsh, fish): `SysV 4KiB, owner alice`."""
    return f"{kind_word} {format_size(size)}, owner {user_name(uid)}"
