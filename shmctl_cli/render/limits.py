"""`shmctl limits` and its subcommands as JSON, plain text and rich tables. Plain text is
one table a subject with the same columns on every row (awk '$1=="shmall"{print $2}')."""
from __future__ import annotations

from typing import List, Optional, Sequence

from ..limits import HugePool, Limits, Resource
from ..units import format_size
from . import Style, to_json

LIMIT_HEADERS = ("NAME", "VALUE", "USED", "USE%", "UNIT")
POOL_HEADERS = ("POOL", "NODE", "TOTAL", "FREE", "RSVD", "SURP", "OVERCOMMIT", "DEFAULT")


# --- JSON ---

def resource_dict(r: Resource) -> dict:
    data = {"limit": r.limit, "used": r.used, "use_percent": r.use_percent, "unit": r.unit}
    if r.unit == "pages":
        data.update(limit_bytes=r.limit_bytes, used_bytes=r.used_bytes)
    if r.unit in ("bytes", "pages"):
        data["unlimited"] = r.unlimited
    return data


def pool_dict(p: HugePool) -> dict:
    return {"size": p.size, "total": p.total, "persistent": p.persistent, "free": p.free, "reserved": p.reserved,
            "surplus": p.surplus, "overcommit": p.overcommit, "default": p.default,
            "nodes": [{"node": n, "total": c.get("nr_hugepages"), "free": c.get("free_hugepages"),
                       "surplus": c.get("surplus_hugepages")} for n, c in p.nodes.items()]}


def limits_dict(limits: Limits) -> dict:
    shm, mem = limits.dev_shm, limits.meminfo
    sysv = {name: resource_dict(r) for name, r in limits.resources.items()}
    sysv.update(shm_rmid_forced=limits.shm_rmid_forced, ipcmni=limits.ipcmni, segments=limits.segments,
                orphans=limits.orphans)
    inodes_used = shm.inodes - shm.inodes_free if shm.inodes is not None else None
    return {
        "ipc_namespace": limits.ipc_namespace, "page_size": limits.page_size, "sysv": sysv,
        "dev_shm": {"path": shm.path, "size": shm.size, "used": shm.used, "free": shm.free,
                    "use_percent": _percent(shm.used, shm.size), "inodes": shm.inodes, "inodes_used": inodes_used,
                    "inodes_free": shm.inodes_free, "posix_objects": shm.objects, "posix_declared": shm.declared,
                    "posix_allocated": shm.allocated, "posix_unbacked": shm.unbacked, "shortfall": shm.shortfall,
                    "promised": shm.promised, "committed": shm.committed},
        "memory": {"mem_total": mem.get("MemTotal"), "shmem": mem.get("Shmem"),
                   "shmem_huge_pages": mem.get("ShmemHugePages"), "hugetlb": mem.get("Hugetlb"),
                   "memlock_soft": limits.memlock[0], "memlock_hard": limits.memlock[1],
                   "hugetlb_shm_group": limits.hugetlb_shm_group,
                   "hugetlb_shm_group_name": limits.hugetlb_shm_group_name},
        "hugepages": {"default_size": mem.get("Hugepagesize"), "pools": [pool_dict(p) for p in limits.pools]},
        "warnings": limits.warnings(),
    }


def limits_json(limits: Limits) -> str:
    return to_json(limits_dict(limits))


def _percent(used: Optional[int], limit: Optional[int]) -> Optional[float]:
    from ..limits import use_percent
    return use_percent(used, limit)


# --- rows shared by plain text and rich: (section, name, value, used, use%, unit, description) ---

def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _num(value) -> str:
    return "-" if value is None else str(value)


def _value(style: Style, value: Optional[int], unit: str) -> str:
    return style.size(value) if unit == "bytes" and value is not None else _num(value)


