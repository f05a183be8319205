"""Which container a process is in, from /proc/PID/cgroup (shmctl_cli/procfs/cgroup.py):
table tests on captured text of every runtime's naming scheme, hostile names, then real cgroup
v2 directories with real processes moved into them, and a real podman container."""
import errno
import os
import re
import time

import pytest
from hypothesis import given, settings, strategies as st

from containers import cgroup_tree, podman_container  # noqa: F401  (fixtures)
from shmctl_cli.procfs import PROC
from shmctl_cli.procfs.cgroup import Container, container_of, parse_container

DOCKER = "9ec39b91f3d70e1beff50a308f77067065ea6be0d91a3378375056cd4422cf3d"
K8S_CTR = "34dc0b5e626f2c5c4c5170e34b10e7654ce36f0fcd532739f4445baabea03376"
K8S_POD = "74c13223-5a00-11e9-b385-42010a80018d"
CONTAINERD = "d3d8ccf5cca91931c6285c1d7472c413dd5a7700fddc0aa9f89a9ac7008b003e"
CRIO = "14011c7d92a9e513dfd69211da0413dbf319a5e45a02b354ba6e98e10272542d"
CRI_CTR = "34c846d151d9e5faab4d5773c0c560abb318178b14defa5af5a5d0254cffacfc"
PODMAN = "3c83fc989b0818ecd37a167bfbde3f3634706066774b0be2c1f9829e72c6299b"
HEX = "0123456789abcdef" * 4

# Captured on this host: `podman run --rootfs` with cgroup_manager=cgroupfs and runc (hybrid host).
PODMAN_HERE = "".join(f"{n}:{c}:/libpod_parent/libpod-{PODMAN}\n" for n, c in (
    (9, "name=systemd"), (8, "pids"), (7, "blkio"), (6, "freezer"), (5, "devices"), (4, "memory"),
    (3, "cpuset"), (2, "cpuacct"), (1, "cpu"), (0, "")))

# CentOS 7 docker (systemd driver, cgroup v1), as captured by neuvector's tests.
DOCKER_V1_SYSTEMD = "".join(f"{n}:{c}:/system.slice/docker-{DOCKER}.scope\n" for n, c in (
    (10, "devices"), (9, "blkio"), (8, "memory"), (7, "freezer"), (2, "cpuacct,cpu"), (1, "name=systemd")))

# containerd 1.4 given a systemd path on a cgroupfs host: the slice:prefix:id form.
CONTAINERD_COLON = (
    f"11:pids:/system.slice/containerd.service/kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd"
    f".slice:cri-containerd:{CONTAINERD}\n"
    f"10:freezer:/kubepods-besteffort-pod2105e389_7471_476e_a50f_6074cef29bbd.slice:cri-containerd:{CONTAINERD}\n"
    "0::/\n")

