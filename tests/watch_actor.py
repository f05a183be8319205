"""A process that makes shared-memory changes on command, one per stdin line, and answers
"ok ..." after each: the tests of `shmctl watch` know its pid, so they can check who the
kernel (fanotify, SysV lpid/cpid) says did what.

    posix-create NAME SIZE | posix-resize NAME SIZE | posix-map NAME | posix-unmap NAME
    posix-unlink NAME | sysv-create SIZE | sysv-attach SHMID | sysv-detach SHMID | sysv-rmid SHMID
NAME is hex (any bytes). Everything left at stdin's end is detached and removed.
"""
import ctypes
import mmap
import os
import sys

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.shmdt.argtypes = [ctypes.c_void_p]
libc.shmctl.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_void_p]
IPC_CREAT, IPC_EXCL, IPC_RMID = 0o1000, 0o2000, 0


def path(name_hex):
    return b"/dev/shm/" + bytes.fromhex(name_hex)


def main():
    maps, attached, names, shmids = {}, {}, set(), set()
    for line in sys.stdin:
        word, *args = line.split()
        answer = ""
        if word == "posix-create":
            fd = os.open(path(args[0]), os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_NOFOLLOW, 0o600)
            os.ftruncate(fd, int(args[1]))
            os.close(fd)
            names.add(args[0])
        elif word == "posix-resize":
            fd = os.open(path(args[0]), os.O_RDWR | os.O_NOFOLLOW)
            os.ftruncate(fd, int(args[1]))
            os.close(fd)
        elif word == "posix-map":
            fd = os.open(path(args[0]), os.O_RDWR | os.O_NOFOLLOW)
            maps[args[0]] = mmap.mmap(fd, os.fstat(fd).st_size, mmap.MAP_SHARED)
            os.close(fd)
        elif word == "posix-unmap":
            maps.pop(args[0]).close()
        elif word == "posix-unlink":
            os.unlink(path(args[0]))
            names.discard(args[0])
        elif word == "sysv-create":
            shmid = libc.shmget(0, int(args[0]), IPC_CREAT | IPC_EXCL | 0o600)
            shmids.add(shmid)
            answer = str(shmid)
        elif word == "sysv-attach":
            attached[int(args[0])] = libc.shmat(int(args[0]), None, 0)
        elif word == "sysv-detach":
            libc.shmdt(attached.pop(int(args[0])))
        elif word == "sysv-rmid":
            libc.shmctl(int(args[0]), IPC_RMID, None)
            shmids.discard(int(args[0]))
        print("ok", answer, flush=True)
    for m in maps.values():
        m.close()
    for addr in attached.values():
        libc.shmdt(addr)
    for shmid in shmids:
        libc.shmctl(shmid, IPC_RMID, None)
    for name in names:
        try:
            os.unlink(path(name))
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
