"""Which container a process is in, from the cgroup paths in /proc/PID/cgroup.

Each line is `HIERARCHY-ID:CONTROLLERS:PATH`: `0::/path` for cgroup v2, `N:memory:/path` or
`N:name=systemd:/path` for v1; a hybrid host has both. Container runtimes name the cgroup they
put a container in after the container, so the path tells the runtime and its id without
asking any daemon:

- docker: `/docker/<64hex>` (cgroupfs driver), `/system.slice/docker-<64hex>.scope` (systemd)
- podman: `/libpod_parent/libpod-<64hex>` (cgroupfs: what podman 4.3 makes on this host),
  `/machine.slice/libpod-<64hex>.scope[/container]`, rootless under
  `/user.slice/user-UID.slice/user@UID.service/user.slice/`; `libpod-conmon-<64hex>` is conmon
- containerd: `/<namespace>/<id>` (its default spec; namespaces `default`, `k8s.io`),
  `nerdctl-<64hex>.scope`, `cri-containerd-<64hex>.scope`
- crio: `crio-<64hex>.scope`; `crio-conmon-<64hex>.scope` is conmon
- kubernetes: `/kubepods[/besteffort|/burstable]/pod<uid>/<64hex>` (cgroupfs),
  `/kubepods.slice/kubepods-QOS.slice/kubepods-QOS-pod<uid with _ for ->.slice/
  {cri-containerd,crio,docker}-<64hex>.scope` (systemd), and containerd's
  `/system.slice/containerd.service/kubepods-QOS-pod<uid>.slice:cri-containerd:<64hex>`
- nspawn (systemd-machined): `/machine.slice/machine-<name>.scope` with the name escaped as a
  unit name (`\\x2d` for `-`), `/machine.slice/systemd-nspawn@<name>.service`
- lxc: `/lxc/<name>` (LXC 1-2), `/lxc.payload/<name>` (3), `/lxc.payload.<name>` (4+);
  `lxc.monitor...` is the monitor, not the container

The first (outermost) container on the path wins: it is the one the host's runtime made, and
what is below it may be delegated to the container, whose processes can name their own
cgroups anything. Every id is checked against what its runtime allows (hex ids, UUIDs,
hostname-like names), so hostile cgroup names can never put control characters or a line
break into a CONTAINER column.
"""
from __future__ import annotations

import re
from typing import List, Optional, Tuple

from . import read_bytes

_A = re.ASCII
_HEX64 = r"[0-9a-f]{64}"
_HEX64_ID = re.compile(_HEX64, _A)
# A machine or LXC container name: hostname-like, as machined and LXC accept them.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", _A)
# containerd ids: its identifiers package (letters, digits, and . _ - between them), max 76.
_CONTAINERD_ID = re.compile(r"[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*", _A)
_CONTAINERD_NAMESPACES = ("default", "k8s.io")
_POD_UID = re.compile(r"[0-9a-f]+(?:-[0-9a-f]+)*", _A)

# One path component -> (runtime, id). Conmon scopes (libpod-conmon-, crio-conmon-) and the
# LXC monitor simply do not match.
_SCOPES = (
    (re.compile(rf"docker-({_HEX64})\.scope", _A), "docker"),
    (re.compile(rf"libpod-({_HEX64})(?:\.scope)?", _A), "podman"),
    (re.compile(rf"cri-containerd-({_HEX64})\.scope", _A), "containerd"),
    (re.compile(rf"nerdctl-({_HEX64})\.scope", _A), "containerd"),
    (re.compile(rf"crio-({_HEX64})(?:\.scope)?", _A), "crio"),
)
_K8S_POD_SLICE = re.compile(r"(?:[a-z]+-)*kubepods(?:-[a-z]+)*-pod([0-9a-f_-]+)\.slice", _A)
_K8S_POD_DIR = re.compile(r"pod([0-9a-f-]+)", _A)
_K8S_COLON = re.compile(rf"(.+\.slice):(?:cri-containerd|crio|docker):({_HEX64})", _A)
_MACHINE_SCOPE = re.compile(r"machine-(.+)\.scope", _A)
_NSPAWN_SERVICE = re.compile(r"systemd-nspawn@(.+)\.service", _A)
_UNIT_ESCAPE = re.compile(r"\\x([0-9a-f]{2})", _A)
_LXC_PAYLOAD = "lxc.payload."


class Container:
    """A container found from a cgroup path.

    runtime: "docker", "podman", "containerd", "crio", "kubernetes", "nspawn" or "lxc".
    id:      the runtime's full id (64 hex digits for docker, podman, containerd, crio and
             Kubernetes containers; the pod uid for a Kubernetes pod without a container;
             the machine name for nspawn; the container name for LXC).
    name:    short display text: the 12-digit id, `POD-UID/ID12` for Kubernetes, the name.
    pod:     the Kubernetes pod uid, else None.
    str():   what a CONTAINER column shows: `docker:3f4e5a6b7c8d`, `k8s:<pod-uid>/<id12>`,
             `nspawn:web1`, `lxc:db`. Only characters the runtime's naming allows.
    """
    __slots__ = ("runtime", "id", "name", "pod")

    _PREFIX = {"kubernetes": "k8s"}

    def __init__(self, runtime: str, id: str, name: Optional[str] = None, pod: Optional[str] = None):
        self.runtime = runtime
        self.id = id
        self.pod = pod
        self.name = name if name is not None else _short(id)

    def __str__(self) -> str:
        return f"{self._PREFIX.get(self.runtime, self.runtime)}:{self.name}"

    def __repr__(self) -> str:
        pod = f", pod={self.pod!r}" if self.pod else ""
        return f"Container({self.runtime!r}, {self.id!r}{pod})"

    def _key(self) -> Tuple[str, str, Optional[str]]:
        return self.runtime, self.id, self.pod

    def __eq__(self, other) -> bool:
        return isinstance(other, Container) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def _short(container_id: str) -> str:
    return container_id[:12] if _HEX64_ID.fullmatch(container_id) else container_id