CASES = [
    # docker
    (f"0::/docker/{DOCKER}\n", "docker", DOCKER, f"docker:{DOCKER[:12]}"),
    (f"0::/system.slice/docker-{DOCKER}.scope\n", "docker", DOCKER, f"docker:{DOCKER[:12]}"),
    (DOCKER_V1_SYSTEMD, "docker", DOCKER, "docker:9ec39b91f3d7"),
    (f"12:memory:/docker/{DOCKER}\n1:name=systemd:/docker/{DOCKER}\n0::/\n", "docker", DOCKER, None),
    # podman / libpod
    (PODMAN_HERE, "podman", PODMAN, "podman:3c83fc989b08"),
    (f"0::/machine.slice/libpod-{PODMAN}.scope\n", "podman", PODMAN, None),
    (f"0::/machine.slice/libpod-{PODMAN}.scope/container\n", "podman", PODMAN, None),  # crun's subgroup
    (f"0::/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{PODMAN}.scope\n",
     "podman", PODMAN, None),
    (f"0::/machine.slice/machine-libpod_pod_{HEX}.slice/libpod-{PODMAN}.scope\n", "podman", PODMAN, None),
    # containerd (not Kubernetes)
    (f"0::/default/{HEX}\n", "containerd", HEX, f"containerd:{HEX[:12]}"),
    ("0::/default/redis\n", "containerd", "redis", "containerd:redis"),
    (f"0::/system.slice/nerdctl-{HEX}.scope\n", "containerd", HEX, None),
    (f"0::/system.slice/cri-containerd-{HEX}.scope\n", "containerd", HEX, None),
    # cri-o outside Kubernetes
    (f"0::/machine.slice/crio-{CRIO}.scope\n", "crio", CRIO, f"crio:{CRIO[:12]}"),
    # Kubernetes: cgroupfs driver, systemd driver, containerd's colon form
    (f"11:devices:/kubepods/besteffort/pod{K8S_POD}/{K8S_CTR}\n", "kubernetes", K8S_CTR,
     f"k8s:{K8S_POD}/{K8S_CTR[:12]}"),
    (f"0::/kubepods/pod{K8S_POD}/{K8S_CTR}\n", "kubernetes", K8S_CTR, None),  # guaranteed QoS
    ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podf6a32139_8482_42e2_9c9b_6269fed32a26"
     f".slice/cri-containerd-{CRI_CTR}.scope\n", "kubernetes", CRI_CTR,
     f"k8s:f6a32139-8482-42e2-9c9b-6269fed32a26/{CRI_CTR[:12]}"),
    (f"0::/kubepods.slice/kubepods-pod8dbc5577_d0e2_4706_8787_57d52c03ddf2.slice/crio-{CRIO}.scope\n",
     "kubernetes", CRIO, f"k8s:8dbc5577-d0e2-4706-8787-57d52c03ddf2/{CRIO[:12]}"),
    ("0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod2c48913c-b29f-11e7-9350-020968147796"
     f".slice/docker-{DOCKER}.scope\n", "kubernetes", DOCKER,
     f"k8s:2c48913c-b29f-11e7-9350-020968147796/{DOCKER[:12]}"),  # dashes: older kubelets
    (CONTAINERD_COLON, "kubernetes", CONTAINERD, f"k8s:2105e389-7471-476e-a50f-6074cef29bbd/{CONTAINERD[:12]}"),
    (f"0::/kubepods/burstable/pod{K8S_POD}\n", "kubernetes", K8S_POD, f"k8s:{K8S_POD}"),  # the pod only
    ("0::/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod"
     f"0a1b2c3d_0000_1111_2222_333344445555.slice/cri-containerd-{HEX}.scope\n", "kubernetes", HEX,
     f"k8s:0a1b2c3d-0000-1111-2222-333344445555/{HEX[:12]}"),  # kind's cgroupRoot=/kubelet
    # systemd-nspawn / machined
    ("0::/machine.slice/machine-web1.scope/payload\n", "nspawn", "web1", "nspawn:web1"),
    ("0::/machine.slice/machine-web1.scope/supervisor\n", "nspawn", "web1", "nspawn:web1"),
    ("0::/machine.slice/machine-my\\x2dweb.scope/payload/system.slice/x.service\n", "nspawn", "my-web",
     "nspawn:my-web"),
    ("0::/machine.slice/systemd-nspawn@db\\x2d1.service/payload\n", "nspawn", "db-1", "nspawn:db-1"),
    # LXC
    ("0::/lxc.payload.db/init.scope\n", "lxc", "db", "lxc:db"),
    ("0::/lxc.payload.backupserver\n", "lxc", "backupserver", "lxc:backupserver"),
    ("12:memory:/lxc/my-container\n1:name=systemd:/lxc/my-container\n", "lxc", "my-container", "lxc:my-container"),
    ("0::/lxc.payload/db\n", "lxc", "db", "lxc:db"),
    ("5:pids:/lxc/100/ns/system.slice\n0::/lxc/100/ns\n", "lxc", "100", "lxc:100"),  # Proxmox
]


