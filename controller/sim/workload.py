"""Manifests of a benchmark fleet on disk: N VMs, one Host per `vms_per_host`, shared storage.

The shape follows bench/bench_planner.py: three zones of hosts, one NAT network, a
shared netfs pool with a base image, a template, VMs that thin-clone the base.
Hosts are addressed as http://<name>.sim:8470, which a SimFleet answers.
"""

from __future__ import annotations

from pathlib import Path

VMS_PER_FILE = 500


def host_names(hosts: int) -> list[str]:
    """Return the names of `hosts` simulated hosts (h0000, h0001, ...)."""
    return [f"h{i:04d}" for i in range(hosts)]


def _host(name: str, zone: str) -> str:
    return (
        "apiVersion: corral.dev/v1alpha1\nkind: Host\n"
        f"metadata:\n  name: {name}\n  labels:\n    zone: {zone}\n"
        f"spec:\n  address: http://{name}.sim:8470\n  virtualization: qemu\n"
    )


def _vm(name: str, app: str, template: str) -> str:
    return (
        "apiVersion: corral.dev/v1alpha1\nkind: VirtualMachine\n"
        f"metadata:\n  name: {name}\n  labels:\n    app: {app}\n"
        f"spec:\n  template: {template}\n"
    )


INFRA = """\
apiVersion: corral.dev/v1alpha1
kind: Network
metadata:
  name: lan
spec:
  mode: nat
  ipv4:
    cidr: 10.0.0.0/16
---
apiVersion: corral.dev/v1alpha1
kind: StoragePool
metadata:
  name: shared
spec:
  type: netfs
  path: /pool
  shared: true
  source:
    host: nfs
    path: /export
---
apiVersion: corral.dev/v1alpha1
kind: Volume
metadata:
  name: base
spec:
  pool: shared
  size: 10Gi
---
apiVersion: corral.dev/v1alpha1
kind: Template
metadata:
  name: small
spec:
  cpus: 1
  memory: 1Gi
  disks:
    - name: root
      volume: base
  nics:
    - name: eth0
      network: lan
"""


def write_fleet(
    root: Path, vms: int, hosts: int | None = None, *, vms_per_host: int = 10, first_vm: int = 0
) -> list[str]:
    """Write the fleet's manifests under `root` (replacing earlier ones); return the host names.

    VM names are vm00000...; `first_vm` offsets them (a second wave of VMs).
    """
    root.mkdir(parents=True, exist_ok=True)
    for old in root.glob("*.yaml"):
        old.unlink()
    count = hosts if hosts is not None else max(1, vms // vms_per_host)
    names = host_names(count)
    (root / "hosts.yaml").write_text(
        "---\n".join(_host(n, "abc"[i % 3]) for i, n in enumerate(names))
    )
    (root / "infra.yaml").write_text(INFRA)
    for chunk in range(0, vms, VMS_PER_FILE):
        docs = [
            _vm(f"vm{i:05d}", f"a{i % 50}", "small")
            for i in range(first_vm + chunk, first_vm + min(vms, chunk + VMS_PER_FILE))
        ]
        (root / f"vms-{chunk // VMS_PER_FILE:03d}.yaml").write_text("---\n".join(docs))
    return names
