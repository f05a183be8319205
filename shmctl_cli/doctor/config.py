"""logind.conf and login.defs, read as systemd and shadow read them.

logind.conf(5) and systemd's standard-conf: the main file is the first of
/etc/systemd/logind.conf, /run/systemd/logind.conf, /usr/local/lib/systemd/logind.conf,
/usr/lib/systemd/logind.conf that exists; then every *.conf in the logind.conf.d/ directories
of those four places, a name in an earlier place masking the same name in a later one, all
sorted by file name regardless of the directory, each later one overriding. RemoveIPC=
lives in [Login]; the compiled default is yes.

The places are found from the View's etc root: /etc itself, and /run, /usr/local/lib and
/usr/lib as its siblings (with etc=/tmp/x/etc they are /tmp/x/run, ...), so a test
redirects all four with one root."""
from __future__ import annotations

import os
from typing import Dict, List, NamedTuple, Optional, Tuple

REMOVE_IPC_DEFAULT = True
TRUE_WORDS, FALSE_WORDS = ("1", "yes", "y", "true", "t", "on"), ("0", "no", "n", "false", "f", "off")


class Setting(NamedTuple):
    value: bool
    source: str  # "FILE:LINE", or "the compiled default"


def systemd_dirs(etc: str) -> List[str]:
    """The four systemd configuration directories, by precedence."""
    prefix = os.path.dirname(etc.rstrip("/")) or "/"
    return [os.path.join(etc, "systemd")] + [os.path.join(prefix, p, "systemd")
                                               for p in ("run", "usr/local/lib", "usr/lib")]


def logind_files(etc: str) -> List[str]:
    """The files systemd-logind parses, in the order it parses them."""
    dirs = systemd_dirs(etc)
    main = next((p for p in (os.path.join(d, "logind.conf") for d in dirs) if os.path.isfile(p)), None)
    dropins: Dict[str, str] = {}
    for d in reversed(dirs):  # an earlier (higher) directory masks the same name
        try:
            names = os.listdir(os.path.join(d, "logind.conf.d"))
        except OSError:
            continue
        for name in names:
            if name.endswith(".conf"):
                dropins[name] = os.path.join(d, "logind.conf.d", name)
    return ([main] if main else []) + [dropins[name] for name in sorted(dropins)]


def parse_boolean(text: str) -> Optional[bool]:
    word = text.strip().lower()
    return True if word in TRUE_WORDS else False if word in FALSE_WORDS else None


def remove_ipc_in(text: str) -> Optional[Tuple[bool, int]]:
    """The last valid RemoveIPC= of [Login] in one file, with its line number (1-based);
    an invalid value is ignored, as systemd logs and ignores it."""
    found, section = None, None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        key, sep, value = line.partition("=")
        if sep and section == "Login" and key.strip() == "RemoveIPC":
            parsed = parse_boolean(value)
            if parsed is not None:
                found = (parsed, number)
    return found


def effective_remove_ipc(files: List[Tuple[str, str]]) -> Setting:
    """RemoveIPC as logind ends up with it, from (path, text) in parse order."""
    setting = Setting(REMOVE_IPC_DEFAULT, "the compiled default")
    for path, text in files:
        found = remove_ipc_in(text)
        if found is not None:
            setting = Setting(found[0], f"{path}:{found[1]}")
    return setting


def read_remove_ipc(etc: str) -> Setting:
    texts = []
    for path in logind_files(etc):
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                texts.append((path, f.read()))
        except OSError:
            continue
    return effective_remove_ipc(texts)


# --- login.defs: which uids are system users ---

def parse_login_defs(text: str) -> Dict[str, str]:
    values = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#"):
            values[parts[0]] = parts[1]
    return values


def system_uid_max(defs: Dict[str, str], path: str) -> Tuple[int, str]:
    """The highest system uid and where it comes from: SYS_UID_MAX, else UID_MIN - 1, else
    999 (shadow's default UID_MIN is 1000)."""
    for key, offset in (("SYS_UID_MAX", 0), ("UID_MIN", -1)):
        try:
            return int(defs[key]) + offset, f"{path} {key} {defs[key]}"
        except (KeyError, ValueError):
            continue
    return 999, "the default UID_MIN 1000"


def read_system_uid_max(etc: str) -> Tuple[int, str]:
    path = os.path.join(etc, "login.defs")
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return system_uid_max(parse_login_defs(f.read()), path)
    except OSError:
        return system_uid_max({}, path)


LOGIND_BINARIES = ("usr/lib/systemd/systemd-logind", "lib/systemd/systemd-logind")


def logind_presence(etc: str, proc: str, comms: Dict[int, str]) -> Optional[str]:
    """How systemd-logind is known to be here, or None: a process of that name running
    (RemoveIPC acts only while it runs); or, with systemd as init (/proc/1/comm), its binary
    installed (it starts at boot or on the first login); or /run/systemd/seats, which only
    a running logind creates, with systemd as init."""
    running = sorted(pid for pid, comm in comms.items() if comm == "systemd-logind")
    if running:
        return f"process {running[0]} is systemd-logind ({proc}/{running[0]}/comm)"
    try:
        with open(f"{proc}/1/comm") as f:
            init = f.read().strip()
    except OSError:
        init = ""
    if init != "systemd":
        return None
    prefix = os.path.dirname(etc.rstrip("/")) or "/"
    for relative in LOGIND_BINARIES:
        path = os.path.join(prefix, relative)
        if os.path.isfile(path):
            return f"init is systemd ({proc}/1/comm) and {path} is installed"
    seats = os.path.join(prefix, "run/systemd/seats")
    if os.path.isdir(seats):
        return f"init is systemd ({proc}/1/comm) and {seats} exists"
    return None