@pytest.mark.parametrize("text, runtime, ident, shown", CASES, ids=[c[0][:60] for c in CASES])
def test_every_runtime_naming_scheme(text, runtime, ident, shown):
    found = parse_container(text.encode())
    assert (found.runtime, found.id) == (runtime, ident)
    if shown is not None:
        assert str(found) == shown
    assert found == parse_container(text.encode())


NOT_CONTAINERS = [
    "0::/\n",
    "0::/init.scope\n",
    "0::/user.slice/user-1000.slice/session-2.scope\n",
    "0::/system.slice/docker.service\n",  # dockerd itself
    "0::/system.slice/containerd.service\n",  # containerd and its shims
    f"0::/machine.slice/libpod-conmon-{PODMAN}.scope\n",  # conmon, not the container
    "0::/libpod_parent/conmon\n",
    f"0::/system.slice/crio-conmon-{CRIO}.scope\n",
    "0::/lxc.monitor.db\n",
    "0::/lxc.monitor/db\n",
    "0::/machine.slice\n",
    "0::/machine.slice/machine-libpod_pod_abc.slice\n",
    f"0::/{DOCKER}\n",  # a bare id: anything could be named so
    f"0::/other/{DOCKER}\n",
    "4:memory:/process_api/bda120fe06c6089ee337c1533f540b01\n0::/\n",  # this sandbox's own
    "",
]


@pytest.mark.parametrize("text", NOT_CONTAINERS)
def test_host_processes_are_in_no_container(text):
    assert parse_container(text.encode()) is None


def test_a_kubernetes_pod_slice_keeps_its_uid_and_shows_pod_and_container():
    found = parse_container(CONTAINERD_COLON.encode())
    assert found.pod == "2105e389-7471-476e-a50f-6074cef29bbd"
    assert found.name == f"2105e389-7471-476e-a50f-6074cef29bbd/{CONTAINERD[:12]}"


def test_the_v2_line_is_preferred_then_name_systemd_then_any_line():
    text = f"4:memory:/docker/{DOCKER}\n1:name=systemd:/lxc/db\n0::/machine.slice/machine-web1.scope\n"
    assert str(parse_container(text.encode())) == "nspawn:web1"
    assert str(parse_container(text.replace("0::/machine", "0::/x").encode())) == "lxc:db"
    assert str(parse_container(f"4:memory:/docker/{DOCKER}\n1:name=systemd:/\n0::/\n".encode())) == \
        f"docker:{DOCKER[:12]}"


def test_the_outermost_container_wins_over_names_made_inside_it():
    """Below its own cgroup a container may create any name (nspawn delegates payload/):
    only the runtime on the host decides the outer one."""
    text = f"0::/machine.slice/machine-web1.scope/payload/system.slice/docker-{DOCKER}.scope\n"
    assert str(parse_container(text.encode())) == "nspawn:web1"
    text = f"0::/lxc.payload.db/kubepods/besteffort/pod{K8S_POD}/{K8S_CTR}\n"
    assert str(parse_container(text.encode())) == "lxc:db"


