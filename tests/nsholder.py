"""A process in namespaces of its own, as a container's would be: run as
`unshare --ipc --mount --propagation private python nsholder.py SPEC`. It mounts a small tmpfs
on /dev/shm (and on /mnt), makes what SPEC asks, prints one JSON line (pid, namespaces, what it
made) and holds everything until stdin closes; then it removes its SysV segment (the
namespace dies with it anyway).

SPEC (JSON): {"sysv_size": N, "key": K, "posix": {"NAME": size}, "mnt_file": size,
              "dev_shm_symlink": "/abs/target"}"""
import ctypes
import json
import mmap
import os
import sys

libc = ctypes.CDLL("libc.so.6", use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


def mount_tmpfs(where: str, size: str) -> None:
    if libc.mount(b"nsholder", where.encode(), b"tmpfs", 0, f"size={size},mode=1777".encode()) != 0:
        raise OSError(ctypes.get_errno(), f"mount tmpfs {where}")


def main() -> None:
    spec = json.loads(sys.argv[1])
    made, keep = {"pid": os.getpid()}, []
    for ns in ("ipc", "mnt"):
        made[ns] = os.stat(f"/proc/self/ns/{ns}").st_ino
    if spec.get("dev_shm_symlink"):  # a container root replaces its /dev/shm with a symlink
        mount_tmpfs("/dev", "1m")
        os.symlink(spec["dev_shm_symlink"], "/dev/shm")
    else:
        mount_tmpfs("/dev/shm", "8m")
    if spec.get("sysv_size"):
        shmid = libc.shmget(spec.get("key", 0), spec["sysv_size"], 0o1600)
        if shmid < 0 or libc.shmat(shmid, None, 0) in (None, ctypes.c_void_p(-1).value):
            raise OSError(ctypes.get_errno(), "shmget/shmat")
        made["shmid"] = shmid
    for name, size in spec.get("posix", {}).items():
        fd = os.open(f"/dev/shm/{name}", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        os.ftruncate(fd, size)
        m = mmap.mmap(fd, size)
        m[:5] = b"hello"
        keep.append(m)
        made.setdefault("inodes", {})[name] = os.fstat(fd).st_ino
    if spec.get("mnt_file"):
        mount_tmpfs("/mnt", "4m")
        fd = os.open("/mnt/f", os.O_CREAT | os.O_RDWR, 0o600)
        os.ftruncate(fd, spec["mnt_file"])
        keep.append(mmap.mmap(fd, spec["mnt_file"]))
    print(json.dumps(made), flush=True)
    sys.stdin.read()
    if "shmid" in made:
        libc.shmctl(made["shmid"], 0, None)


if __name__ == "__main__":
    main()
