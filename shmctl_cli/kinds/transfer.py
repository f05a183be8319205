"""Bytes moved at the kernel's speed and in bounded memory, whatever their size (kinds/access.py
picks the path; `read`, `write` and `create --from` never hold a whole segment, file or pipe).

- file -> file (a regular FILE into a POSIX object or an mmap file): copy_file_range, which
  the kernel does in place on one filesystem (tmpfs to tmpfs: --atomic's staged input); across
  filesystems (Linux 5.19 and later: EXDEV) sendfile, which splices the source's page-cache
  pages into the target with one copy; read/write where neither goes (hugetlbfs has no write).
- pipe -> file: splice, one copy from the pipe's pages, nothing in user space.
- file or pipe -> a SysV segment: as root, the above into the segment's own shmem file (reached
  through our attachment's /proc/self/map_files entry); otherwise read() straight into the mapping.

Every loop goes CHUNK bytes at a time, reports progress per chunk and waits for a pipe in
signals.wait_readable, so that SIGINT/SIGTERM always get through.
"""
from __future__ import annotations

import errno
import os
from typing import Callable, Optional

CHUNK = 8 << 20  # bytes per call and per progress update: measured flat from 1 to 16 MiB
_UNSUPPORTED = (errno.EINVAL, errno.ENOSYS, errno.EXDEV, errno.EOPNOTSUPP, errno.EBADF)

Progress = Optional[Callable[[int], None]]


class Unsupported(Exception):
    """The kernel path does not apply to these files; `done` bytes went before it said so."""

    def __init__(self, done: int):
        super().__init__(done)
        self.done = done


def copy_file(src: int, src_offset: int, dst: int, dst_offset: int, length: int, progress: Progress = None) -> int:
    """Up to `length` bytes from file `src` to file `dst`, both at explicit offsets; returns how
    many (fewer at the source's end). Unsupported where no kernel path nor write() takes `dst`."""
    done = 0
    for step in (_copy_file_range, _sendfile, _pread_pwrite):
        try:
            while done < length:
                moved = step(src, src_offset + done, dst, dst_offset + done, min(CHUNK, length - done))
                if not moved:
                    return done
                done += moved
                if progress:
                    progress(done)
            return done
        except OSError as exc:
            if exc.errno not in _UNSUPPORTED:
                raise
    raise Unsupported(done)


def _copy_file_range(src: int, src_offset: int, dst: int, dst_offset: int, count: int) -> int:
    return os.copy_file_range(src, dst, count, src_offset, dst_offset)


def _sendfile(src: int, src_offset: int, dst: int, dst_offset: int, count: int) -> int:
    os.lseek(dst, dst_offset, os.SEEK_SET)  # sendfile writes at the target's position
    return os.sendfile(dst, src, src_offset, count)


def _pread_pwrite(src: int, src_offset: int, dst: int, dst_offset: int, count: int) -> int:
    data = os.pread(src, min(count, 1 << 20), src_offset)
    write_all_at(dst, memoryview(data), dst_offset)
    return len(data)


def splice_pipe(src: int, dst: int, dst_offset: int, length: int, progress: Progress = None) -> int:
    """Up to `length` bytes from pipe `src` into file `dst` at dst_offset; returns how many
    (fewer at the pipe's end). Unsupported where the file takes no splice (hugetlbfs)."""
    from .. import syscalls
    from ..signals import wait_readable
    _widen(src)
    done = 0
    while done < length:
        try:  # non-blocking on the pipe only (the flag, not the shared file description)
            moved = syscalls.splice(src, dst, min(CHUNK, length - done), dst_offset + done,
                                    syscalls.SPLICE_F_NONBLOCK)
        except BlockingIOError:
            wait_readable(src)  # no data yet: wait where a signal ends the wait
            continue
        except OSError as exc:
            if exc.errno in _UNSUPPORTED:
                raise Unsupported(done) from None
            raise
        if not moved:
            break
        done += moved
        if progress:
            progress(done)
    return done


def _widen(pipe: int) -> None:
    """Ask for a 1 MiB pipe buffer (F_SETPIPE_SZ; the writer then blocks 16 times less
    often); a refusal (the user's pipe quota, an older kernel) changes nothing."""
    import fcntl
    try:
        fcntl.fcntl(pipe, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass


def read_into(source, view: memoryview, length: int, progress: Progress = None,
              release: Optional[Callable[[int, int], None]] = None, src_offset: Optional[int] = None) -> int:
    """Up to `length` bytes of `source` (a file object; a regular file read at src_offset)
    straight into `view`; returns how many. `release(start, length)` is told of each chunk
    once it is written (the mapping's pages leave this process's RSS)."""
    done = 0
    fd = source.fileno() if src_offset is not None else None
    while done < length:
        chunk = view[done:done + min(CHUNK, length - done)]
        try:
            got = os.preadv(fd, [chunk], src_offset + done) if fd is not None else source.readinto(chunk)
        finally:
            chunk.release()
        if not got:
            break
        if release:
            release(done, got)
        done += got
        if progress:
            progress(done)
    return done


def write_all_at(fd: int, data: memoryview, offset: int) -> None:
    done = 0
    while done < len(data):
        done += os.pwrite(fd, data[done:], offset + done)
