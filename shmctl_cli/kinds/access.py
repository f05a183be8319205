"""An open segment of any kind, for `read`, `write`, `create --from` and `attach`.

File-backed segments (POSIX objects, mmap files, memfd and anonymous memory reached through
/proc/PID/map_files) are read and written through their file descriptor: sendfile, pread and
pwrite report a full tmpfs as ENOSPC, where a store into a mapping would die of SIGBUS.
SysV segments go through their mapping, or, as root, through the shmem file behind it; hugetlbfs
files (which have no write()) go through a mapping.

Two shmctl writers never interleave: a write holds the write lock of kinds/lock.py, an
flock on a file named after the segment in a directory only the writer's uid can enter (not
the object itself, which any reader could flock to stall root's writes).
"""
from __future__ import annotations

import errno
import mmap
import os
import stat
from typing import BinaryIO, Callable, ContextManager, Optional, Tuple

CHUNK = 1 << 20

Progress = Optional[Callable[[int], None]]


class Handle:
    """`size` bytes reachable through `fd` (file-backed) or `view` (a mapping at `base`)."""

    def __init__(self, address: str, size: int, fd: Optional[int] = None, view: Optional[memoryview] = None,
                 on_close: Optional[Callable[[], None]] = None, shmid: Optional[int] = None,
                 base: Optional[int] = None, ipc_namespace: int = 0):
        self.address, self.size, self.fd, self.view = address, size, fd, view
        # a SysV segment's: the inode of the IPC namespace its shmid belongs to (System.ipc_namespace_inode)
        self.shmid, self.base, self.ipc_namespace = shmid, base, ipc_namespace
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
            data = bytes(self.view[offset:offset + length])
            self.release(offset, length)
            return data
        return _pread_all(self.fd, offset, length)

    def send(self, out_fd: int, offset: int, length: int, progress: Progress = None) -> int:
        """Copy a range to out_fd without a copy in user space; returns how many bytes were
        copied, fewer than `length` if the file shrank meanwhile (the caller says so). Pipes,
        sockets and files take sendfile (the kernel splices the pages); a character device
        (a terminal, /dev/null) takes write() straight from a read-only mapping, which
        sendfile would feed through a pipe page by page. A page that vanishes under write()
        (the file was truncated) is EFAULT, never SIGBUS: that is where the copy stops."""
        start, end = offset, offset + length
        if self.fd is not None and self.view is None:
            if not stat.S_ISCHR(os.fstat(out_fd).st_mode) or not length:
                return _sendfile(out_fd, self.fd, offset, end, progress) - start
            self.mapping(writable=False)
        while offset < end:
            chunk = self.view[offset:min(end, offset + CHUNK)]
            try:
                written = _write_some(out_fd, chunk)
                self.release(offset, written)
                offset += written
            except OSError as exc:
                if exc.errno != errno.EFAULT or self.shmid is not None:
                    raise
                break
            finally:  # an error's traceback keeps the slice: the mapping could not be closed
                chunk.release()
            if progress:
                progress(offset)
        if self.shmid is None and self.fd is not None:  # /dev/null never touches the pages: ask the file
            offset = min(offset, max(start, os.fstat(self.fd).st_size))
        return offset - start

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
        self.release(offset, len(data))

    def receive(self, source: BinaryIO, offset: int, length: int, progress: Progress = None) -> int:
        """Copy up to `length` bytes from a file object into the segment, never more, in
        bounded memory (kinds/transfer.py): a file by copy_file_range or sendfile, a pipe by
        splice, into a mapping by read(); returns how many arrived (fewer at the source's end
        of file). A regular source is read from its position, which is moved past what was read."""
        from . import transfer
        src = source.fileno()
        at = os.lseek(src, 0, os.SEEK_CUR) if _is_regular(src) else None
        done = 0
        target = self.fd if self.view is None else self._attached_file(offset + length)
        if target is not None:
            try:
                if at is not None:
                    done = transfer.copy_file(src, at, target, offset, length, progress)
                else:
                    done = transfer.splice_pipe(src, target, offset, length, progress)
                length = done  # the source ended, or the length was reached
            except transfer.Unsupported as exc:  # hugetlbfs: no write() nor splice; map it
                done = exc.done
            finally:
                if target != self.fd:
                    os.close(target)
        if done < length:
            done += self._read_into_mapping(source, at, offset, done, length, progress)
        if at is not None:
            os.lseek(src, at + done, os.SEEK_SET)
        return done

    def _attached_file(self, end_of_write: int) -> Optional[int]:
        """A SysV segment's own shmem file, opened through our attachment's entry in
        /proc/self/map_files (root only: the kernel asks for CAP_SYS_ADMIN), or None. Written
        through the file, pages are filled by the kernel's write path: a copy into the mapping
        instead takes a page fault per page, and 1 GiB takes about a quarter longer. The
        entry is our own mapping, and the file must be the segment (its inode is the shmid).
        Not past the segment's end (the file would grow), nor where RLIMIT_FSIZE (ulimit -f)
        would stop a file write that a store into the mapping is not held to."""
        if self.shmid is None or self.base is None or end_of_write > self.size or _file_size_limited():
            return None
        end = self.base + -(-self.size // mmap.PAGESIZE) * mmap.PAGESIZE
        try:
            fd = os.open(f"/proc/self/map_files/{self.base:x}-{end:x}", os.O_RDWR | os.O_CLOEXEC)
        except OSError:  # not root, or a huge-page mapping (whose end is rounded further)
            return None
        st = os.fstat(fd)
        if st.st_ino == self.shmid and stat.S_ISREG(st.st_mode) and st.st_size == self.size:
            return fd
        os.close(fd)
        return None

    def _read_into_mapping(self, source, at: Optional[int], offset: int, done: int, length: int,
                           progress: Progress) -> int:
        from . import transfer
        view = self.mapping(writable=True)[offset + done:offset + length]
        start = offset + done
        try:
            return transfer.read_into(source, view, length - done, progress and (lambda n: progress(done + n)),
                                      release=lambda at_, n: self.release(start + at_, n),
                                      src_offset=None if at is None else at + done)
        finally:
            view.release()

    def release(self, offset: int, length: int) -> None:
        """The range was copied: drop its pages from this process's page tables (never from the
        segment), so that RSS stays bounded by a chunk, not by the segment's size."""
        from .. import syscalls
        if self.base is not None:
            syscalls.release_pages(self.base + offset, length)
        elif self._map is not None:
            start = offset - offset % mmap.PAGESIZE
            try:
                self._map.madvise(mmap.MADV_DONTNEED, start, min(offset + length, len(self._map)) - start)
            except (OSError, ValueError):
                pass

    # --- a pipe whose length matters before writing (write -: the first buffer, --atomic, --dry-run) ---

    def gather(self, source: BinaryIO, length: int) -> bytearray:
        """Up to `length` bytes of a pipe in memory (fewer only at its end)."""
        buf = bytearray(length)
        view = memoryview(buf)
        got = 0
        try:
            while got < length:
                n = source.readinto(view[got:])
                if not n:
                    break
                got += n
        finally:
            view.release()
        del buf[got:]
        return buf

    def count_input(self, source: BinaryIO, limit: int, progress: Progress = None) -> int:
        """How many bytes the pipe brings, read and dropped, up to `limit` (all if negative)."""
        buf = memoryview(bytearray(CHUNK))
        total = 0
        while limit < 0 or total < limit:
            n = source.readinto(buf[:CHUNK if limit < 0 else min(CHUNK, limit - total)])
            if not n:
                break
            total += n
            if progress:
                progress(total)
        return total

    def stage_input(self, source: BinaryIO, limit: int, progress: Progress = None) -> Tuple[BinaryIO, int]:
        """The pipe's bytes, up to `limit` (all if negative), in an unlinked temporary file
        (O_TMPFILE) on the segment's own filesystem where it has a directory we can reach, else
        in $TMPDIR; (that file at its start, how many bytes). Closing it frees it."""
        import tempfile

        from . import transfer
        try:
            staged = tempfile.TemporaryFile(dir=self._directory())
        except OSError:
            staged = tempfile.TemporaryFile()
        want = limit if limit >= 0 else 1 << 62
        try:
            try:
                got = transfer.splice_pipe(source.fileno(), staged.fileno(), 0, want, progress)
            except transfer.Unsupported as exc:
                got = exc.done
                while got < want:
                    chunk = self.gather(source, min(CHUNK, want - got))
                    if not chunk:
                        break
                    os.pwrite(staged.fileno(), chunk, got)
                    got += len(chunk)
        except BaseException:
            staged.close()
            raise
        return staged, got

    def _directory(self) -> Optional[str]:
        """The directory of a file-backed segment, as this process sees it; None for SysV, a
        deleted object or one reached through another mount namespace."""
        if self.fd is None or self.shmid is not None:
            return None
        try:
            path = os.readlink(f"/proc/self/fd/{self.fd}")
        except OSError:
            return None
        if not path.startswith("/") or path.endswith(" (deleted)"):
            return None
        return os.path.dirname(path)

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

    # --- held in this process (attach) ---

    def attach(self, readonly: bool) -> Tuple[int, Callable[[], None]]:
        """(address, detach) of the segment in this process: a SysV segment is attached
        already (shmat), a file is mapped MAP_SHARED here."""
        from .. import syscalls
        if self.base is not None:
            return self.base, lambda: None
        start = syscalls.mmap_shared(self.fd, self.size, writable=not readonly)
        return start, lambda: syscalls.munmap(start, self.size)

    def lock_pages(self, start: int, where: str) -> None:
        """mlock; on a file, first whether its filesystem has room for every page (a full tmpfs
        makes mlock fail with the same ENOMEM as RLIMIT_MEMLOCK), and again if mlock failed."""
        from .. import syscalls
        from ..errors import LimitReached
        from .room import check_lock_room
        if self.fd is not None:
            check_lock_room(where, self.fd)
        try:
            syscalls.mlock(start, self.size)
        except LimitReached:
            if self.fd is not None:
                check_lock_room(where, self.fd)  # a writer took the space meanwhile
            raise

    # --- the write lock ---

    def write_lock(self, timeout: Optional[float] = None) -> ContextManager[None]:
        """Held while writing, so that two shmctl writes never interleave (kinds/lock.py)."""
        from . import lock
        if self.shmid is not None:
            name = lock.sysv_lock_name(self.shmid, self.ipc_namespace)
        else:
            name = lock.file_lock_name(os.fstat(self.fd))
        return lock.write_lock(self.address, name, timeout)


def _file_size_limited() -> bool:
    import resource
    return resource.getrlimit(resource.RLIMIT_FSIZE)[0] != resource.RLIM_INFINITY


def _is_regular(fd: int) -> bool:
    return stat.S_ISREG(os.fstat(fd).st_mode)


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

