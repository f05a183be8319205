"""shmctl: see, create, fill, hold and remove Linux shared memory of all three kinds."""

__version__ = "0.1.0"

KINDS = ("sysv", "posix", "mmap")
