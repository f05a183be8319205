"""`limits --all-namespaces`: one line per IPC namespace (SysV use) and per /dev/shm (mount
namespace), as JSON and as two plain tables fitted to a terminal."""
from __future__ import annotations

from typing import List, Sequence

from ...address import printable
from .. import Style
from .document import dev_shm_dict, percent, resource_dict
from .table import aligned


def _namespace_head(n) -> dict:
    """A namespace as JSON spells it everywhere: `namespace` the inode (a number, as in list
    and stat), `type` ipc or mnt; `TYPE:INODE` is its text form."""
    return {"namespace": n.inode, "type": n.type, "home": n.home,
            "container": None if n.container is None else printable(n.container), "pid": n.pid,
            "command": printable(n.command)}


def namespace_limits_dicts(pairs) -> List[dict]:
    rows = []
    for n, limits in pairs:
        row = _namespace_head(n)
        if n.type == "ipc":
            row["sysv"] = {name: resource_dict(r) for name, r in limits.resources.items()}
            row["sysv"].update(segments=limits.segments, orphans=limits.orphans)
        else:
            row["dev_shm"] = dev_shm_dict(limits)
        row["warnings"] = limits.warnings()
        rows.append(row)
    return rows


SYSV_NS_HEADERS = ("NAMESPACE", "CONTAINER", "SEGMENTS", "SHMMNI%", "SHMALL%", "SHMMAX", "PID", "COMMAND")
SHM_NS_HEADERS = ("NAMESPACE", "CONTAINER", "SIZE", "USED", "USE%", "PROMISED", "COMMIT%", "PID", "COMMAND")
NS_PRIORITIES = {"NAMESPACE": 0, "CONTAINER": 2, "PID": 6, "COMMAND": 5}


def _pct(value) -> str:
    return "-" if value is None else f"{value:.2f}%"


def namespace_limits_text(pairs, style: Style) -> str:
    """Two tables: SysV per IPC namespace, /dev/shm per mount namespace (plain, aligned;
    fitted to the terminal: COMMAND and CONTAINER are cut first, then dropped)."""
    sysv, shm = [], []
    for n, limits in pairs:
        head = (n.label, printable(n.container or "-", space=True))
        tail = (str(n.pid or "-"), printable(n.command, space=True))
        if n.type == "ipc":
            r = limits.resources
            sysv.append(head + (str(limits.segments), _pct(r["shmmni"].use_percent), _pct(r["shmall"].use_percent),
                                style.size(r["shmmax"].limit)) + tail)
        else:
            d = limits.dev_shm
            shm.append(head + (style.size(d.size), style.size(d.used), _pct(percent(d.used, d.size)),
                               style.size(d.promised), _pct(percent(d.committed, d.size))) + tail)
    return _aligned(SYSV_NS_HEADERS, sysv, style) + "\n" + _aligned(SHM_NS_HEADERS, shm, style)


def _aligned(headers: Sequence[str], rows: List[tuple], style: Style) -> str:
    priorities = [NS_PRIORITIES.get(h, 3) for h in headers]
    squeeze = [headers.index("CONTAINER"), headers.index("COMMAND")]
    return aligned(headers, rows, (), style, priorities, squeeze)
