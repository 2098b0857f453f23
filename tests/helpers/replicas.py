"""`corral controller` replica processes and the one-host fleet they reconcile, for the
failover and PostgreSQL-outage tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.e2ekit import REPO_ROOT, AgentProcess, start_agent, stop_agent
from tests.helpers.services import require_module

HOST_MANIFEST = """\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata:
  name: h1
spec:
  address: {address}
  virtualization: qemu
"""

VM_MANIFEST = """\
apiVersion: corral.dev/v1alpha1
kind: VirtualMachine
metadata:
  name: {name}
spec:
  cpus: 1
  memory: 128Mi
  boot:
    kernel: /boot/vmlinuz
"""


def one_host_fleet(root: Path, address: str, vm: str = "vm-a") -> Path:
    """Write the manifests of one host (the agent at `address`) and one VM into
    `root`/fleet; return that directory, which the replicas poll."""
    manifests = root / "fleet"
    manifests.mkdir()
    (manifests / "host.yaml").write_text(HOST_MANIFEST.format(address=address))
    (manifests / f"{vm}.yaml").write_text(VM_MANIFEST.format(name=vm))
    return manifests


@pytest.fixture
def test_driver_agent(tmp_path: Path) -> Iterator[AgentProcess]:
    """Yield a `corral agent` process on libvirt's test driver; stopped afterwards."""
    require_module("libvirt", "libvirt")
    agent = start_agent("test:///default", tmp_path / "agent.log")
    try:
        yield agent
    finally:
        stop_agent(agent.process)


class ControllerProcess:
    """One `corral controller` replica process with its own identity, state dir and log;
    `lead_ttl_s` is how long its lead lasts unrenewed (`--lease-ttl`: the leader's lease in
    the store, not the hosts' fencing leases, which live in etcd)."""

    def __init__(
        self, identity: str, manifests: Path, db: str, work: Path, lead_ttl_s: float
    ) -> None:
        self.identity = identity
        self.log = work / f"{identity}.log"
        argv = [
            sys.executable, "-m", "controller.cli.main", "controller", str(manifests),
            "--db", db,
            "--identity", identity,
            "--state-dir", str(work / identity),
            "--lease-ttl", str(lead_ttl_s),
            "--poll", "0.2",
            "--resync", "2",
        ]  # fmt: skip
        out = open(self.log, "wb")  # noqa: SIM115 - the child writes to it for its whole life
        self.process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def standing_by(self) -> bool:
        """Whether the replica has its store and stands by for (or holds) the lead."""
        return "standing by until it leads" in self.output()

    def end(self) -> None:
        """Stop the process (waking it first if a test stopped it with SIGSTOP)."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