def container_of(pid, proc: str) -> Optional[Container]:
    """The container process `pid` is in, from `{proc}/{pid}/cgroup`; None when it is in none
    that we recognise, or on any OSError (gone, not ours to read)."""
    try:
        return parse_container(read_bytes(f"{proc}/{pid}/cgroup"))
    except OSError:
        return None


def parse_container(text: bytes) -> Optional[Container]:
    """The container named by the text of /proc/PID/cgroup, or None. The cgroup v2 line is
    read first, then name=systemd, then the other v1 lines in order: on a hybrid host a
    runtime may have placed the process in its v1 hierarchies only."""
    for path in _paths_by_preference(text):
        found = _container_in_path(path)
        if found is not None:
            return found
    return None


def _paths_by_preference(text: bytes) -> List[str]:
    ranked = []
    for index, line in enumerate(text.decode("ascii", "replace").splitlines()):
        hierarchy, sep1, rest = line.partition(":")
        controllers, sep2, path = rest.partition(":")
        if not (sep1 and sep2 and path.startswith("/")):
            continue
        if hierarchy == "0" and not controllers:
            rank = 0
        elif controllers == "name=systemd":
            rank = 1
        else:
            rank = 2
        ranked.append((rank, index, path))
    return [path for _, _, path in sorted(ranked)]


def _container_in_path(path: str) -> Optional[Container]:
    parts = [p for p in path.split("/") if p]
    for index, part in enumerate(parts):
        parent = parts[index - 1] if index else ""
        found = _kubernetes(parts, index) or _by_component(part, parent)
        if found is not None:
            return found
    return None


def _by_component(part: str, parent: str) -> Optional[Container]:
    for pattern, runtime in _SCOPES:
        match = pattern.fullmatch(part)
        if match:
            return Container(runtime, match.group(1))
    if parent == "docker" and _HEX64_ID.fullmatch(part):
        return Container("docker", part)
    if parent in _CONTAINERD_NAMESPACES and len(part) <= 76 and _CONTAINERD_ID.fullmatch(part):
        return Container("containerd", part)
    if parent == "machine.slice":
        return _nspawn(part)
    return _lxc(part, parent)


def _nspawn(part: str) -> Optional[Container]:
    match = _MACHINE_SCOPE.fullmatch(part) or _NSPAWN_SERVICE.fullmatch(part)
    if not match:
        return None
    # systemd's unit_name_escape(): `-` and anything outside [A-Za-z0-9:_.] become \xNN.
    name = _UNIT_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), match.group(1))
    return Container("nspawn", name, name) if _NAME.fullmatch(name) else None


def _lxc(part: str, parent: str) -> Optional[Container]:
    if part.startswith(_LXC_PAYLOAD):
        name = part[len(_LXC_PAYLOAD):]
    elif parent in ("lxc", "lxc.payload"):
        name = part
    else:
        return None
    return Container("lxc", name, name) if _NAME.fullmatch(name) else None


def _kubernetes(parts: List[str], index: int) -> Optional[Container]:
    """A pod cgroup (and the container cgroup right below it, if any), or the one-component
    form containerd makes when given a systemd path on a cgroupfs host."""
    part = parts[index]
    colon = _K8S_COLON.fullmatch(part)
    if colon:
        pod = _pod_of_slice(colon.group(1))
        return _k8s(pod, colon.group(2)) if pod else Container("containerd", colon.group(2))
    pod = _pod_of_slice(part)
    if pod is None and _under_kubepods_dir(parts, index):
        match = _K8S_POD_DIR.fullmatch(part)
        pod = match.group(1) if match and _valid_pod(match.group(1)) else None
    if pod is None:
        return None
    below = parts[index + 1] if index + 1 < len(parts) else None
    return _k8s(pod, _k8s_container_id(below) if below else None)


def _under_kubepods_dir(parts: List[str], index: int) -> bool:
    """cgroupfs driver: /kubepods/pod<uid> (guaranteed), /kubepods/<qos>/pod<uid>."""
    parent = parts[index - 1] if index else ""
    grandparent = parts[index - 2] if index > 1 else ""
    return parent == "kubepods" or (grandparent == "kubepods" and parent in ("besteffort", "burstable"))


def _pod_of_slice(part: str) -> Optional[str]:
    match = _K8S_POD_SLICE.fullmatch(part)
    if not match:
        return None
    pod = match.group(1).replace("_", "-")  # '-' nests slices, so the kubelet writes '_'; old ones did not
    return pod if _valid_pod(pod) else None


def _valid_pod(uid: str) -> bool:
    return len(uid) <= 64 and bool(_POD_UID.fullmatch(uid))


def _k8s_container_id(part: str) -> Optional[str]:
    if _HEX64_ID.fullmatch(part):
        return part
    for pattern, _ in _SCOPES:
        match = pattern.fullmatch(part)
        if match:
            return match.group(1)
    return None


def _k8s(pod: str, container_id: Optional[str]) -> Container:
    if container_id is None:
        return Container("kubernetes", pod, pod, pod=pod)
    return Container("kubernetes", container_id, f"{pod}/{container_id[:12]}", pod=pod)

