"""ctypes bindings of the SysV and POSIX shared-memory calls: one signatures table,
errno turned into shmctl's exceptions. Struct layouts are those of glibc on 64-bit Linux
(x86_64, aarch64); tests/test_syscalls.py checks them against the C compiler."""
from __future__ import annotations

import ctypes
import os
from ctypes import Structure, c_char_p, c_int, c_int32, c_long, c_size_t, c_uint, c_uint32, c_ulong, c_ushort, c_void_p
from typing import Optional

from .errors import UsageError, from_errno, local_error
from .units import KEY_MAX

IPC_CREAT, IPC_EXCL = 0o1000, 0o2000
IPC_RMID, IPC_SET, IPC_STAT, IPC_INFO = 0, 1, 2, 3
SHM_LOCK, SHM_UNLOCK, SHM_STAT, SHM_INFO, SHM_STAT_ANY = 11, 12, 13, 14, 15
SHM_RDONLY = 0o10000
SHM_HUGETLB, SHM_NORESERVE = 0o4000, 0o10000
SHM_HUGE_SHIFT = 26
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class IpcPerm(Structure):
    _fields_ = [("key", c_int32), ("uid", c_uint32), ("gid", c_uint32), ("cuid", c_uint32),
                ("cgid", c_uint32), ("mode", c_uint32), ("seq", c_ushort), ("_pad2", c_ushort),
                ("_reserved1", c_ulong), ("_reserved2", c_ulong)]


class ShmidDs(Structure):
    _fields_ = [("shm_perm", IpcPerm), ("shm_segsz", c_size_t), ("shm_atime", c_long),
                ("shm_dtime", c_long), ("shm_ctime", c_long), ("shm_cpid", c_int),
                ("shm_lpid", c_int), ("shm_nattch", c_ulong), ("_reserved5", c_ulong),
                ("_reserved6", c_ulong)]


class ShmInfo(Structure):  # struct shminfo: IPC_INFO
    _fields_ = [("shmmax", c_ulong), ("shmmin", c_ulong), ("shmmni", c_ulong), ("shmseg", c_ulong),
                ("shmall", c_ulong)] + [(f"_reserved{i}", c_ulong) for i in range(1, 5)]


class ShmUsage(Structure):  # struct shm_info: SHM_INFO
    _fields_ = [("used_ids", c_int), ("shm_tot", c_ulong), ("shm_rss", c_ulong), ("shm_swp", c_ulong),
                ("swap_attempts", c_ulong), ("swap_successes", c_ulong)]


def _load_libc() -> ctypes.CDLL:
    try:
        return ctypes.CDLL("libc.so.6", use_errno=True)
    except OSError:  # musl and others
        return ctypes.CDLL(None, use_errno=True)


_libc = _load_libc()

# name: (restype, argtypes)
SIGNATURES = {
    "shmget": (c_int, [c_int32, c_size_t, c_int]),
    "shmat": (c_void_p, [c_int, c_void_p, c_int]),
    "shmdt": (c_int, [c_void_p]),
    "shmctl": (c_int, [c_int, c_int, c_void_p]),
    "ftok": (c_int32, [c_char_p, c_int]),
    "shm_open": (c_int, [c_char_p, c_int, c_uint]),
    "shm_unlink": (c_int, [c_char_p]),
    "mlock": (c_int, [c_void_p, c_size_t]),
    "munlock": (c_int, [c_void_p, c_size_t]),
    "mmap": (c_void_p, [c_void_p, c_size_t, c_int, c_int, c_int, ctypes.c_int64]),
    "munmap": (c_int, [c_void_p, c_size_t]),
    "renameat2": (c_int, [c_int, c_char_p, c_int, c_char_p, c_uint]),
    "setns": (c_int, [c_int, c_int]),
    "name_to_handle_at": (c_int, [c_int, c_char_p, c_void_p, c_void_p, c_int]),
    # shmctl watch: notifications of /dev/shm (watch/notify.py)
    "inotify_init1": (c_int, [c_int]),
    "inotify_add_watch": (c_int, [c_int, c_char_p, c_uint32]),
    "fanotify_init": (c_int, [c_uint, c_uint]),
    "fanotify_mark": (c_int, [c_int, c_uint, ctypes.c_uint64, c_int, c_char_p]),
    # moving data (kinds/transfer.py): splice where os.splice is missing (Python < 3.10)
    "splice": (ctypes.c_ssize_t, [c_int, c_void_p, c_int, c_void_p, c_size_t, c_uint]),
    "madvise": (c_int, [c_void_p, c_size_t, c_int]),
}


