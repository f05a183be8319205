"""Pure parts of `limits`: sysctl.conf text, pool directory names and sysfs trees as the
kernel lays them out, values of `limits set`, USE%, advice arithmetic."""
import os

import pytest

from shmctl_cli.errors import Exit, ShmctlError
from shmctl_cli.limits import KERNEL_DEFAULT, HugePool, Resource, use_percent
from shmctl_cli.limits.hugepages import PoolResult, shortfall_error
from shmctl_cli.limits.persist import update_sysctl_conf
from shmctl_cli.limits.setting import Change, is_assignment, not_kept, parse_assignments, parse_value
from shmctl_cli.procfs.hugepages import parse_pool_name, pool_name, read_node_pools, read_pools
from shmctl_cli.procfs.sysctl import parse_line, parse_sysctl_conf

CAPTURED_CONF = """\
# /etc/sysctl.d/99-postgres.conf
kernel.shmmax = 17179869184
; comment
kernel/shmall=4194304
vm.swappiness = 10
-kernel.shmmni = 8192
kernel.shmmax = 34359738368
not a setting
"""


@pytest.mark.parametrize("line, parsed", [
    ("kernel.shmmax = 1", ("", "kernel.shmmax", "1")),
    ("  kernel/shmall=4194304  ", ("", "kernel.shmall", "4194304")),
    ("-kernel.shmmni = 8192", ("-", "kernel.shmmni", "8192")),
    ("net.ipv4.ip_local_port_range = 1024 65000", ("", "net.ipv4.ip_local_port_range", "1024 65000")),
    ("# kernel.shmmax = 1", None),
    ("; kernel.shmmax = 1", None),
    ("", None),
    ("no equals sign", None),
])
def test_sysctl_conf_lines(line, parsed):
    assert parse_line(line) == parsed


def test_sysctl_conf_later_lines_win():
    assert parse_sysctl_conf(CAPTURED_CONF) == {"kernel.shmmax": "34359738368", "kernel.shmall": "4194304",
                                                "vm.swappiness": "10", "kernel.shmmni": "8192"}


@pytest.mark.parametrize("text, values, expected", [
    # first line of a key rewritten in place, later duplicates dropped, the rest kept as it was
    (CAPTURED_CONF, {"kernel.shmmax": 1, "kernel.shmmni": 2},
     "# /etc/sysctl.d/99-postgres.conf\nkernel.shmmax = 1\n; comment\nkernel/shmall=4194304\n"
     "vm.swappiness = 10\n-kernel.shmmni = 2\nnot a setting\n"),
    ("vm.swappiness = 10\n", {"kernel.shm_rmid_forced": 1}, "vm.swappiness = 10\nkernel.shm_rmid_forced = 1\n"),
    ("", {"vm.nr_hugepages": 4}, "# head\nvm.nr_hugepages = 4\n"),
    ("\n", {"kernel.shmall": 5}, "# head\nkernel.shmall = 5\n"),
    ("kernel/shmall = 1", {"kernel.shmall": 5}, "kernel.shmall = 5\n"),
])
def test_sysctl_conf_update(text, values, expected):
    assert update_sysctl_conf(text, values, "# head") == expected


@pytest.mark.parametrize("name, size", [("hugepages-2048kB", 2 << 20), ("hugepages-1048576kB", 1 << 30),
                                        ("hugepages-64kB", 64 << 10), ("hugepages", None), ("node0", None),
                                        ("hugepages-2048MB", None)])
def test_pool_names(name, size):
    assert parse_pool_name(name) == size
    if size:
        assert pool_name(size) == name


