"""shmctl: see, create, fill, hold and remove Linux shared memory of all three kinds."""

__version__ = "0.1.0"

# The registry of kinds, the one list of them: name -> the module whose KIND implements it
# (kinds/base.py), and whether `list -m` (ipcs -m, lsipc -m) shows it. Adding a kind is one
# module and one line here; the order is the order of `list`. Plain literals: `--version`
# and `--help` read it without importing any kind.
REGISTRY = {
    "sysv": {"module": "shmctl_cli.kinds.sysv", "ipcs": True},
    "posix": {"module": "shmctl_cli.kinds.posix", "ipcs": False},
    "mmap": {"module": "shmctl_cli.kinds.mmap", "ipcs": False},
}

KINDS = tuple(REGISTRY)