def _bind(name: str):
    try:
        func = getattr(_libc, name)
    except AttributeError:  # glibc < 2.34 keeps shm_open in librt
        func = getattr(ctypes.CDLL("librt.so.1", use_errno=True), name)
    func.restype, func.argtypes = SIGNATURES[name]
    return func


_f = {name: _bind(name) for name in SIGNATURES}
_SHMAT_FAILED = ctypes.c_void_p(-1).value


def _fail(what: str, hint: Optional[str] = None):
    return from_errno(ctypes.get_errno(), what, hint)


def _signed_key(key: int) -> int:
    if not 0 <= key <= KEY_MAX:  # c_int32 would silently wrap, maybe to IPC_PRIVATE
        raise UsageError(f"invalid key {key}", "a SysV key is 32 bits")
    return key - (1 << 32) if key > 0x7FFFFFFF else key


def shmget(key: int, size: int, flags: int) -> int:
    shmid = _f["shmget"](_signed_key(key), size, flags)
    if shmid < 0:
        raise _fail(f"shmget key 0x{key:08x} size {size}")
    return shmid


def shmat(shmid: int, readonly: bool = False) -> int:
    addr = _f["shmat"](shmid, None, SHM_RDONLY if readonly else 0)
    if addr is None or addr == _SHMAT_FAILED:
        raise _fail(f"shmat sysv:{shmid}")
    return addr


def shmdt(addr: int) -> None:
    if _f["shmdt"](addr) < 0:
        raise _fail("shmdt")


def shmctl_stat(shmid: int) -> ShmidDs:
    ds = ShmidDs()
    if _f["shmctl"](shmid, IPC_STAT, ctypes.byref(ds)) < 0:
        raise _fail(f"IPC_STAT sysv:{shmid}")
    return ds


def shm_stat_index(index: int, any_mode: bool = True) -> tuple:
    """SHM_STAT(_ANY) by kernel index: (shmid, ShmidDs)."""
    ds = ShmidDs()
    shmid = _f["shmctl"](index, SHM_STAT_ANY if any_mode else SHM_STAT, ctypes.byref(ds))
    if shmid < 0:
        raise _fail(f"SHM_STAT index {index}")
    return shmid, ds


def shmctl_set(shmid: int, uid: int, gid: int, mode: int) -> None:
    ds = shmctl_stat(shmid)
    ds.shm_perm.uid, ds.shm_perm.gid, ds.shm_perm.mode = uid, gid, mode
    if _f["shmctl"](shmid, IPC_SET, ctypes.byref(ds)) < 0:
        raise _fail(f"IPC_SET sysv:{shmid}")


def shmctl_rmid(shmid: int) -> None:
    if _f["shmctl"](shmid, IPC_RMID, None) < 0:
        raise _fail(f"IPC_RMID sysv:{shmid}")


def shmctl_lock(shmid: int, lock: bool = True) -> None:
    if _f["shmctl"](shmid, SHM_LOCK if lock else SHM_UNLOCK, None) < 0:
        raise _fail(f"{'SHM_LOCK' if lock else 'SHM_UNLOCK'} sysv:{shmid}",
                    "needs CAP_IPC_LOCK or RLIMIT_MEMLOCK room")


def ipc_info() -> ShmInfo:
    info = ShmInfo()
    if _f["shmctl"](0, IPC_INFO, ctypes.byref(info)) < 0:
        raise _fail("IPC_INFO")
    return info


