"""Files that shmctl creates outside /dev/shm (`read -o FILE`), made safe in directories that
other users can write to (/tmp, a user's own directory, a sticky 1777 directory).

- Every name is reached through one open descriptor of FILE's directory, so the checks and
  the publish happen in the same directory even if a path component is swapped meanwhile.
  That directory is reached following only the symlinks that root or the caller own (such
  as /var/run -> /run): one that another user planted on the way is refused (exit 5), and
  FILE's last component is never followed.
- Nothing existing is ever opened: the content goes to a fresh temp file in that directory,
  created O_CREAT|O_EXCL|O_NOFOLLOW under a random name, filled, given its mode (0600 unless
  asked, whatever the umask), fsynced, and only then published under FILE. A reader never
  sees a half-written FILE; an error or a signal unlinks the temp and leaves FILE as it was.
- Publishing a new FILE is renameat2(RENAME_NOREPLACE) (or link + unlink where the
  filesystem lacks it): if someone created FILE meanwhile, even as a dangling symlink, it is
  EEXIST and nothing of theirs is touched.
- An existing FILE is replaced only when asked (`replace`), only if it is a regular file of
  the caller's own euid, and by rename(), which swaps the directory entry and never writes
  into the old file or follows a link. It is checked twice: before the copy and again just
  before the rename. In a directory the attacker owns the two checks cannot close the race
  (the owner may swap entries at will), but all the attacker can get is a rename of our
  complete temp file over a name in their own directory: never a write into their file,
  never one through their symlink.
- A symlink, FIFO, socket, device or directory at FILE is refused: write to pipes and
  devices through stdout (`-o -`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import secrets
import signal
import stat
from typing import Iterator, Optional

from .errors import Conflict, NotFound, PermissionDenied, ShmctlError, local_error
from .kinds.paths import identity, lstat_or_none, open_directory
from .signals import STOPS

_KIND_OF = [(stat.S_ISLNK, "a symbolic link"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory")]
class OutputFile:
    """FILE being written: `fd` is the temp file; `publish()` puts it in place."""

    def __init__(self, path: str, replace: bool = False, mode: int = 0o600, not_same_as: Optional[int] = None):
        self.path, self.replace, self.mode = path, replace, mode
        self.directory, self.name = _split(path)
        self._not_same_as = identity(os.fstat(not_same_as)) if not_same_as is not None else None
        self.dir_fd = self.fd = -1
        self.temp = ""

    def open(self) -> int:
        self.dir_fd = _open_directory(self.directory, f"write {self.path}")
        self._check_existing()
        self._create_temp()
        return self.fd

    def publish(self) -> None:
        try:
            os.fchmod(self.fd, self.mode)  # only now: a wider mode never shows a partial file
            os.fsync(self.fd)
        except OSError as exc:
            raise local_error(exc, f"write {self.path}") from None
        self._check_temp_is_ours()
        if self.replace and self._check_existing() is not None:
            self._rename_over()
        else:
            self._publish_new()
        self.temp = ""
        with contextlib.suppress(OSError):  # the rename itself survives a crash
            os.fsync(self.dir_fd)

    def discard(self) -> None:
        """Unlink the temp file (only if the name is still ours) and close everything."""
        if self.temp and self._temp_is_ours():
            with contextlib.suppress(OSError):
                os.unlink(self.temp, dir_fd=self.dir_fd)
        self.temp = ""
        for fd in (self.fd, self.dir_fd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.dir_fd = -1

    # --- checks ---

    def _lstat(self) -> Optional[os.stat_result]:
        try:
            return lstat_or_none(self.dir_fd, self.name)
        except OSError as exc:
            raise local_error(exc, f"stat {self.path}") from None

    def _check_existing(self) -> Optional[os.stat_result]:
        """FILE as it is now: None if absent; an error if it may not be replaced."""
        st = self._lstat()
        if st is None:
            return None
        what = f"write {self.path}"
        if identity(st) == self._not_same_as:
            raise Conflict(what, "it is the segment being read", "write the copy somewhere else")
        for test, kind in _KIND_OF:
            if test(st.st_mode):
                raise Conflict(what, f"it is {kind}", "shmctl only replaces regular files; "
                               "write to a pipe or device through stdout (-o -)")
        if st.st_uid != os.geteuid():
            raise PermissionDenied(what, f"it is owned by uid {st.st_uid}", "shmctl never replaces "
                                   "another user's file: remove it or choose another name")
        if not self.replace:
            raise Conflict(what, "it exists", "--force replaces it")
        return st

    def _temp_is_ours(self) -> bool:
        try:
            st = os.stat(self.temp, dir_fd=self.dir_fd, follow_symlinks=False)
        except OSError:
            return False
        return identity(st) == identity(os.fstat(self.fd))

    def _check_temp_is_ours(self) -> None:
        if not self._temp_is_ours():
            self.temp = ""  # not ours to unlink any more
            raise Conflict(f"write {self.path}", "the temporary file was moved or replaced by someone else",
                           "write into a directory that only you can change")

    # --- creating and publishing ---

    def _create_temp(self) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        for _attempt in range(16):
            temp = f".{self.name[:32]}.{secrets.token_hex(6)}.shmctl-tmp"
            try:
                with _signals_held():  # a signal between open() and knowing the name would leave it
                    self.fd = os.open(temp, flags, 0o600, dir_fd=self.dir_fd)
                    self.temp = temp
                return
            except FileExistsError:
                continue  # someone took the name (or guessed it): another one
            except OSError as exc:
                raise local_error(exc, f"create a temporary file in {self.directory}") from None
        raise Conflict(f"create a temporary file in {self.directory}", "every name tried was taken")

    def _publish_new(self) -> None:
        from . import syscalls
        try:
            syscalls.rename_noreplace(self.dir_fd, self.temp, self.name)
            return
        except ShmctlError as exc:
            if exc.errno == errno.EEXIST:
                raise self._appeared() from None
            if exc.errno not in (errno.EINVAL, errno.ENOSYS):
                raise local_error(OSError(exc.errno, os.strerror(exc.errno)), f"write {self.path}") from None
        try:  # no RENAME_NOREPLACE on this filesystem: link() is no-clobber too
            os.link(self.temp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd, follow_symlinks=False)
        except FileExistsError:
            raise self._appeared() from None
        except OSError as exc:
            raise local_error(exc, f"write {self.path}") from None
        with contextlib.suppress(OSError):
            os.unlink(self.temp, dir_fd=self.dir_fd)

    def _appeared(self) -> Conflict:
        return Conflict(f"write {self.path}", "it was created by someone else during the copy",
                        "nothing was written; choose another name")

    def _rename_over(self) -> None:
        try:
            os.rename(self.temp, self.name, src_dir_fd=self.dir_fd, dst_dir_fd=self.dir_fd)
        except OSError as exc:
            raise local_error(exc, f"write {self.path}") from None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """The stop signals wait (pending in the kernel) until the block is done; their Python
    handlers then run at once."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _open_directory(directory: str, what: str) -> int:
    """FILE's directory, reached through no symlink but root's and the caller's own (kinds/
    paths): another user's symlink at /tmp/dumps must not send root's FILE into /etc."""
    try:
        pinned = open_directory(directory, what, trusted_links=True)
    except NotFound as exc:  # a local directory, not a segment: exit 2 if missing, else 5
        if exc.errno is not None:
            raise local_error(OSError(exc.errno, exc.why), f"open {directory}") from None
        raise Conflict(f"open {directory}", exc.why, exc.hint) from None  # a symlink or not a directory
    try:
        return os.open(f"/proc/self/fd/{pinned}", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise local_error(exc, f"open {directory}") from None
    finally:
        os.close(pinned)


def _split(path: str):
    directory, name = os.path.split(path)
    if name in ("", ".", ".."):
        raise Conflict(f"write {path}", "it is a directory", "name a file in it")
    return directory or ".", name


@contextlib.contextmanager
def output_file(path: str, replace: bool = False, mode: int = 0o600,
                not_same_as: Optional[int] = None) -> Iterator[int]:
    """The descriptor to write FILE's content to; FILE appears, complete, when the block ends
    without an exception (signals included: KeyboardInterrupt and Signalled leave no trace).
    `not_same_as`: a descriptor whose file FILE must not be (the segment being read)."""
    with written(OutputFile(path, replace, mode, not_same_as)) as fd:
        yield fd


@contextlib.contextmanager
def written(out: OutputFile) -> Iterator[int]:
    try:
        yield out.open()
        out.publish()
    finally:
        out.discard()


class ReplacedFile(OutputFile):
    """A file whose name is shmctl's by convention (`metrics --textfile-dir DIR`: DIR/shmctl.prom,
    rewritten every minute): whatever stands at the name, a symlink or a file of anyone's, is
    replaced by rename(2), which swaps the directory entry and never opens nor follows the old
    one. Only a directory there stops it."""

    def _check_existing(self) -> Optional[os.stat_result]:
        st = self._lstat()
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise Conflict(f"write {self.path}", "it is a directory", "remove it: shmctl writes a file there")
        return st

    def _publish_new(self) -> None:
        self._rename_over()


def replaced_file(path: str, mode: int = 0o644):
    """The descriptor to write FILE's content to; FILE replaced atomically when the block ends."""
    return written(ReplacedFile(path, replace=True, mode=mode))


# --- a log appended to (shmctl watch --log FILE) ---

_LOG_HINT = "a log is appended only to a regular file of your own, with one name"


def append_file(path: str) -> int:
    """An O_APPEND fd of FILE for a log: created 0600 if absent; an existing FILE only if it is
    a regular file of the caller's own with no other name (a hard link planted where
    fs.protected_hardlinks is 0 would append to root's file elsewhere; never a symlink, FIFO or
    device: O_NOFOLLOW, and O_NONBLOCK so that a FIFO planted there cannot hold the open). Its
    directory is reached as OutputFile's is: through no symlink another user planted."""
    directory, name = _split(path)
    dir_fd = _open_directory(directory, f"open {path}")
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, 0o600, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise Conflict(f"open {path}", "it is a symbolic link", "shmctl never writes through one") from None
        if exc.errno == errno.ENXIO:  # O_NONBLOCK on a FIFO nobody reads, or a socket
            raise Conflict(f"open {path}", "it is a FIFO or a socket", _LOG_HINT) from None
        raise local_error(exc, f"open {path}") from None
    finally:
        os.close(dir_fd)
    st = os.fstat(fd)
    problem = next((f"it is {kind}" for test, kind in _KIND_OF if test(st.st_mode)), None)
    if problem is None and st.st_uid != os.geteuid():
        problem = f"it is owned by uid {st.st_uid}"
    if problem is None and st.st_nlink != 1:  # another name of it: a hard link to a file of ours elsewhere
        problem = f"it has {st.st_nlink} hard links"
    if problem:
        os.close(fd)
        raise Conflict(f"open {path}", problem, _LOG_HINT)
    os.set_blocking(fd, True)
    return fd
