"""`shmctl limits` as tables: the rows (numbers stay numbers until printed), the columns that
-o names, each defined once (heading, JSON key, help, alignment, how it gives way on a
narrow terminal), and every form of them: plain, raw, export, rich and JSON rows. lsipc -g's
RESOURCE, DESCRIPTION, LIMIT, USED and USE% are among the columns, with lsipc's meaning.

Plain text is one table a subject with the same columns on every row
(awk '$1=="shmall"{print $2}'); the huge page pools are a second table."""
from __future__ import annotations

from typing import Any, Callable, Dict, FrozenSet, List, NamedTuple, Optional, Sequence

from ...address import printable
from ...limits import HugePool, Limits
from .. import Style
from .document import percent


class Row(NamedTuple):
    """One figure of `limits`. `limit`: the value is a limit (what LIMIT shows, as lsipc -g),
    not a figure such as Shmem or the page size; `unlimited`: it means no limit."""
    section: str
    name: str
    value: Optional[int]
    used: Optional[int]
    use_percent: Optional[float]
    unit: str
    description: str
    limit: bool = True
    unlimited: bool = False


class PoolRow(NamedTuple):
    """A huge page pool, or (node set) its share on one NUMA node."""
    size: int
    node: Optional[int]
    total: Optional[int]
    free: Optional[int]
    reserved: Optional[int]
    surplus: Optional[int]
    overcommit: Optional[int]
    default: Optional[bool]


# --- the rows ---

def _resource_rows(limits: Limits) -> List[Row]:
    rows = []
    for r in limits.resources.values():
        rows.append(Row("sysv", r.name, r.limit, r.used, r.use_percent, r.unit, r.description, True, r.unlimited))
        if r.unit == "pages":
            rows.append(Row("sysv", f"{r.name}_bytes", r.limit_bytes, r.used_bytes, r.use_percent, "bytes",
                            f"{r.name} x page size", True, r.unlimited))
    return rows + [
        Row("sysv", "shm_rmid_forced", limits.shm_rmid_forced, None, None, "flag", "1: orphans are destroyed",
            limit=False),
        Row("sysv", "ipcmni", limits.ipcmni, None, None, "segments", "ceiling of shmmni"),
        Row("sysv", "page_size", limits.page_size, None, None, "bytes", "unit of shmall", limit=False)]


def _dev_shm_rows(limits: Limits) -> List[Row]:
    shm = limits.dev_shm
    inodes_used = shm.inodes - shm.inodes_free if shm.inodes is not None else None
    return [Row("dev_shm", "dev_shm", shm.size, shm.used, percent(shm.used, shm.size), "bytes", "tmpfs size; used"),
            Row("dev_shm", "dev_shm_inodes", shm.inodes, inodes_used, percent(inodes_used, shm.inodes), "inodes",
                "tmpfs files"),
            Row("dev_shm", "dev_shm_promised", shm.size, shm.promised, percent(shm.promised, shm.size), "bytes",
                "size; used: promised to sparse files"),
            Row("dev_shm", "dev_shm_committed", shm.size, shm.committed, percent(shm.committed, shm.size), "bytes",
                "size; used: occupied + promised"),
            Row("dev_shm", "posix_objects", shm.objects, None, None, "objects", "POSIX segments", limit=False),
            Row("dev_shm", "posix_declared", shm.declared, shm.allocated, percent(shm.allocated, shm.declared),
                "bytes", "their sizes; used: occupied", limit=False)]


