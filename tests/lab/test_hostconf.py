"""Lab host names, addresses, paths and config files."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.lab.hostconf import (
    LabConfigError,
    anchor_script,
    plan_host,
    render_libvirtd_conf,
    render_qemu_conf,
    validate,
)

ROOT = Path("/var/lib/corral-lab/lab")


def test_plan_host_names_and_addresses() -> None:
    host = plan_host("lab", "10.77.0.0/24", 2, ROOT)
    assert (host.name, host.netns, host.veth, host.ip) == (
        "host-2",
        "corral-lab-host-2",
        "cl-lab-2",
        "10.77.0.12",
    )
    assert host.uri == "qemu+tcp://10.77.0.12/system"
    assert (
        host.socket_uri
        == "qemu+unix:///system?socket=/var/lib/corral-lab/lab/host-2/run/libvirt-sock"
    )


def test_hosts_get_distinct_stable_uuids() -> None:
    uuids = {plan_host("lab", "10.77.0.0/24", i, ROOT).host_uuid for i in (1, 2, 3)}
    assert len(uuids) == 3
    assert plan_host("lab", "10.77.0.0/24", 1, ROOT).host_uuid in uuids


@pytest.mark.parametrize(
    ("inside", "outside"),
    [
        ("/var/log/libvirt/qemu/vm.serial", ROOT / "host-1/log/qemu/vm.serial"),
        ("/run/libvirt/libvirt-sock", ROOT / "host-1/run/libvirt-sock"),
        ("/var/lib/libvirt", ROOT / "host-1/lib"),
        ("/var/cache/corral/guest/vmlinuz", Path("/var/cache/corral/guest/vmlinuz")),
        ("/var/lib/libvirtx/file", Path("/var/lib/libvirtx/file")),
    ],
)
def test_outside_maps_bind_mounted_paths(inside: str, outside: Path) -> None:
    assert plan_host("lab", "10.77.0.0/24", 1, ROOT).outside(inside) == outside


@pytest.mark.parametrize(
    ("name", "subnet", "count", "message"),
    [
        ("Lab", "10.77.0.0/24", 1, "name: expected 1-6 of"),
        ("toolong", "10.77.0.0/24", 1, "name:"),
        ("lab", "10.77.0.0/16", 1, "subnet: expected a /24"),
        ("lab", "10.77.0.1/24", 1, "subnet: 10.77.0.1/24 has host bits set"),
        ("lab", "10.77.0.0/24", 0, "hosts: expected 1-50, got 0"),
    ],
)
def test_validate_names_the_bad_argument(name: str, subnet: str, count: int, message: str) -> None:
    with pytest.raises(LabConfigError, match=message):
        validate(name, subnet, count)


def test_configs_carry_the_host_identity() -> None:
    host = plan_host("lab", "10.77.0.0/24", 3, ROOT)
    assert f'host_uuid = "{host.host_uuid}"' in render_libvirtd_conf(host)
    assert 'auth_tcp = "none"' in render_libvirtd_conf(host)
    qemu_conf = render_qemu_conf(host)
    assert 'migration_address = "10.77.0.13"' in qemu_conf
    assert 'stdio_handler = "file"' in qemu_conf
    script = anchor_script(host)
    assert f"mount --bind {ROOT}/host-3/run /run/libvirt && " in script
    assert script.endswith("exec sleep infinity")
