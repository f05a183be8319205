"""Objects gone from their directory but alive while processes hold them: a POSIX object
unlinked while still mapped or open (multiprocessing's resource tracker leaves these), found
in the one maps scan and the one pass over /proc/*/fd of a run, never by a walk of its own.

The kernel writes `/dev/shm/NAME (deleted)` for them, but a name may end in " (deleted)" by
itself, and a file of a subdirectory of /dev/shm is no object: only a file with no link left
(st_nlink 0, where it can be stat'ed) is taken for deleted."""
from __future__ import annotations

import os
from typing import Dict, Iterator, List, Optional, Set

from ..address import inode_address, namespace_prefix
from ..model import Attachment, Segment
from ..procfs import SEM_PREFIX
from ..system import View, user_name
from .paths import same_file

FD_PERMS = "fd"  # an Attachment that is an open fd, not a mapping


def posix_deleted(view: View, listed: Set[int], all_mappings: bool = False,
                  inode: Optional[int] = None) -> List[Segment]:
    """POSIX objects of our /dev/shm that no directory entry is (`listed`: the inodes that
    are), still mapped or held open; `inode`: only that one. Semaphores only with all_mappings."""
    dev = view.shm_dev
    if dev is None:
        return []
    found: Dict[int, Segment] = {}
    for pid, m in view.mappings():
        if m.dev != dev or m.inode in listed or (inode is not None and m.inode != inode):
            continue
        seg = found.get(m.inode)
        if seg is None:
            if not m.deleted:
                continue  # a file in a subdirectory of /dev/shm, not an object
            seg = found[m.inode] = _new(m.inode, dev, m.bare_path, view)
        seg.attachments.append(view.attachment(pid, m))
        seg.size = max(seg.size, m.offset + m.end - m.start)  # until the file itself is stat'ed
    for (d, ino), fds in view.host.open_files.items():
        if d != dev or ino in listed or (inode is not None and ino != inode):
            continue
        for pid, _link, target in fds:
            if target.endswith(" (deleted)") and ino not in found:
                found[ino] = _new(ino, dev, target[: -len(" (deleted)")], view)
            if ino in found:
                _add_fd_holder(found[ino], pid, view)
    segments = [seg for seg in found.values() if _complete(seg, view)]
    return [s for s in segments if all_mappings or not s.semaphore]


def _new(inode: int, dev: int, path: str, view: View) -> Segment:
    name = "/" + os.path.basename(path)
    where = namespace_prefix("posix", view.qualifier("posix")) + inode_address("posix", inode)[len("posix"):]
    return Segment("posix", where, inode, name=name, device=dev, attachments=[], deleted=True,
                   semaphore=name.startswith("/" + SEM_PREFIX))


def _add_fd_holder(seg: Segment, pid: int, view: View) -> None:
    """A process holding the object open without mapping it keeps it alive too."""
    if pid in {a.pid for a in seg.attachments}:
        return
    uid = view.uid_of(pid)
    seg.attachments.append(Attachment(pid, comm=view.comm(pid), uid=uid, user=user_name(uid), perms=FD_PERMS))


def _complete(seg: Segment, view: View) -> bool:
    """Owner, mode, size and memory from the file itself, reached through a holder's link
    (root, or the holder's own user for an fd); else as the mappings show them. False when the
    file still has a link: it is not deleted."""
    st = stat_held(seg, view)
    if st is not None:
        if st.st_nlink:
            return False
        seg.mode, seg.uid, seg.gid = st.st_mode & 0o7777, st.st_uid, st.st_gid
        seg.size, seg.rss = st.st_size, st.st_blocks * 512
        seg.atime, seg.ctime, seg.mtime = int(st.st_atime), int(st.st_ctime), int(st.st_mtime)
    else:
        seg.uid = view.uid_of(seg.attachments[0].pid)
    seg.nattch = len(seg.pids)
    seg.nattch_unsure = view.maps.hidden
    return True


def held_links(seg: Segment, view: View) -> Iterator[str]:
    """The kernel's links to the file of a held object: each mapping's /proc/PID/map_files
    entry (root only) and each holder's /proc/PID/fd/N. Pids are reused: check what they lead to."""
    for a in seg.attachments or ():
        if a.perms != FD_PERMS:
            yield f"{view.proc}/{a.pid}/map_files/{a.start:x}-{a.end:x}"
    for _pid, link, _target in view.host.open_files.get((seg.device, seg.id), ()):
        yield link


def stat_held(seg: Segment, view: View) -> Optional[os.stat_result]:
    for link in held_links(seg, view):
        try:
            st = os.stat(link)
        except OSError:
            continue
        if same_file(st, seg.device, seg.id):
            return st
    return None


def freed_when(seg: Segment) -> str:
    """Which processes keep a deleted object alive, for rm and stat."""
    pids = [f"{a.pid} ({a.comm})" for a in seg.attachments or ()]
    unique = list(dict.fromkeys(pids))
    if not unique:
        return "no visible process holds it"
    return f"it is freed when {'pid' if len(unique) == 1 else 'pids'} {', '.join(unique)} let go"