def _memory_rows(limits: Limits) -> List[Row]:
    mem = limits.meminfo
    soft, hard = limits.memlock
    group = limits.hugetlb_shm_group
    name = printable(limits.hugetlb_shm_group_name) if limits.hugetlb_shm_group_name else group
    return [Row("memory", "mem_total", mem.get("MemTotal"), None, None, "bytes", "MemTotal"),
            Row("memory", "shmem", mem.get("Shmem"), None, None, "bytes", "Shmem (tmpfs, SysV, memfd)", limit=False),
            Row("memory", "shmem_huge_pages", mem.get("ShmemHugePages"), None, None, "bytes", "ShmemHugePages (THP)",
                limit=False),
            Row("memory", "hugetlb", mem.get("Hugetlb"), None, None, "bytes", "Hugetlb (all pools)", limit=False),
            Row("memory", "memlock", soft, None, None, "bytes", "RLIMIT_MEMLOCK, soft", unlimited=soft is None),
            Row("memory", "memlock_hard", hard, None, None, "bytes", "RLIMIT_MEMLOCK, hard", unlimited=hard is None),
            Row("memory", "hugetlb_shm_group", group, None, None, "gid",
                f"SHM_HUGETLB group ({'-' if name is None else name})", limit=False)]


def limit_rows(limits: Limits) -> List[Row]:
    return _resource_rows(limits) + _dev_shm_rows(limits) + _memory_rows(limits)


def pool_rows(pools: Sequence[HugePool], per_node: bool = False) -> List[PoolRow]:
    rows = []
    for p in pools:
        rows.append(PoolRow(p.size, None, p.total, p.free, p.reserved, p.surplus, p.overcommit, p.default))
        for node, c in p.nodes.items() if per_node else ():
            rows.append(PoolRow(p.size, node, c.get("nr_hugepages"), c.get("free_hugepages"), None,
                                c.get("surplus_hugepages"), None, None))
    return rows


# --- the columns ---

class Col(NamedTuple):
    """One column: its JSON key, its cell text, its JSON value (the row's field `key` unless
    given), help, and how it fits a narrow terminal (render/layout.py: priority 0 is never
    cut or dropped, `squeeze` is cut with '…' first)."""
    key: str
    text: Callable[[Any, Style], str]
    help: str
    right: bool = False
    priority: int = 3
    squeeze: bool = False
    json: Optional[Callable[[Any], Any]] = None

    def value(self, row) -> Any:
        return self.json(row) if self.json is not None else getattr(row, self.key)


def _number(value: Optional[int]) -> str:
    return "-" if value is None else str(value)


def _figure(value: Optional[int], unit: str, style: Style, unlimited: bool = False) -> str:
    if value is None:
        return "unlimited" if unlimited else "-"
    return style.size(value) if unit == "bytes" else str(value)


def _pct(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}%"


def _value(r: Row, style: Style) -> str:
    return _figure(r.value, r.unit, style, r.unlimited)


LIMIT_COLUMNS: Dict[str, Col] = {
    "NAME": Col("name", lambda r, s: r.name, "the name: what `limits set` takes (shmmax, shmall, shmmni, "
                "shm_rmid_forced); never cut", priority=0),
    "RESOURCE": Col("resource", lambda r, s: r.name.upper(), "the name in capitals, as lsipc -g prints it (SHMMAX)",
                    priority=0, json=lambda r: r.name.upper()),
    "SECTION": Col("section", lambda r, s: r.section, "sysv, dev_shm or memory: the table a terminal shows it in",
                   priority=6),
    "VALUE": Col("value", _value, "the value: a limit, or a figure such as shmem (bytes off a terminal; "
                 "'unlimited': no limit)", right=True, priority=1),
    "LIMIT": Col("limit", lambda r, s: _value(r, s) if r.limit else "-",
                 "the value where it is a limit, '-' for a figure such as shmem (lsipc -g's LIMIT)", right=True,
                 priority=1, json=lambda r: r.value if r.limit else None),
    "USED": Col("used", lambda r, s: _figure(r.used, r.unit, s), "what is in use against it", right=True,
                priority=2),
    "USE%": Col("use_percent", lambda r, s: _pct(r.use_percent), "USED in percent of the limit", right=True),
    "UNIT": Col("unit", lambda r, s: r.unit, "bytes, pages, segments, inodes, objects, flag or gid", priority=5),
    "DESCRIPTION": Col("description", lambda r, s: r.description, "what it is (lsipc -g's DESCRIPTION); cut first",
                       priority=4, squeeze=True),
}

