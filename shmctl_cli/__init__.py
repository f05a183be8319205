"""shmctl: see, create, fill, hold and remove Linux shared memory of all three kinds."""

__version__ = "0.1.0"
# the date the man pages carry when SOURCE_DATE_EPOCH is not set (tools/docgen.py): bump with the version
__release_date__ = "2026-11-24"

# The registry of kinds, the one list of them: name -> the module whose KIND implements it
# (kinds/base.py), whether `list -m` (ipcs -m, lsipc -m) shows it, and the namespace that
# tells its objects apart across the host (SysV ids repeat per IPC namespace; /dev/shm and
# paths per mount namespace) and qualifies its addresses. Adding a kind is one
# module and one line here; the order is the order of `list`. Plain literals: `--version`
# and `--help` read it without importing any kind.
REGISTRY = {
    "sysv": {"module": "shmctl_cli.kinds.sysv", "ipcs": True, "namespace": "ipc"},
    "posix": {"module": "shmctl_cli.kinds.posix", "ipcs": False, "namespace": "mnt"},
    "mmap": {"module": "shmctl_cli.kinds.mmap", "ipcs": False, "namespace": "mnt"},
}

KINDS = tuple(REGISTRY)
