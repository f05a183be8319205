"""Huge page pools: /sys/kernel/mm/hugepages/hugepages-SIZEkB/ (one directory a page size)
and /sys/devices/system/node/nodeN/hugepages/ (the same pools, per NUMA node). Global, not
per namespace. `nr_hugepages` counts the surplus pages too: persistent = nr - surplus."""
from __future__ import annotations

import os
import re
from typing import Dict, Iterable, Optional

from . import SYS, read_text

POOL_FIELDS = ("nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages", "nr_overcommit_hugepages")
NODE_FIELDS = ("nr_hugepages", "free_hugepages", "surplus_hugepages")
_POOL_DIR = re.compile(r"^hugepages-(\d+)kB$")
_NODE_DIR = re.compile(r"^node(\d+)$")


def parse_pool_name(name: str) -> Optional[int]:
    """Page size in bytes of `hugepages-2048kB`; None for anything else."""
    match = _POOL_DIR.match(name)
    return int(match.group(1)) * 1024 if match else None


def pool_name(size: int) -> str:
    return f"hugepages-{size // 1024}kB"


def pools_dir(sys_root: str = SYS) -> str:
    return f"{sys_root}/kernel/mm/hugepages"


def pool_path(size: int, field: str, sys_root: str = SYS) -> str:
    return f"{pools_dir(sys_root)}/{pool_name(size)}/{field}"


def read_counters(directory: str, fields: Iterable[str]) -> Dict[str, int]:
    counters = {}
    for field in fields:
        try:
            counters[field] = int(read_text(f"{directory}/{field}"))
        except (OSError, ValueError):
            continue
    return counters


def _sizes(directory: str) -> Dict[int, str]:
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    found = {parse_pool_name(name): name for name in names}
    found.pop(None, None)
    return dict(sorted(found.items()))


def read_pools(sys_root: str) -> Dict[int, Dict[str, int]]:
    """{page size in bytes: counters}, smallest size first; {} without hugetlb support."""
    base = pools_dir(sys_root)
    return {size: read_counters(f"{base}/{name}", POOL_FIELDS) for size, name in _sizes(base).items()}


def read_node_pools(sys_root: str) -> Dict[int, Dict[int, Dict[str, int]]]:
    """{node: {page size: counters}} for every NUMA node with huge page pools."""
    base = f"{sys_root}/devices/system/node"
    try:
        names = os.listdir(base)
    except OSError:
        return {}
    nodes = {}
    for name in names:
        match = _NODE_DIR.match(name)
        if match:
            pools = f"{base}/{name}/hugepages"
            nodes[int(match.group(1))] = {size: read_counters(f"{pools}/{entry}", NODE_FIELDS)
                                          for size, entry in _sizes(pools).items()}
    return dict(sorted(nodes.items()))