def _resource_rows(limits: Limits, style: Style) -> List[tuple]:
    rows = []
    for r in limits.resources.values():
        rows.append(("sysv", r.name, _value(style, r.limit, r.unit), _value(style, r.used, r.unit),
                     _pct(r.use_percent), r.unit, r.description))
        if r.unit == "pages":
            rows.append(("sysv", f"{r.name}_bytes", style.size(r.limit_bytes), style.size(r.used_bytes),
                         _pct(r.use_percent), "bytes", f"{r.name} x page size"))
    rows += [("sysv", "shm_rmid_forced", _num(limits.shm_rmid_forced), "-", "-", "flag",
              "1: orphans are destroyed"),
             ("sysv", "ipcmni", str(limits.ipcmni), "-", "-", "segments", "ceiling of shmmni"),
             ("sysv", "page_size", style.size(limits.page_size), "-", "-", "bytes", "unit of shmall")]
    return rows


def _dev_shm_rows(limits: Limits, style: Style) -> List[tuple]:
    shm = limits.dev_shm
    inodes_used = shm.inodes - shm.inodes_free if shm.inodes is not None else None
    return [("dev_shm", "dev_shm", style.size(shm.size), style.size(shm.used), _pct(_percent(shm.used, shm.size)),
             "bytes", "tmpfs size; used"),
            ("dev_shm", "dev_shm_inodes", _num(shm.inodes), _num(inodes_used), _pct(_percent(inodes_used, shm.inodes)),
             "inodes", "tmpfs files"),
            ("dev_shm", "dev_shm_promised", style.size(shm.size), style.size(shm.promised),
             _pct(_percent(shm.promised, shm.size)), "bytes", "size; used: promised to sparse files"),
            ("dev_shm", "dev_shm_committed", style.size(shm.size), style.size(shm.committed),
             _pct(_percent(shm.committed, shm.size)), "bytes", "size; used: occupied + promised"),
            ("dev_shm", "posix_objects", str(shm.objects), "-", "-", "objects", "POSIX segments"),
            ("dev_shm", "posix_declared", style.size(shm.declared), style.size(shm.allocated),
             _pct(_percent(shm.allocated, shm.declared)), "bytes", "their sizes; used: occupied")]


def _memory_rows(limits: Limits, style: Style) -> List[tuple]:
    mem = limits.meminfo
    soft, hard = (style.size(v) if v is not None else "unlimited" for v in limits.memlock)
    group = _num(limits.hugetlb_shm_group)
    return [("memory", "mem_total", style.size(mem.get("MemTotal")), "-", "-", "bytes", "MemTotal"),
            ("memory", "shmem", style.size(mem.get("Shmem")), "-", "-", "bytes",
             "Shmem (tmpfs, SysV, memfd)"),
            ("memory", "shmem_huge_pages", style.size(mem.get("ShmemHugePages")), "-", "-", "bytes",
             "ShmemHugePages (THP)"),
            ("memory", "hugetlb", style.size(mem.get("Hugetlb")), "-", "-", "bytes", "Hugetlb (all pools)"),
            ("memory", "memlock", soft, "-", "-", "bytes", "RLIMIT_MEMLOCK, soft"),
            ("memory", "memlock_hard", hard, "-", "-", "bytes", "RLIMIT_MEMLOCK, hard"),
            ("memory", "hugetlb_shm_group", group, "-", "-", "gid",
             f"SHM_HUGETLB group ({limits.hugetlb_shm_group_name or group})")]


def limit_rows(limits: Limits, style: Style) -> List[tuple]:
    return _resource_rows(limits, style) + _dev_shm_rows(limits, style) + _memory_rows(limits, style)


def pool_rows(limits: Limits, style: Style) -> List[tuple]:
    per_node = limits.numa_nodes > 1
    rows = []
    for p in limits.pools:
        rows.append((style.size(p.size), "-", str(p.total), str(p.free), str(p.reserved), str(p.surplus),
                     str(p.overcommit), "yes" if p.default else "no"))
        for node, c in p.nodes.items() if per_node else ():
            rows.append((style.size(p.size), f"node{node}", _num(c.get("nr_hugepages")),
                         _num(c.get("free_hugepages")), "-", _num(c.get("surplus_hugepages")), "-", "-"))
    return rows