POOL_COLUMNS: Dict[str, Col] = {
    "POOL": Col("size", lambda p, s: s.size(p.size), "the pool's huge page size (JSON: size)", right=True,
                priority=0),
    "NODE": Col("node", lambda p, s: "-" if p.node is None else f"node{p.node}",
                "the NUMA node of a per-node row, '-' for the whole pool", priority=6),
    "TOTAL": Col("total", lambda p, s: _number(p.total), "pages in the pool (nr_hugepages, surplus included)",
                 right=True, priority=1),
    "FREE": Col("free", lambda p, s: _number(p.free), "free pages (reserved ones included)", right=True, priority=2),
    "RSVD": Col("reserved", lambda p, s: _number(p.reserved), "pages promised to mappings, not yet faulted in "
                "(JSON: reserved)", right=True, priority=4),
    "SURP": Col("surplus", lambda p, s: _number(p.surplus), "surplus pages, beyond the persistent ones (JSON: "
                "surplus)", right=True, priority=5),
    "OVERCOMMIT": Col("overcommit", lambda p, s: _number(p.overcommit), "surplus pages the kernel may add "
                      "(nr_overcommit_hugepages)", right=True, priority=7),
    "DEFAULT": Col("default", lambda p, s: "-" if p.default is None else "yes" if p.default else "no",
                   "whether this is the default huge page size (Hugepagesize)", priority=3),
}

DEFAULT_LIMIT_COLUMNS = ("NAME", "VALUE", "USED", "USE%", "UNIT")
TERMINAL_LIMIT_COLUMNS = DEFAULT_LIMIT_COLUMNS + ("DESCRIPTION",)
ALL_COLUMNS = tuple(LIMIT_COLUMNS) + tuple(POOL_COLUMNS)


def column_help() -> str:
    """--list-columns: the limits' columns, then the pools'."""
    return "".join(f"{name:<11} {col.help}\n" for name, col in {**LIMIT_COLUMNS, **POOL_COLUMNS}.items())


class Choice(NamedTuple):
    """The columns of each table (none: the table is left out), those the user named (never
    dropped to fit), and whether JSON is rows of these columns (-o, --output-all)."""
    limits: List[str]
    pools: List[str]
    named: FrozenSet[str] = frozenset()
    rows: bool = False


def choose_columns(spec: Optional[str], output_all: bool = False, terminal: bool = False) -> Choice:
    """-o COLS (only these, each in its table), -o +COLS (the defaults and these), --output-all,
    or the defaults (DESCRIPTION too in a terminal's table). Names are any case."""
    defaults = list(TERMINAL_LIMIT_COLUMNS if terminal else DEFAULT_LIMIT_COLUMNS), list(POOL_COLUMNS)
    if output_all:
        return Choice(list(LIMIT_COLUMNS), list(POOL_COLUMNS), frozenset(ALL_COLUMNS), True)
    if not spec:
        return Choice(*defaults)
    from ...errors import UsageError
    from ...fields import column_spec
    extend, names = column_spec(spec, "NAME,VALUE")
    unknown = [c for c in names if c not in ALL_COLUMNS]
    if unknown:
        raise UsageError(f"unknown column '{unknown[0]}'", "", "columns: " + ",".join(ALL_COLUMNS))
    mine = [[c for c in names if c in LIMIT_COLUMNS], [c for c in names if c in POOL_COLUMNS]]
    if extend:
        mine = [base + [c for c in extra if c not in base] for base, extra in zip(defaults, mine)]
    return Choice(mine[0], mine[1], frozenset(names), True)


def _tables(limits: Limits, choice: Choice, empty: bool = False) -> List[tuple]:
    """(columns, their definitions, rows) of each table shown; `empty`: the pools' table even
    on a machine without huge pages (JSON: `"pools": []`)."""
    tables = []
    if choice.limits:
        tables.append((choice.limits, LIMIT_COLUMNS, limit_rows(limits)))
    if choice.pools and (limits.pools or empty):
        tables.append((choice.pools, POOL_COLUMNS, pool_rows(limits.pools, limits.numa_nodes > 1)))
    return tables


