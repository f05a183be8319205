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

def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = (),
            style: Optional[Style] = None, priorities: Sequence[int] = (), squeeze: Sequence[int] = (),
            headings: bool = True) -> str:
    """Aligned columns; on a terminal (style.width) fitted to it by render/layout.py: the
    first column (a NAME people type into `limits set`) is never cut, `squeeze` columns
    are cut with '…' first, then the highest `priorities` are dropped."""
    from .layout import Column, fitted_lines
    columns = list(zip(*rows)) if rows else [()] * len(headers)
    specs = [Column(h, columns[i], 0 if i == 0 else (priorities[i] if priorities else 9), i in squeeze)
             for i, h in enumerate(headers)]
    width = style.width if style is not None else None
    notruncate = style.notruncate if style is not None else False
    lines = fitted_lines(specs, [i in right for i in range(len(headers))], width, notruncate, headings)
    return "".join(line + "\n" for line in lines)


LIMIT_PRIORITIES = (0, 1, 2, 3, 4)
POOL_PRIORITIES = (0, 6, 1, 2, 4, 5, 7, 3)


def limits_text(limits: Limits, style: Style, raw: bool = False, headings: bool = True) -> str:
    rows = [r[1:6] for r in limit_rows(limits, style)]
    if raw:
        return _raw(LIMIT_HEADERS, rows, headings) + (
            "\n" + _raw(POOL_HEADERS, pool_rows(limits, style), headings) if limits.pools else "")
    text = aligned(LIMIT_HEADERS, rows, (1, 2, 3), style, LIMIT_PRIORITIES, headings=headings)
    if limits.pools:
        text += "\n" + aligned(POOL_HEADERS, pool_rows(limits, style), (0, 2, 3, 4, 5, 6), style, POOL_PRIORITIES,
                               headings=headings)
    return text


def _raw(headers: Sequence[str], rows: Sequence[Sequence[str]], headings: bool) -> str:
    """Unaligned, one space between cells (lsipc --raw): every cell is one word already."""
    table = ([tuple(headers)] if headings else []) + [tuple(r) for r in rows]
    return "".join(" ".join(r) + "\n" for r in table)


# --- rich ---

_TITLES = {"sysv": "SysV limits", "dev_shm": "/dev/shm", "memory": "memory"}


NO_LIMIT = "no limit"


def _rich_value(limits: Limits, row: tuple, style: Style) -> str:
    r = limits.resources.get(row[1].replace("_bytes", ""))
    return NO_LIMIT if r is not None and r.unlimited else row[2]


def _use_colour(text: str) -> str:
    if text == "-":
        return text
    value = float(text.rstrip("%"))
    colour = "red" if value >= 90 else "yellow" if value >= 75 else None
    return f"[{colour}]{text}[/]" if colour else text


WHAT_PRIORITIES = (0, 1, 2, 3, 5, 4)  # NAME VALUE USED USE% UNIT WHAT: WHAT is cut first, UNIT dropped first


def limits_rich(limits: Limits, style: Style):
    """One table a section, fitted to the terminal (render/layout.py): NAME is never cut
    (it is what `limits set` takes), WHAT is cut with '…' and dropped first."""
    from rich.console import Group

    from . import rich_grid
    from .layout import Column
    tables = []
    rows = limit_rows(limits, style)
    headers = LIMIT_HEADERS + ("WHAT",)
    for section, title in _TITLES.items():
        if section == "sysv" and limits.ipc_namespace:
            title += f" (IPC namespace {limits.ipc_namespace})"
        mine = [r for r in rows if r[0] == section]
        cells = list(zip(*[(r[1], _rich_value(limits, r, style), r[3], r[4], r[5], r[6]) for r in mine]))
        specs = [Column(h, cells[i] if cells else (), WHAT_PRIORITIES[i], squeeze=h == "WHAT")
                 for i, h in enumerate(headers)]
        colours = [None, _markup, None, _use_colour, None, None]
        tables.append(rich_grid(specs, [False, True, True, True, False, False], style, title=title,
                                colours=colours, title_justify="left"))
    if limits.pools:
        cells = list(zip(*pool_rows(limits, style)))
        specs = [Column(h, cells[i], POOL_PRIORITIES[i]) for i, h in enumerate(POOL_HEADERS)]
        right = [i in (0, 2, 3, 4, 5, 6) for i in range(len(POOL_HEADERS))]
        tables.append(rich_grid(specs, right, style, title="huge page pools", title_justify="left"))
    from rich.text import Text
    spaced = [part for table in tables for part in (table, Text(""))][:-1]  # a blank line between sections
    return Group(*spaced)


def _markup(text: str) -> str:
    return "[dim]no limit[/]" if text == NO_LIMIT else text


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


NS_PRIORITIES = {"NAMESPACE": 0, "CONTAINER": 2, "PID": 6, "COMMAND": 5}


def namespace_limits_text(pairs, style: Style) -> str:
    """Two tables: SysV per IPC namespace, /dev/shm per mount namespace (plain, aligned;
    fitted to the terminal: COMMAND and CONTAINER are cut first, then dropped)."""
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
    return _aligned(SYSV_NS_HEADERS, sysv, style) + "\n" + _aligned(SHM_NS_HEADERS, shm, style)


def _aligned(headers: Sequence[str], rows: List[tuple], style: Style) -> str:
    priorities = [NS_PRIORITIES.get(h, 3) for h in headers]
    squeeze = [headers.index("CONTAINER"), headers.index("COMMAND")]
    return aligned(headers, rows, (), style, priorities, squeeze)
