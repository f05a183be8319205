"""An open segment of any kind, for `read`, `write`, `create --from` and `attach`.

File-backed segments (POSIX objects, mmap files, memfd and anonymous memory reached through
/proc/PID/map_files) are read and written through their file descriptor: sendfile, pread and
pwrite report a full tmpfs as ENOSPC, where a store into a mapping would die of SIGBUS.
SysV segments, and hugetlbfs files (which have no write()), go through a mapping.

Two writers never interleave: a write holds flock(LOCK_EX) on the file (any tool that
flocks the same file cooperates), and for SysV a semaphore of the set with key SYSV_LOCK_KEY
("shmc"), one of SYSV_LOCK_SLOTS chosen by shmid, taken with SEM_UNDO so that a writer that
dies releases it. That set is created on first use, mode 0666, and left in place (ipcs -s).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import mmap
import os
import stat
import time
from typing import BinaryIO, Callable, Iterator, Optional

from .. import syscalls
from ..errors import Conflict, ShmctlError

CHUNK = 1 << 20
SYSV_LOCK_KEY = 0x73686D63  # "shmc"
SYSV_LOCK_SLOTS = 128
LOCK_TIMEOUT = 30.0

Progress = Optional[Callable[[int], None]]


class Handle:
    """`size` bytes reachable through `fd` (file-backed) or `view` (a mapping at `base`)."""

    def __init__(self, address: str, size: int, fd: Optional[int] = None, view: Optional[memoryview] = None,
                 on_close: Optional[Callable[[], None]] = None, shmid: Optional[int] = None,
                 base: Optional[int] = None):
        self.address, self.size, self.fd, self.view = address, size, fd, view
        self.shmid, self.base = shmid, base
        self._on_close = on_close
        self._map: Optional[mmap.mmap] = None

    def __enter__(self) -> "Handle":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.view is not None:
            self.view.release()
            self.view = None
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._on_close is not None:
            self._on_close()
            self._on_close = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    # --- mapping on demand (hugetlbfs files cannot be written with write()) ---

    def mapping(self, writable: bool) -> memoryview:
        if self.view is None:
            prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
            self._map = mmap.mmap(self.fd, self.size, mmap.MAP_SHARED, prot)
            self.view = memoryview(self._map)
        return self.view

    # --- reading ---

    def read_bytes(self, offset: int, length: int) -> bytes:
        if self.view is not None:
            return bytes(self.view[offset:offset + length])
        return _pread_all(self.fd, offset, length)

    def send(self, out_fd: int, offset: int, length: int, progress: Progress = None) -> None:
        """Copy a range to out_fd without a copy in user space. Pipes, sockets and files take
        sendfile (the kernel splices the pages); a character device (a terminal, /dev/null)
        takes write() straight from a read-only mapping, which sendfile would feed through
        a pipe page by page. A page that vanishes under write() is EFAULT, never SIGBUS."""
        end = offset + length
        if self.fd is not None and self.view is None:
            if not stat.S_ISCHR(os.fstat(out_fd).st_mode) or not length:
                _sendfile(out_fd, self.fd, offset, end, progress)
                return
            self.mapping(writable=False)
        while offset < end:
            offset += _write_some(out_fd, self.view[offset:min(end, offset + CHUNK)])
            if progress:
                progress(offset)

    # --- writing ---

    def write_bytes(self, data, offset: int) -> None:
        if self.fd is not None and self.view is None:
            try:
                _pwrite_all(self.fd, memoryview(data), offset)
                return
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # hugetlbfs: no write(); map it instead
                    raise
        self.mapping(writable=True)[offset:offset + len(data)] = data

    def receive(self, source: BinaryIO, offset: int, length: int, progress: Progress = None) -> int:
        """Copy up to `length` bytes from a file object into the segment, never more;
        returns how many arrived (fewer at the source's end of file)."""
        end, start = offset + length, offset
        src = source.fileno()
        if self.fd is not None and self.view is None and _is_regular(src) and length >= PARALLEL_FROM:
            return _parallel_copy(src, os.lseek(src, 0, os.SEEK_CUR), self.fd, offset, length, progress)
        if self.fd is not None and self.view is None and _is_regular(src):
            try:
                os.lseek(self.fd, offset, os.SEEK_SET)
                while offset < end:
                    sent = os.sendfile(self.fd, src, None, min(end - offset, 1 << 30))
                    if sent == 0:
                        break
                    offset += sent
                    if progress:
                        progress(offset - start)
                return offset - start
            except OSError as exc:
                if exc.errno not in (errno.EINVAL, errno.ENOSYS) or offset != start:
                    raise
        buf = bytearray(min(CHUNK, max(length, 1)))
        while offset < end:
            view = memoryview(buf)[:min(len(buf), end - offset)]
            got = source.readinto(view)
            if not got:
                break
            self.write_bytes(view[:got], offset)
            offset += got
            if progress:
                progress(offset - start)
        return offset - start

    def fill(self, byte: int, offset: int, length: int) -> None:
        block = bytes([byte]) * min(CHUNK, length)
        end = offset + length
        while offset < end:
            n = min(len(block), end - offset)
            self.write_bytes(block[:n], offset)
            offset += n

    def current_size(self) -> int:
        """The size now (another process may have resized a file since it was opened)."""
        if self.fd is not None:
            self.size = os.fstat(self.fd).st_size
        return self.size

    def grow(self, new_size: int) -> None:
        """Extend to new_size; never shrink (a concurrent --grow may have gone further)."""
        if new_size > self.current_size():
            os.ftruncate(self.fd, new_size)
            self.size = new_size

    # --- the write lock ---

    @contextlib.contextmanager
    def write_lock(self, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
        if self.shmid is not None:
            with sysv_lock(self.shmid, timeout):
                yield
            return
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise _busy(self.address, timeout) from None
                time.sleep(0.01)
        try:
            yield
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)


def _busy(address: str, timeout: float) -> Conflict:
    return Conflict(f"write {address}", f"another writer has held its lock for {timeout:.0f}s",
                    "try again when it is done")


def _lock_set() -> int:
    """The semaphore set of the SysV write locks: made with IPC_EXCL if missing; if present,
    it must be ours in shape (SYSV_LOCK_SLOTS semaphores), or nothing is written."""
    try:
        return syscalls.semget(SYSV_LOCK_KEY, SYSV_LOCK_SLOTS, syscalls.IPC_CREAT | syscalls.IPC_EXCL | 0o666)
    except ShmctlError as exc:
        if exc.errno != errno.EEXIST:
            raise
    try:
        return syscalls.semget(SYSV_LOCK_KEY, SYSV_LOCK_SLOTS, 0)
    except ShmctlError as exc:
        if exc.errno != errno.EINVAL:
            raise
        raise Conflict("SysV write lock", f"semaphore set key 0x{SYSV_LOCK_KEY:08x} exists but is not shmctl's "
                       f"(fewer than {SYSV_LOCK_SLOTS} semaphores)",
                       f"if nothing else uses it: ipcrm -S 0x{SYSV_LOCK_KEY:08x}") from None


@contextlib.contextmanager
def sysv_lock(shmid: int, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    semid = _lock_set()
    slot = shmid % SYSV_LOCK_SLOTS
    # wait for zero, then take it: one atomic semop, so a fresh set (all zero) is unlocked
    if not syscalls.semop(semid, [(slot, 0, 0), (slot, 1, syscalls.SEM_UNDO)], timeout):
        raise _busy(f"sysv:{shmid}", timeout)
    try:
        yield
    finally:
        syscalls.semop(semid, [(slot, -1, syscalls.SEM_UNDO)])


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


PARALLEL_FROM = 64 << 20


def _parallel_copy(src: int, src_offset: int, dst: int, offset: int, length: int, progress: Progress) -> int:
    """A large file-to-file copy in one thread per core, each with pread/pwrite over its own
    half: the syscalls drop the GIL, and one core alone does not reach memory bandwidth."""
    import threading
    parts = min(os.cpu_count() or 1, 4)
    step = -(-length // parts) // CHUNK * CHUNK or CHUNK
    done = [0] * parts
    errors: list = []

    def copy(i: int) -> None:
        buf = memoryview(bytearray(CHUNK))
        at, stop = i * step, min(length, (i + 1) * step)
        try:
            while at < stop:
                got = os.preadv(src, [buf[:min(CHUNK, stop - at)]], src_offset + at)
                if not got:
                    break
                _pwrite_all(dst, buf[:got], offset + at)
                at += got
                done[i] += got
                if progress and i == 0:
                    progress(sum(done))
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=copy, args=(i,)) for i in range(1, parts)]
    for thread in threads:
        thread.start()
    copy(0)
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    copied = sum(done)
    os.lseek(src, src_offset + copied, os.SEEK_SET)
    return copied


def _pread_all(fd: int, offset: int, length: int) -> bytes:
    chunks, end = [], offset + length
    while offset < end:
        chunk = os.pread(fd, min(end - offset, 1 << 30), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def _pwrite_all(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)


def _write_some(fd: int, data) -> int:
    try:
        return os.write(fd, data)
    except InterruptedError:
        return 0


def write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        view = view[_write_some(fd, view):]


def _sendfile(out_fd: int, in_fd: int, offset: int, end: int, progress: Progress) -> int:
    """sendfile as far as it goes; returns where it stopped (the caller finishes with writes
    where the output does not take sendfile, e.g. O_APPEND files)."""
    try:
        while offset < end:
            sent = os.sendfile(out_fd, in_fd, offset, min(end - offset, 1 << 30))
            if sent == 0:
                break
            offset += sent
            if progress:
                progress(offset)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.ENOSYS):
            raise
    while offset < end:  # what sendfile would not do, by plain reads and writes
        chunk = os.pread(in_fd, min(CHUNK, end - offset), offset)
        if not chunk:
            break
        write_all(out_fd, chunk)
        offset += len(chunk)
        if progress:
            progress(offset)
    return offset