def shm_info() -> ShmUsage:
    return shm_info_and_index()[0]


def shm_info_and_index() -> tuple:
    """SHM_INFO: the usage counters, and the highest index in use (for SHM_STAT walks)."""
    usage = ShmUsage()
    highest = _f["shmctl"](0, SHM_INFO, ctypes.byref(usage))
    if highest < 0:
        raise _fail("SHM_INFO")
    return usage, highest


INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1


def ftok(path: str, proj: int) -> int:
    """glibc's key: (proj & 0xff) << 24 | (st_dev & 0xff) << 16 | (st_ino & 0xffff). `proj` is
    a C int (c_int would wrap a larger one silently); 0xffffffff is a key, so -1 is an error
    only with errno set. Key 0 is IPC_PRIVATE: it names no segment and would create a new one."""
    if not INT_MIN <= proj <= INT_MAX:
        raise UsageError(f"invalid ftok project {proj}", "ftok takes a C int")
    ctypes.set_errno(0)
    key = _f["ftok"](os.fsencode(path), proj)
    err = ctypes.get_errno()
    if key == -1 and err:  # PATH is a local file: missing is exit 2, never "no such segment"
        error = local_error(OSError(err, os.strerror(err)), f"ftok {path}")
        error.hint = error.hint or "the path must exist"
        raise error
    return check_ftok_key(key & KEY_MAX, path, proj)


def check_ftok_key(key: int, path: str, proj: int) -> int:
    if key == 0:
        raise UsageError(f"ftok {path},{proj}", "the key is 0 = IPC_PRIVATE, which names no segment",
                         "the project id's low 8 bits are 0 and so are the file's; use a project id 1-255")
    return key


