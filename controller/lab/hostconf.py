"""Names, addresses and config files of lab hosts: pure functions of the lab name and index.

A lab named L with subnet S (a /24) has a bridge `cl-L-br` holding S's first address; host i
is `host-i`, lives in network namespace `corral-L-host-i` behind veth `cl-L-i` with address
S[10 + i], and keeps its libvirt state under `<root>/host-i/{etc,run,lib,log,cache}`, which
are bind-mounted over /etc/libvirt, /run/libvirt, /var/lib/libvirt, /var/log/libvirt and
/var/cache/libvirt inside its private mount namespace.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

LAB_NAME_RE = re.compile(r"^[a-z0-9]{1,6}$")
"""Short enough that `cl-<name>-br` and `cl-<name>-<index>` fit Linux's 15-byte link names."""
MAX_HOSTS = 50
LIBVIRT_TCP_PORT = 16509
HOST_UUID_NAMESPACE = uuid.UUID("7b0c3c55-1d8e-4d1f-9a53-2f1a6c0e2a77")

BIND_MOUNTS: tuple[tuple[str, str], ...] = (
    ("etc", "/etc/libvirt"),
    ("run", "/run/libvirt"),
    ("lib", "/var/lib/libvirt"),
    ("log", "/var/log/libvirt"),
    ("cache", "/var/cache/libvirt"),
)
"""(host subdir, path inside the host): libvirtd's compiled-in privileged state dirs, which
two daemons in one mount namespace would share (and fail on each other's pid files)."""


class LabConfigError(ValueError):
    """A lab name, subnet or host count that the lab cannot be built with."""


@dataclass(frozen=True)
class HostPlan:
    """Everything that identifies lab host `index`; derived, never stored on its own."""

    lab: str
    index: int
    name: str
    netns: str
    veth: str
    ip: str
    prefixlen: int
    root: Path
    host_uuid: str

    @property
    def uri(self) -> str:
        """Returns the libvirt URI that reaches this host from the root namespace over TCP."""
        return f"qemu+tcp://{self.ip}/system"

    @property
    def socket_uri(self) -> str:
        """Returns a libvirt URI over the host's unix socket (no network, so no partition)."""
        return f"qemu+unix:///system?socket={self.root}/run/libvirt-sock"

    def outside(self, inside: str | Path) -> Path:
        """Returns the root-namespace path of `inside`, a path as this host's processes see it
        (e.g. a serial log under /var/log/libvirt); paths outside the bind mounts are shared.
        """
        inside = Path(inside)
        for subdir, mount in BIND_MOUNTS:
            if inside == Path(mount) or Path(mount) in inside.parents:
                return self.root / subdir / inside.relative_to(mount)
        return inside


def validate(lab: str, subnet: str, count: int) -> None:
    """Raises LabConfigError naming the bad argument; returns None if the lab can be built."""
    if not LAB_NAME_RE.match(lab):
        raise LabConfigError(f"name: expected 1-6 of [a-z0-9], got {lab!r}")
    try:
        net = ipaddress.IPv4Network(subnet)
    except ValueError as exc:
        raise LabConfigError(f"subnet: {exc}") from exc
    if net.prefixlen != 24:
        raise LabConfigError(f"subnet: expected a /24, got {subnet!r}")
    if not 1 <= count <= MAX_HOSTS:
        raise LabConfigError(f"hosts: expected 1-{MAX_HOSTS}, got {count}")


def bridge_name(lab: str) -> str:
    """Returns the bridge's link name."""
    return f"cl-{lab}-br"


def bridge_address(subnet: str) -> str:
    """Returns the bridge's address with prefix, e.g. 10.77.0.1/24."""
    net = ipaddress.IPv4Network(subnet)
    return f"{net[1]}/{net.prefixlen}"


def netns_prefix(lab: str) -> str:
    """Returns the prefix of every network namespace of the lab."""
    return f"corral-{lab}-"


def veth_prefix(lab: str) -> str:
    """Returns the prefix of every root-side veth of the lab."""
    return f"cl-{lab}-"


def plan_host(lab: str, subnet: str, index: int, root: Path) -> HostPlan:
    """Returns the identity of host `index` (1-based) of lab `lab`."""
    net = ipaddress.IPv4Network(subnet)
    name = f"host-{index}"
    return HostPlan(
        lab=lab,
        index=index,
        name=name,
        netns=f"{netns_prefix(lab)}{name}",
        veth=f"{veth_prefix(lab)}{index}",
        ip=str(net[10 + index]),
        prefixlen=net.prefixlen,
        root=root / name,
        host_uuid=str(uuid.uuid5(HOST_UUID_NAMESPACE, f"{lab}/{name}")),
    )


def render_libvirtd_conf(host: HostPlan) -> str:
    """Returns libvirtd.conf: unauthenticated TCP (lab only), a distinct host_uuid (without
    SMBIOS all hosts share one and migration refuses "the same host"), a log file.
    """
    return (
        "listen_tls = 0\n"
        "listen_tcp = 1\n"
        'listen_addr = "0.0.0.0"\n'
        'auth_tcp = "none"\n'
        f'host_uuid = "{host.host_uuid}"\n'
        'log_outputs = "3:file:/var/log/libvirt/libvirtd.log"\n'
    )


def render_qemu_conf(host: HostPlan) -> str:
    """Returns qemu.conf: QEMU as root without a security driver or ownership changes, console
    output written by QEMU itself (no virtlogd per host), no cgroups (shared with the root
    namespace), and migration bound to the host's own address (all hosts share one hostname).
    """
    return (
        'user = "root"\n'
        'group = "root"\n'
        'security_driver = "none"\n'
        "dynamic_ownership = 0\n"
        "remember_owner = 0\n"
        'stdio_handler = "file"\n'
        "cgroup_controllers = [ ]\n"
        f'migration_host = "{host.ip}"\n'
        f'migration_address = "{host.ip}"\n'
    )


def anchor_script(host: HostPlan) -> str:
    """Returns the sh script that makes the host's private mounts and then holds its mount
    namespace open (as `sleep infinity`) so libvirtd and agents can be (re)started inside it.
    """
    mounts = "".join(
        f"mount --bind {host.root / subdir} {mount} && " for subdir, mount in BIND_MOUNTS
    )
    return f"{mounts}echo $$ > {host.root / 'anchor.pid'} && exec sleep infinity"
