"""The ctypes layer against the C compiler and the real kernel."""
import ctypes
import errno
import os
import shutil
import subprocess

import pytest

from conftest import needs_isolation
from shmctl_cli import syscalls
from shmctl_cli.errors import Conflict, NotFound, ShmctlError, UsageError

C_LAYOUT = r"""
#define _GNU_SOURCE
#include <stdio.h>
#include <stddef.h>
#include <sys/ipc.h>
#include <sys/shm.h>
int main(void) {
    printf("IpcPerm %zu key=%zu uid=%zu gid=%zu cuid=%zu cgid=%zu mode=%zu seq=%zu\n", sizeof(struct ipc_perm),
           offsetof(struct ipc_perm, __key), offsetof(struct ipc_perm, uid), offsetof(struct ipc_perm, gid),
           offsetof(struct ipc_perm, cuid), offsetof(struct ipc_perm, cgid), offsetof(struct ipc_perm, mode),
           offsetof(struct ipc_perm, __seq));
    printf("ShmidDs %zu shm_segsz=%zu shm_atime=%zu shm_dtime=%zu shm_ctime=%zu shm_cpid=%zu shm_lpid=%zu "
           "shm_nattch=%zu\n", sizeof(struct shmid_ds), offsetof(struct shmid_ds, shm_segsz),
           offsetof(struct shmid_ds, shm_atime), offsetof(struct shmid_ds, shm_dtime),
           offsetof(struct shmid_ds, shm_ctime), offsetof(struct shmid_ds, shm_cpid),
           offsetof(struct shmid_ds, shm_lpid), offsetof(struct shmid_ds, shm_nattch));
    printf("ShmInfo %zu shmmax=%zu shmmin=%zu shmmni=%zu shmseg=%zu shmall=%zu\n", sizeof(struct shminfo),
           offsetof(struct shminfo, shmmax), offsetof(struct shminfo, shmmin), offsetof(struct shminfo, shmmni),
           offsetof(struct shminfo, shmseg), offsetof(struct shminfo, shmall));
    printf("ShmUsage %zu used_ids=%zu shm_tot=%zu shm_rss=%zu shm_swp=%zu\n", sizeof(struct shm_info),
           offsetof(struct shm_info, used_ids), offsetof(struct shm_info, shm_tot),
           offsetof(struct shm_info, shm_rss), offsetof(struct shm_info, shm_swp));
    printf("consts IPC_INFO=%d SHM_INFO=%d SHM_STAT=%d SHM_STAT_ANY=%d SHM_LOCK=%d SHM_UNLOCK=%d "
           "SHM_HUGETLB=%d SHM_NORESERVE=%d SHM_RDONLY=%d IPC_CREAT=%d IPC_EXCL=%d\n", IPC_INFO, SHM_INFO,
           SHM_STAT, SHM_STAT_ANY, SHM_LOCK, SHM_UNLOCK, SHM_HUGETLB, SHM_NORESERVE, SHM_RDONLY, IPC_CREAT,
           IPC_EXCL);
    return 0;
}
"""


@pytest.mark.skipif(not shutil.which("gcc"), reason="no C compiler")
def test_struct_layouts_match_the_c_compiler(tmp_path):
    src = tmp_path / "layout.c"
    src.write_text(C_LAYOUT)
    subprocess.run(["gcc", "-o", str(tmp_path / "layout"), str(src)], check=True)
    out = subprocess.run([str(tmp_path / "layout")], capture_output=True, text=True, check=True).stdout
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()}
    for name in ("IpcPerm", "ShmidDs", "ShmInfo", "ShmUsage"):
        struct = getattr(syscalls, name)
        size, *fields = lines[name]
        assert ctypes.sizeof(struct) == int(size), name
        for field in fields:
            fname, offset = field.split("=")
            ours = {"__key": "key", "__seq": "seq"}.get(fname, fname)
            assert getattr(struct, ours).offset == int(offset), f"{name}.{fname}"
    for pair in lines["consts"]:
        cname, value = pair.split("=")
        assert getattr(syscalls, cname) == int(value), cname


def test_every_function_has_restype_and_errno():
    for name, (restype, argtypes) in syscalls.SIGNATURES.items():
        func = syscalls._f[name]
        assert func.restype is restype and func.argtypes == argtypes
    assert syscalls.SIGNATURES["shmat"][0] is ctypes.c_void_p


def test_keys_are_range_checked_before_the_call():
    with pytest.raises(UsageError):
        syscalls.shmget(1 << 40, 4096, syscalls.IPC_CREAT | 0o600)
    with pytest.raises(UsageError):
        syscalls.shmget(-1, 4096, syscalls.IPC_CREAT | 0o600)


@needs_isolation
def test_lifecycle_and_errno_mapping():
    key = 0x7E570001
    shmid = syscalls.shmget(key, 10000, syscalls.IPC_CREAT | syscalls.IPC_EXCL | 0o640)
    try:
        with pytest.raises(Conflict) as exc:  # EEXIST
            syscalls.shmget(key, 10000, syscalls.IPC_CREAT | syscalls.IPC_EXCL | 0o640)
        assert exc.value.errno == errno.EEXIST
        ds = syscalls.shmctl_stat(shmid)
        assert (ds.shm_segsz, ds.shm_perm.mode & 0o777, ds.shm_nattch, ds.shm_cpid) == (10000, 0o640, 0, os.getpid())
        assert ds.shm_perm.key == key
        addr = syscalls.shmat(shmid)
        view = syscalls.memory_at(addr, 10000)
        view[:5] = b"hello"
        assert syscalls.shmctl_stat(shmid).shm_nattch == 1
        usage, highest = syscalls.shm_info_and_index()
        walked = {}
        for index in range(highest + 1):
            try:
                found_id, found = syscalls.shm_stat_index(index)
            except ShmctlError:
                continue  # a free slot
            walked[found_id] = found.shm_segsz
        assert walked[shmid] == 10000 and usage.used_ids == len(walked)
        assert syscalls.ipc_info().shmmni >= 1
        view.release()
        syscalls.shmdt(addr)
        roaddr = syscalls.shmat(shmid, readonly=True)
        assert ctypes.string_at(roaddr, 5) == b"hello"
        syscalls.shmdt(roaddr)
    finally:
        syscalls.shmctl_rmid(shmid)
    with pytest.raises(ShmctlError) as exc:
        syscalls.shmctl_stat(shmid)
    assert exc.value.errno in (errno.EINVAL, errno.EIDRM)


@needs_isolation
def test_posix_open_unlink_and_ftok(tmp_path):
    fd = syscalls.shm_open("shmctl-syscalls", os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        assert os.path.exists("/dev/shm/shmctl-syscalls")
        with pytest.raises(Conflict):
            syscalls.shm_open("shmctl-syscalls", os.O_CREAT | os.O_EXCL | os.O_RDWR)
    finally:
        os.close(fd)
        syscalls.shm_unlink("shmctl-syscalls")
    with pytest.raises(NotFound):
        syscalls.shm_unlink("shmctl-syscalls")
    key = syscalls.ftok(str(tmp_path), 1)
    st = os.stat(tmp_path)
    assert key == (1 << 24) | ((st.st_dev & 0xFF) << 16) | (st.st_ino & 0xFFFF)
    with pytest.raises(UsageError):  # a missing local file, not a missing segment (exit 2)
        syscalls.ftok(str(tmp_path / "missing"), 1)