HOSTILE = [
    "0::/machine.slice/machine-evil\\x0aline.scope\n",  # unit-escaped newline
    "0::/machine.slice/machine-\\x1b[31mred.scope\n",
    "0::/machine.slice/machine-.scope\n",
    "0::/lxc.payload.\x1b[2Jcleared\n",
    "0::/lxc.payload.a\tb\n",
    "0::/lxc.payload." + "a" * 300 + "\n",
    "0::/lxc/-leading-dash\n",
    "0::/lxc/\u202ertl\n",
    f"0::/docker/{DOCKER.upper()}\n",
    f"0::/docker/{DOCKER[:63]}\n",
    f"0::/docker/{DOCKER}0\n",
    f"0::/system.slice/docker-{DOCKER}.scope.x\n",
    f"0::/system.slice/docker-{DOCKER[:-1]}g.scope\n",
    "0::/kubepods/besteffort/pod\n",
    "0::/kubepods/besteffort/pod---\n",
    "0::/kubepods/besteffort/pod" + "a" * 100 + "\n",
    "0::/kubepods.slice/kubepods-pod___.slice\n",
    "0::/default/" + "a" * 77 + "\n",
    "0::/default/a..b\n",
    "0::/default/-x\n",
    "0:/docker/" + DOCKER + "\n",  # one colon: not a cgroup line
    "docker/" + DOCKER + "\n",
    "0::docker/" + DOCKER + "\n",  # not absolute
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_names_are_refused_not_shown(text):
    assert parse_container(text.encode("utf-8", "surrogateescape")) is None


def test_names_with_a_hostile_tail_stop_at_what_the_scheme_allows():
    # A newline in a cgroup name would only start a new /proc line: it is the next line.
    assert str(parse_container(b"0::/lxc.payload.db\n0::/lxc.payload.evil\x1b\n")) == "lxc:db"
    assert parse_container(b"0::/lxc.payload.d\xffb\n") is None
    assert parse_container(b"\xff\xfe\x00\x01:::::\n\n\n:\x00") is None


SAFE = re.compile(r"[a-z0-9]+:[A-Za-z0-9_./-]+\Z")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["0::", "1:name=systemd:", "4:memory:", "/", "docker", "docker-",
                                 ".scope", "lxc", "lxc.payload.", "machine.slice", "machine-",
                                 "\\x2d", "\\x0a", "kubepods", "kubepods-burstable-pod", ".slice",
                                 "pod", "_", "-", ":cri-containerd:", "libpod-", "default",
                                 "\n", "\x1b", "\x00", "\xff", HEX, K8S_POD, "a"]))
       .map("".join))
def test_any_text_parses_without_error_to_a_safe_one_line_display(text):
    found = parse_container(text.encode("utf-8", "surrogateescape"))
    if found is not None:
        assert SAFE.match(str(found)), str(found)
        assert SAFE.match(f"x:{found.id}")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_parse_without_error(data):
    found = parse_container(data)
    assert found is None or SAFE.match(str(found))


def test_a_megabyte_of_hostile_text_is_read_quickly():
    text = (("0::/" + "a-" * 2000 + "kubepods-pod" + "_" * 100 + "\n") * 120).encode()
    started = time.perf_counter()
    assert parse_container(text) is None
    assert time.perf_counter() - started < 2


def test_container_equality_and_display():
    a = Container("docker", DOCKER)
    assert a == Container("docker", DOCKER) and len({a, Container("docker", DOCKER)}) == 1
    assert a != Container("podman", DOCKER)
    assert (a.name, str(a)) == (DOCKER[:12], f"docker:{DOCKER[:12]}")
    assert "docker" in repr(a)


def test_container_of_reads_proc_and_is_none_for_what_it_cannot_read(tmp_path):
    assert container_of(os.getpid(), PROC) == parse_container(open(f"/proc/{os.getpid()}/cgroup", "rb").read())
    assert container_of(2 ** 22 + 1, PROC) is None  # no such process
    assert container_of(1, str(tmp_path)) is None
    (tmp_path / "7").mkdir()
    (tmp_path / "7" / "cgroup").write_bytes(f"0::/docker/{DOCKER}\n".encode())
    assert str(container_of(7, str(tmp_path))) == f"docker:{DOCKER[:12]}"
    (tmp_path / "8").mkdir()
    (tmp_path / "8" / "cgroup").mkdir()  # EISDIR
    assert container_of(8, str(tmp_path)) is None


# --- real cgroup v2 directories, real processes ------------------------------------------------