# --- plain, raw, export, JSON rows ---

def aligned(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = (),
            style: Optional[Style] = None, priorities: Sequence[int] = (), squeeze: Sequence[int] = (),
            headings: bool = True) -> str:
    """Aligned columns; on a terminal (style.width) fitted to it by render/layout.py: the
    first column (a NAME people type into `limits set`) is never cut, `squeeze` columns
    are cut with '…' first, then the highest `priorities` are dropped."""
    from ..layout import Column, fitted_lines
    columns = list(zip(*rows)) if rows else [()] * len(headers)
    specs = [Column(h, columns[i], 0 if i == 0 else (priorities[i] if priorities else 9), i in squeeze)
             for i, h in enumerate(headers)]
    width = style.width if style is not None else None
    notruncate = style.notruncate if style is not None else False
    lines = fitted_lines(specs, [i in right for i in range(len(headers))], width, notruncate, headings)
    return "".join(line + "\n" for line in lines)


def _plain_table(names: Sequence[str], defs: Dict[str, Col], rows: Sequence, style: Style, raw: bool,
                 headings: bool, named: FrozenSet[str]) -> str:
    """Cells escaped as in `list` (white space as \\x20: a cell is one awk field); raw: one
    space apart (lsipc -r); else aligned and fitted to a terminal."""
    cells = [[printable(defs[n].text(r, style), space=True) for r in rows] for n in names]
    if raw:
        table = ([list(names)] if headings else []) + [list(r) for r in zip(*cells)]
        return "".join(" ".join(r) + "\n" for r in table)
    from ..layout import Column, fitted_lines
    specs = [Column(n, cells[i], defs[n].priority, defs[n].squeeze, n in named) for i, n in enumerate(names)]
    lines = fitted_lines(specs, [defs[n].right for n in names], style.width, style.notruncate, headings)
    return "".join(line + "\n" for line in lines)


def limits_text(limits: Limits, style: Style, choice: Optional[Choice] = None, raw: bool = False,
                headings: bool = True) -> str:
    """The plain (or raw) tables, a blank line between them."""
    choice = choice or choose_columns(None)
    return "\n".join(_plain_table(names, defs, rows, style, raw, headings, choice.named)
                     for names, defs, rows in _tables(limits, choice))


def limits_export(limits: Limits, style: Style, choice: Choice, shell: bool = False, newline: bool = False) -> str:
    """-e: one line a row of COLUMN="value" pairs, safe for eval (as `list -e`: render/export.py);
    --newline: one pair a line, a blank line between rows."""
    from ..export import quoted, shell_name
    records = []
    for names, defs, rows in _tables(limits, choice):
        keys = [shell_name(n) if shell else n for n in names]
        records += [[f"{k}={quoted(printable(defs[n].text(r, style)))}" for k, n in zip(keys, names)] for r in rows]
    if newline:
        return "\n".join("\n".join(pairs) + "\n" for pairs in records)
    return "".join(" ".join(pairs) + "\n" for pairs in records)


def limits_rows_dict(limits: Limits, choice: Choice) -> dict:
    """--json with -o or --output-all: the rows of each table shown, with the columns named
    (keys: render/limits LIMIT_COLUMNS and POOL_COLUMNS), numbers as numbers, sizes in bytes."""
    data: Dict[str, Any] = {"ipc_namespace": limits.ipc_namespace}
    for names, defs, rows in _tables(limits, choice, empty=True):
        data["limits" if defs is LIMIT_COLUMNS else "pools"] = [
            {defs[n].key: defs[n].value(r) for n in names} for r in rows]
    return data


def pools_text(pools: Sequence[HugePool], style: Style) -> str:
    """`limits hugepages`: the pools' table, fitted to a terminal."""
    return _plain_table(list(POOL_COLUMNS), POOL_COLUMNS, pool_rows(pools), style, False, True, frozenset())
