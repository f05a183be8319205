"""A process that makes and holds real shared memory for the tests, independently of
shmctl's own code: ctypes for SysV and shm_open, Python's mmap for the rest.

    python holder.py '<json list of specs>'

Each spec is {"kind": "sysv"|"posix"|"anon"|"memfd"|"file"|"fd", ...}. For every object it
prints one JSON line with what the kernel gave it, then "ready", and holds everything until
its stdin closes; then it detaches, removes what it made (unless "keep") and exits.
"""
import ctypes
import json
import mmap
import os
import sys

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmget.argtypes = [ctypes.c_int32, ctypes.c_size_t, ctypes.c_int]
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
libc.shm_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint]
libc.shm_unlink.argtypes = [ctypes.c_char_p]
IPC_CREAT, IPC_EXCL, IPC_RMID, SHM_HUGETLB = 0o1000, 0o2000, 0, 0o4000


def check(value, what):
    if value in (-1, None) or value == ctypes.c_void_p(-1).value:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return value


def touch(buf, size, fill):
    if fill:
        ctypes.memset(buf, 0x5A, size)


def make_sysv(spec, cleanup):
    key = spec.get("key", 0)
    key = key - (1 << 32) if key > 0x7FFFFFFF else key
    flags = IPC_CREAT | IPC_EXCL | spec.get("mode", 0o600) | (SHM_HUGETLB if spec.get("hugetlb") else 0)
    shmid = check(libc.shmget(key, spec["size"], flags), "shmget")
    if not spec.get("keep"):
        cleanup.append(lambda: libc.shmctl(shmid, IPC_RMID, None))
    info = {"kind": "sysv", "shmid": shmid}
    if spec.get("attach", True):
        addr = check(libc.shmat(shmid, None, 0), "shmat")
        touch(addr, spec.get("touch", 0), True)
        cleanup.insert(0, lambda: libc.shmdt(addr))
        info["start"] = addr
    if spec.get("rmid"):  # mark for destruction while attached: SHM_DEST
        libc.shmctl(shmid, IPC_RMID, None)
    return info


def map_fd(fd, spec, info, holds):
    size = spec["size"]
    if spec.get("map", True):
        prot = mmap.PROT_READ | (0 if spec.get("readonly") else mmap.PROT_WRITE)
        m = mmap.mmap(fd, size, mmap.MAP_SHARED, prot)
        if spec.get("touch"):
            m[: spec["touch"]] = b"Z" * spec["touch"]
        holds.append(m)
        info["start"] = ctypes.addressof(ctypes.c_char.from_buffer(m)) if not spec.get("readonly") else None
    st = os.fstat(fd)
    info.update(inode=st.st_ino, dev=st.st_dev)
    if spec.get("close_fd", True) and spec.get("map", True):
        os.close(fd)
    else:
        holds.append(fd)


def make_posix(spec, cleanup, holds):
    name = spec["name"].encode()
    fd = check(libc.shm_open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, spec.get("mode", 0o600)), "shm_open")
    if not spec.get("keep"):
        cleanup.append(lambda: libc.shm_unlink(name))
    os.ftruncate(fd, spec["size"])
    info = {"kind": "posix"}
    map_fd(fd, spec, info, holds)
    return info


def make_file(spec, cleanup, holds):
    flags = os.O_RDONLY if spec.get("readonly") else os.O_RDWR | os.O_CREAT
    fd = os.open(spec["path"], flags, 0o600)
    if not spec.get("readonly"):
        os.ftruncate(fd, spec["size"])
    info = {"kind": "file"}
    map_fd(fd, spec, info, holds)
    return info


def make_anon(spec, holds):
    m = mmap.mmap(-1, spec["size"], mmap.MAP_SHARED)
    if spec.get("touch"):
        m[: spec["touch"]] = b"A" * spec["touch"]
    holds.append(m)
    start = ctypes.addressof(ctypes.c_char.from_buffer(m))
    inode = int(os.stat(f"/proc/self/map_files/{start:x}-{start + spec['size']:x}").st_ino)
    return {"kind": "anon", "start": start, "inode": inode}


def make_memfd(spec, holds):
    fd = os.memfd_create(spec["name"])
    os.ftruncate(fd, spec["size"])
    info = {"kind": "memfd"}
    map_fd(fd, spec, info, holds)
    return info


def main():
    specs = json.loads(sys.argv[1])
    cleanup, holds, infos = [], [], []
    try:
        for spec in specs:
            kind = spec["kind"]
            if kind == "sysv":
                info = make_sysv(spec, cleanup)
            elif kind == "posix":
                info = make_posix(spec, cleanup, holds)
            elif kind == "file":
                info = make_file(spec, cleanup, holds)
            elif kind == "anon":
                info = make_anon(spec, holds)
            else:
                info = make_memfd(spec, holds)
            infos.append(info)
        child = 0
        if any(s.get("fork") for s in specs):
            child = os.fork()
            if child == 0:  # inherits every attachment and mapping: nattch 2
                sys.stdin.read()
                os._exit(0)
        for info in infos:
            info.update(pid=os.getpid(), child=child or None)
            print(json.dumps(info), flush=True)
        print("ready", flush=True)
        sys.stdin.read()
        if child:
            os.waitpid(child, 0)
    finally:
        for action in cleanup:
            action()


if __name__ == "__main__":
    main()