# --- plain text ---

def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()) -> str:
    table = [tuple(headers)] + [tuple(r) for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = []
    for row in table:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        lines.append(" ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def limits_text(limits: Limits, style: Style) -> str:
    text = aligned(LIMIT_HEADERS, [r[1:6] for r in limit_rows(limits, style)], right=(1, 2, 3))
    if limits.pools:
        text += "\n" + aligned(POOL_HEADERS, pool_rows(limits, style), right=(0, 2, 3, 4, 5, 6))
    return text


# --- rich ---

_TITLES = {"sysv": "SysV limits", "dev_shm": "/dev/shm", "memory": "memory"}


def _rich_value(limits: Limits, row: tuple, style: Style) -> str:
    r = limits.resources.get(row[1].replace("_bytes", ""))
    return "[dim]no limit[/]" if r is not None and r.unlimited else row[2]


def _use_colour(text: str) -> str:
    if text == "-":
        return text
    value = float(text.rstrip("%"))
    colour = "red" if value >= 90 else "yellow" if value >= 75 else None
    return f"[{colour}]{text}[/]" if colour else text


def limits_rich(limits: Limits, style: Style):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    tables = []
    rows = limit_rows(limits, style)
    for section, title in _TITLES.items():
        if section == "sysv" and limits.ipc_namespace:
            title += f" (IPC namespace {limits.ipc_namespace})"
        table = Table("NAME", "VALUE", "USED", "USE%", "UNIT", "WHAT", box=box.SIMPLE_HEAD, header_style="bold",
                      title=title, title_justify="left", pad_edge=False)
        for row in (r for r in rows if r[0] == section):
            table.add_row(row[1], _rich_value(limits, row, style), row[3], _use_colour(row[4]), row[5], row[6])
        tables.append(table)
    if limits.pools:
        pools = Table(*POOL_HEADERS, box=box.SIMPLE_HEAD, header_style="bold", title="huge page pools",
                      title_justify="left", pad_edge=False)
        for row in pool_rows(limits, style):
            pools.add_row(*row)
        tables.append(pools)
    return Group(*tables)


# --- limits set ---

def changes_dict(changes, persist_path: Optional[str], dry_run: bool) -> dict:
    return {"changes": [{"name": c.name, "key": c.key, "old": c.old, "new": c.value, "kept": c.kept,
                         "changed": c.changes} for c in changes],
            "persisted": persist_path, "dry_run": dry_run}


def sysctl_lines(changes) -> str:
    """What sysctl -w prints, and what a sysctl.d file holds."""
    return "".join(f"{c.key} = {c.kept if c.kept is not None else c.value}\n" for c in changes)


# --- limits hugepages ---

def pool_result_dict(result, persisted: Optional[str]) -> dict:
    data = pool_dict(result.pool)
    del data["nodes"]
    data.update(asked=result.count, got=result.got if result.count is not None else None,
                overcommit_asked=result.overcommit_asked, persisted=persisted)
    return data


def pools_text(pools: Sequence[HugePool], style: Style) -> str:
    rows = [(style.size(p.size), "-", str(p.total), str(p.free), str(p.reserved), str(p.surplus),
             str(p.overcommit), "yes" if p.default else "no") for p in pools]
    return aligned(POOL_HEADERS, rows, right=(0, 2, 3, 4, 5, 6))


# --- limits recommend ---

RECOMMEND_HEADERS = ("NAME", "CURRENT", "NEEDED", "UNIT", "STATUS")


def _status(enough: Optional[bool]) -> str:
    return "check" if enough is None else "enough" if enough else "raise"


def advice_rows(rec, style: Style) -> List[tuple]:
    def value(v, unit):
        if v is None:
            return "unlimited" if unit == "bytes" else "-"
        return style.size(v) if unit == "bytes" else str(v)
    return [(a.name, "no limit" if a.unlimited and not style.exact_sizes else value(a.current, a.unit),
             value(a.needed, a.unit) if a.needed is not None else "-", a.unit, _status(a.enough)) for a in rec.items]


def recommendation_dict(rec, applied: bool) -> dict:
    return {"for": rec.size, "segments": rec.segments, "hugepages": rec.pool is not None,
            "huge_size": rec.pool.size if rec.pool else None, "group": rec.group,
            "items": [{"name": a.name, "current": a.current, "needed": a.needed, "unit": a.unit,
                       "enough": a.enough, "how": a.how} for a in rec.items],
            "commands": rec.commands, "applied": applied}


def recommendation_text(rec, style: Style) -> str:
    text = aligned(RECOMMEND_HEADERS, advice_rows(rec, style), right=(1, 2))
    if rec.commands:
        text += "\n" + "".join(f"{c}\n" for c in rec.commands)
    return text


def recommendation_rich(rec, style: Style):
    from rich import box
    from rich.console import Group
    from rich.table import Table
    table = Table(*RECOMMEND_HEADERS, "WHAT", box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False,
                  title=f"for {format_size(rec.size)} of shared memory in {rec.segments} segment(s)",
                  title_justify="left")
    colours = {"enough": "green", "raise": "red", "check": "yellow"}
    for row, advice in zip(advice_rows(rec, style), rec.items):
        table.add_row(*row[:4], f"[{colours[row[4]]}]{row[4]}[/]", advice.how)
    if not rec.commands:
        return table
    from rich.text import Text
    return Group(table, Text("to get there:"), *(Text("  " + c) for c in rec.commands))


# --- --all-namespaces: one line per IPC namespace and per /dev/shm ---

def _namespace_head(n) -> dict:
    from ..address import printable
    return {"namespace": n.label, "home": n.home, "container": n.container, "pid": n.pid,
            "command": printable(n.command)}


def namespace_limits_dicts(pairs) -> List[dict]:
    rows = []
    for n, limits in pairs:
        row = _namespace_head(n)
        if n.type == "ipc":
            row["sysv"] = {name: resource_dict(r) for name, r in limits.resources.items()}
            row["sysv"].update(segments=limits.segments, orphans=limits.orphans)
        else:
            row["dev_shm"] = limits_dict(limits)["dev_shm"]
        row["warnings"] = limits.warnings()
        rows.append(row)
    return rows


SYSV_NS_HEADERS = ("NAMESPACE", "CONTAINER", "SEGMENTS", "SHMMNI%", "SHMALL%", "SHMMAX", "PID", "COMMAND")
SHM_NS_HEADERS = ("NAMESPACE", "CONTAINER", "SIZE", "USED", "USE%", "PROMISED", "COMMIT%", "PID", "COMMAND")


def namespace_limits_text(pairs, style: Style) -> str:
    """Two tables: SysV per IPC namespace, /dev/shm per mount namespace (plain, aligned)."""
    from ..address import printable
    sysv, shm = [], []
    for n, limits in pairs:
        head = (n.label, n.container or "-")
        tail = (str(n.pid or "-"), printable(n.command, space=True))
        if n.type == "ipc":
            r = limits.resources
            sysv.append(head + (str(limits.segments), _pct(r["shmmni"].use_percent), _pct(r["shmall"].use_percent),
                                style.size(r["shmmax"].limit)) + tail)
        else:
            d = limits.dev_shm
            shm.append(head + (style.size(d.size), style.size(d.used), _pct(_percent(d.used, d.size)),
                               style.size(d.promised), _pct(_percent(d.committed, d.size))) + tail)
    return _aligned(SYSV_NS_HEADERS, sysv) + "\n" + _aligned(SHM_NS_HEADERS, shm)


def _aligned(headers: Sequence[str], rows: List[tuple]) -> str:
    table = [tuple(headers)] + rows
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    return "".join(" ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + "\n" for r in table)