def _write_tree(root, files):
    for path, value in files.items():
        full = os.path.join(root, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(f"{value}\n")


def test_pools_and_nodes_from_a_sysfs_tree(tmp_path):
    """The layout of a 2-node machine, as /sys shows it."""
    pools = "kernel/mm/hugepages"
    files = {f"{pools}/hugepages-2048kB/{k}": v for k, v in
             dict(nr_hugepages=6, free_hugepages=5, resv_hugepages=1, surplus_hugepages=0,
                  nr_overcommit_hugepages=2).items()}
    files.update({f"{pools}/hugepages-1048576kB/nr_hugepages": 1, f"{pools}/hugepages-1048576kB/free_hugepages": 1})
    for node, (total, free) in enumerate([(4, 4), (2, 1)]):
        base = f"devices/system/node/node{node}/hugepages/hugepages-2048kB"
        files.update({f"{base}/nr_hugepages": total, f"{base}/free_hugepages": free, f"{base}/surplus_hugepages": 0})
    _write_tree(tmp_path, files)
    os.makedirs(tmp_path / "devices/system/node/power")
    found = read_pools(str(tmp_path))
    assert list(found) == [2 << 20, 1 << 30]
    assert found[2 << 20] == {"nr_hugepages": 6, "free_hugepages": 5, "resv_hugepages": 1, "surplus_hugepages": 0,
                              "nr_overcommit_hugepages": 2}
    assert found[1 << 30] == {"nr_hugepages": 1, "free_hugepages": 1}
    nodes = read_node_pools(str(tmp_path))
    assert nodes == {0: {2 << 20: {"nr_hugepages": 4, "free_hugepages": 4, "surplus_hugepages": 0}},
                     1: {2 << 20: {"nr_hugepages": 2, "free_hugepages": 1, "surplus_hugepages": 0}}}
    assert read_pools(str(tmp_path / "nothing")) == {} and read_node_pools(str(tmp_path / "nothing")) == {}


@pytest.mark.parametrize("name, text, value, note", [
    ("shmmax", "32G", 32 << 30, None),
    ("shmmax", "34359738368", 34359738368, None),
    ("shmmax", "1.5G", 3 << 29, None),
    ("shmmax", "18446744073709551615", (1 << 64) - 1, None),
    ("shmmax", "default", KERNEL_DEFAULT, None),
    ("shmall", "8388608", 8388608, None),
    ("shmall", "32G", 8388608, "shmall=32G is 8388608 pages of 4096 bytes (shmall counts pages)"),
    ("shmall", "5000B", 2, "shmall=5000B is 2 pages of 4096 bytes, rounded up (shmall counts pages)"),
    ("shmall", "1MB", 245, "1MB = 1000000 bytes (MB is decimal); write 1M or 1MiB for 1048576; "
                          "shmall=1MB is 245 pages of 4096 bytes, rounded up (shmall counts pages)"),
    ("shmmni", "32768", 32768, None),
    ("shm_rmid_forced", "1", 1, None),
    ("shm_rmid_forced", "DEFAULT", 0, None),
])
def test_values(name, text, value, note):
    assert parse_value(name, text, 4096) == (value, note)


@pytest.mark.parametrize("name, text, message", [
    ("shmmax", "-1", "shmmax=-1: negative values are not allowed (a size in bytes, e.g. 34359738368 or 32G)"),
    ("shmall", "", "shmall=: not a number (pages, or a size with a unit, e.g. 8388608 or 32G)"),
    ("shmmni", "4K", "shmmni=4K: not a number (a number of segments, e.g. 32768)"),
    ("shm_rmid_forced", "yes", "shm_rmid_forced=yes: not a number (0 or 1)"),
    ("shm_rmid_forced", "2", "shm_rmid_forced=2: must be 0 or 1"),
    ("shmall", "18446744073709551616",
     "shmall=18446744073709551616: too large: the kernel keeps an unsigned long, at most 18446744073709551615"),
    ("shmmax", "3.5", "shmmax=3.5: not a whole number of bytes (a size in bytes, e.g. 34359738368 or 32G)"),
])
def test_bad_values(name, text, message):
    with pytest.raises(ShmctlError) as info:
        parse_value(name, text, 4096)
    assert str(info.value) == message and info.value.exit_code == Exit.USAGE


def test_assignments():
    changes, notes = parse_assignments(["kernel.shmmax=1G", "SHMALL=4G"], 4096)
    assert [(c.name, c.key, c.value) for c in changes] == [("shmmax", "kernel.shmmax", 1 << 30),
                                                          ("shmall", "kernel.shmall", 1 << 20)]
    assert notes == ["shmall=4G is 1048576 pages of 4096 bytes (shmall counts pages)"]
    assert is_assignment("shmmax=1") and is_assignment("kernel.shmall=2") and not is_assignment("60-shm.conf")
    assert not is_assignment("/etc/sysctl.d/x=y.conf")


def test_not_kept_is_what_read_back_differs_on():
    asked, clamped = Change("shmmax", "shmmax=5", 5), Change("shmmni", "shmmni=9", 9)
    asked.kept, clamped.kept = 5, 8
    assert not_kept([asked, clamped]) == [clamped]


@pytest.mark.parametrize("used, limit, percent", [
    (0, KERNEL_DEFAULT, 0.0), (1, 3, 33.33), (2, 3, 66.67), (4096, 4096, 100.0), (None, 10, None), (5, 0, None),
    (1 << 20, KERNEL_DEFAULT, 0.0), (KERNEL_DEFAULT, KERNEL_DEFAULT, 100.0),
])
def test_use_percent_never_overflows(used, limit, percent):
    assert use_percent(used, limit) == percent


def test_resource_units():
    shmall = Resource("shmall", KERNEL_DEFAULT, 3, "pages", 4096, "")
    assert shmall.limit_bytes == KERNEL_DEFAULT * 4096 and shmall.used_bytes == 12288 and shmall.unlimited
    shmmax = Resource("shmmax", 1 << 30, 4096, "bytes", 4096, "")
    assert shmmax.limit_bytes == 1 << 30 and not shmmax.unlimited
    assert Resource("shmmni", 4096, 1, "segments", 4096, "").limit_bytes is None


def test_pool_arithmetic_and_shortfall_message():
    pool = HugePool(2 << 20, {"nr_hugepages": 5, "free_hugepages": 3, "resv_hugepages": 1, "surplus_hugepages": 1})
    assert (pool.persistent, pool.committed) == (4, 3)
    result = PoolResult(2 << 20, 8, None, {"nr_hugepages": 6, "surplus_hugepages": 0})
    assert result.got == 6 and result.short
    err = shortfall_error(result)
    assert err.exit_code == Exit.LIMIT
    assert str(err) == ("2MiB huge pages: got 6 of 8: the kernel found no more free contiguous memory (fragmentation) "
                        "(compact memory with `echo 1 > /proc/sys/vm/compact_memory` and try again, or reserve them "
                        "at boot: hugepagesz=2M hugepages=8 on the kernel command line)")