REAL = [
    (f"docker/{HEX}", "docker", HEX),
    (f"system.slice/docker-{HEX}.scope", "docker", HEX),
    (f"system.slice/containerd.service/kubepods-besteffort-pod{K8S_POD.replace('-', '_')}.slice:cri-containerd:{HEX}",
     "kubernetes", HEX),
    (f"kubepods/burstable/pod{K8S_POD}/{HEX}", "kubernetes", HEX),
    (f"kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{K8S_POD.replace('-', '_')}.slice/"
     f"cri-containerd-{HEX}.scope", "kubernetes", HEX),
    (f"kubepods.slice/kubepods-pod{K8S_POD.replace('-', '_')}.slice/crio-{HEX}.scope", "kubernetes", HEX),
    (f"system.slice/cri-containerd-{HEX}.scope", "containerd", HEX),
    (f"machine.slice/libpod-{HEX}.scope/container", "podman", HEX),
    (f"libpod_parent/libpod-{HEX}", "podman", HEX),
    (f"user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{HEX}.scope", "podman", HEX),
    ("machine.slice/machine-web\\x2d1.scope/payload", "nspawn", "web-1"),
    ("lxc.payload.db", "lxc", "db"),
    ("lxc/db", "lxc", "db"),
    ("lxc.payload/db", "lxc", "db"),
]


@pytest.mark.parametrize("path, runtime, ident", REAL, ids=[r[0][:50] for r in REAL])
def test_a_process_moved_into_a_runtime_cgroup_is_in_that_container(cgroup_tree, path, runtime, ident):
    pid = cgroup_tree.spawn(path)
    shown = cgroup_tree.move(pid, path)
    assert shown.endswith("/" + path)
    found = container_of(pid, PROC)
    assert (found.runtime, found.id) == (runtime, ident)
    if runtime == "kubernetes":
        assert found.pod == K8S_POD


def test_conmon_cgroups_and_hostile_names_made_for_real_are_not_containers(cgroup_tree):
    for path in (f"machine.slice/libpod-conmon-{HEX}.scope", "libpod_parent/conmon",
                 "machine.slice/machine-evil\\x0aline.scope", "lxc.payload.\x1b[2J", "lxc.monitor.db"):
        pid = cgroup_tree.spawn(path)
        assert container_of(pid, PROC) is None, path


def test_the_kernel_refuses_a_newline_in_a_cgroup_name_so_no_line_can_be_forged(cgroup_tree):
    with pytest.raises(OSError) as refused:
        cgroup_tree.make(f"lxc.payload.db/x\n0::/docker/{HEX}")
    assert refused.value.errno == errno.EINVAL
    pid = cgroup_tree.spawn("lxc.payload.db/x\\x0a0::")  # the escaped form is just a name
    assert str(container_of(pid, PROC)) == "lxc:db"


def test_processes_go_back_and_directories_go_away_afterwards(cgroup_tree):
    me = os.getpid()
    before = open(f"/proc/{me}/cgroup").read()
    cgroup_tree.move(me, f"docker/{HEX}")
    assert container_of(me, PROC).runtime == "docker"
    top = cgroup_tree.top
    cgroup_tree.close()
    assert open(f"/proc/{me}/cgroup").read() == before
    assert not os.path.exists(top)
    cgroup_tree.close()  # twice is harmless


# --- a real container runtime -------------------------------------------------------------------

def test_a_podman_container_is_podman_with_its_id_and_holds_its_segments(podman_container):
    pid, container_id = podman_container
    assert re.fullmatch(r"[0-9a-f]{64}", container_id)
    found = container_of(pid, PROC)
    assert (found.runtime, found.id, str(found)) == ("podman", container_id, f"podman:{container_id[:12]}")
    cgroup = open(f"/proc/{pid}/cgroup").read()
    assert f"/libpod-{container_id}" in cgroup  # /libpod_parent/libpod-<id> with cgroupfs here
    maps = open(f"/proc/{pid}/maps").read()
    assert f"/dev/shm{podman_container.posix_name}" in maps
    sysv = [line for line in maps.splitlines() if "/SYSV" in line]
    assert [int(line.split()[4]) for line in sysv] == [podman_container.shmid]
    # Its own IPC and mount namespaces: the segment is not in ours, /dev/shm is its own.
    assert os.readlink(f"/proc/{pid}/ns/ipc") != os.readlink("/proc/self/ns/ipc")
    assert os.readlink(f"/proc/{pid}/ns/mnt") != os.readlink("/proc/self/ns/mnt")
    assert not os.path.exists(f"/dev/shm{podman_container.posix_name}")