def shm_open(name: str, flags: int, mode: int = 0o600) -> int:
    """glibc's shm_open adds O_NOFOLLOW and O_CLOEXEC itself."""
    fd = _f["shm_open"](os.fsencode("/" + name), flags | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    if fd < 0:
        raise _fail(f"shm_open /{name}")
    return fd


def shm_unlink(name: str) -> None:
    if _f["shm_unlink"](os.fsencode("/" + name)) < 0:
        raise _fail(f"shm_unlink /{name}")


def mlock(addr: int, length: int, lock: bool = True) -> None:
    if _f["mlock" if lock else "munlock"](addr, length) < 0:
        raise _fail("mlock", "RLIMIT_MEMLOCK (ulimit -l) too small or CAP_IPC_LOCK missing")


PROT_READ, PROT_WRITE, MAP_SHARED = 1, 2, 1


def mmap_shared(fd: int, length: int, writable: bool) -> int:
    """mmap(MAP_SHARED) returning the address, so that it can be mlocked and shown."""
    prot = PROT_READ | (PROT_WRITE if writable else 0)
    addr = _f["mmap"](None, length, prot, MAP_SHARED, fd, 0)
    if addr is None or addr == _SHMAT_FAILED:
        raise _fail("mmap")
    return addr


def munmap(addr: int, length: int) -> None:
    if _f["munmap"](addr, length) < 0:
        raise _fail("munmap")



CLONE_NEWIPC = 0x08000000


def setns_ipc(fd: int, what: str) -> None:
    """Join the IPC namespace that `fd` (/proc/PID/ns/ipc) stands for: the SysV calls and
    /proc/sysvipc/shm then see that namespace's segments. Any thread may (unlike a mount or
    user namespace), so the running process itself moves; CAP_SYS_ADMIN is needed."""
    if _f["setns"](fd, CLONE_NEWIPC) != 0:
        raise _fail(what, "entering another IPC namespace needs root (CAP_SYS_ADMIN)")


AT_SYMLINK_FOLLOW = 0x400
MAX_HANDLE_SZ = 128


def file_handle(path: str) -> Optional[bytes]:
    """name_to_handle_at(2) of the file behind `path` (a /proc/PID/map_files link is followed):
    the handle type and bytes, which on tmpfs and the shmem mount hold the inode number and its
    random generation. None where the filesystem has no handles (hugetlbfs: EOPNOTSUPP) or the
    link may not be followed (map_files needs CAP_SYS_ADMIN)."""
    buf = ctypes.create_string_buffer(8 + MAX_HANDLE_SZ)  # struct file_handle: bytes, type, f_handle[]
    ctypes.c_uint.from_buffer(buf).value = MAX_HANDLE_SZ
    mount_id = c_int()
    if _f["name_to_handle_at"](-100, os.fsencode(path), buf, ctypes.byref(mount_id), AT_SYMLINK_FOLLOW) != 0:
        return None  # AT_FDCWD = -100
    size = ctypes.c_uint.from_buffer(buf).value
    return buf.raw[4:8 + size]


RENAME_NOREPLACE = 1


def rename_noreplace(dir_fd: int, old: str, new: str) -> None:
    """renameat2(RENAME_NOREPLACE) within one directory: EEXIST if `new` exists (a symlink
    included, never followed); EINVAL where the filesystem does not support the flag."""
    if _f["renameat2"](dir_fd, os.fsencode(old), dir_fd, os.fsencode(new), RENAME_NOREPLACE) < 0:
        raise _fail(f"rename {old} to {new}")


# --- notifications (shmctl watch) ---

def inotify_init1(flags: int) -> int:
    fd = _f["inotify_init1"](flags)
    if fd < 0:
        raise _fail("inotify_init1")
    return fd


def inotify_add_watch(fd: int, path: str, mask: int) -> int:
    wd = _f["inotify_add_watch"](fd, os.fsencode(path), mask)
    if wd < 0:
        raise _fail(f"inotify_add_watch {path}")
    return wd


def fanotify_init(flags: int, event_flags: int) -> int:
    """An fanotify group; needs CAP_SYS_ADMIN, or (kernel >= 5.13) FAN_REPORT_FID for an
    unprivileged one, which is told no pid but its own."""
    fd = _f["fanotify_init"](flags, event_flags)
    if fd < 0:
        raise _fail("fanotify_init", "needs CAP_SYS_ADMIN for the pids of other processes")
    return fd


def fanotify_mark(fd: int, flags: int, mask: int, dir_fd: int, what: str) -> None:
    """Mark the object that `dir_fd` is (the path argument NULL)."""
    if _f["fanotify_mark"](fd, flags, mask, dir_fd, None) < 0:
        raise _fail(f"fanotify_mark {what}")


# --- moving data (kinds/transfer.py) ---

SPLICE_F_NONBLOCK, MADV_DONTNEED = 2, 4


def splice(fd_in: int, fd_out: int, count: int, offset_out: int, flags: int = 0) -> int:
    """splice(2) from a pipe into a file at `offset_out`, the file's position untouched; raises
    OSError like os.splice (which Python 3.10 added)."""
    if hasattr(os, "splice"):
        return os.splice(fd_in, fd_out, count, offset_dst=offset_out, flags=flags)
    offset = ctypes.c_int64(offset_out)
    moved = _f["splice"](fd_in, None, fd_out, ctypes.byref(offset), count, flags)
    if moved < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return moved


def release_pages(addr: int, length: int) -> None:
    """madvise(MADV_DONTNEED) of our mapping of shared memory: drops the page-table entries
    only (the pages stay in the segment), so a copy through a mapping does not grow this
    process's RSS by the segment's size. Best effort: a range the kernel refuses (a hugetlb
    mapping not aligned to its page size) just stays mapped."""
    start = addr - addr % PAGE_SIZE
    _f["madvise"](start, addr + length - start, MADV_DONTNEED)


def memory_at(addr: int, length: int):
    """A writable memoryview over attached memory (valid until shmdt)."""
    return memoryview((ctypes.c_char * length).from_address(addr)).cast("B")


__all__ = [name for name in dir() if not name.startswith("_")]
