"""Corral node agents inside lab hosts, serving mutual TLS on each host's lab address.

Each lab host runs `corral agent` in its own network and mount namespaces (so a partition
or a killed host takes the agent with it, as on a real machine), listening on the host's
bridge address with a host certificate from the lab's fleet CA. The controller runs in the
root namespace and talks to them with the controller certificate (`controller_certs`).

Certificates live in `<lab root>/certs` (`corral certs` layout: ca.crt, hosts/NAME/,
controller/); an agent's pid file and log are `<lab root>/host-N/agent.{pid,log}`. Agents are
started detached, so they outlive the process that started them (`corral lab up`), and
`Lab.down` kills them with every other process in the lab's namespaces.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from controller.agents import AgentClient, AgentClientError, AgentUnavailable
from controller.lab import netns
from controller.lab.libvirtd import Lab, LabError, LabHost
from nodeagent.tls import make_ca, make_controller_cert, make_host_cert
from schemas.host import Fencing, Host, HostSpec, Virtualization
from schemas.meta import ObjectMeta

AGENT_PORT = 8443
AGENT_START_TIMEOUT_S = 60.0
AGENT_PROCESS_NAME = "python"
"""The agent runs as `python -m controller.cli.main agent` (comm is the interpreter's name)."""


class LabAgentError(LabError):
    """An agent in a lab host did not start, answer, or stop as asked; names the host."""


@dataclass(frozen=True)
class LabAgent:
    """A running agent: its host, address and process id."""

    host: str
    address: str
    pid: int
    log: Path


class LabAgents:
    """Starts, stops and addresses the agents of a lab's hosts (idempotent verbs).

    `lease_ttl_s` is the TTL of the etcd lease each agent keeps alive in the lab's etcd
    cluster (one member per host, mutual TLS with the lab's etcd CA).
    """

    def __init__(self, lab: Lab, *, lease_ttl_s: float = 10.0, log_level: str = "warning"):
        self.lab = lab
        self.lease_ttl_s = lease_ttl_s
        self.log_level = log_level
        self.certs = lab.root / "certs"
        self._children: dict[int, subprocess.Popen] = {}

    # -- certificates ----------------------------------------------------------------------

    @property
    def controller_certs(self) -> Path:
        """Returns the controller's client certificate dir, creating the CA and cert once."""
        out = self.certs / "controller"
        if not (out / "client.crt").exists():
            make_ca(self.certs)
            make_controller_cert(self.certs)
        return out

    def _host_certs(self, host: LabHost) -> Path:
        out = self.certs / "hosts" / host.name
        if not (out / "agent.crt").exists():
            make_ca(self.certs)
            make_host_cert(self.certs, host.name, ips=[host.ip])
        return out

    # -- addressing ------------------------------------------------------------------------

    @staticmethod
    def address(host: LabHost) -> str:
        """Returns the agent URL of `host` (https on its lab address)."""
        return f"https://{host.ip}:{AGENT_PORT}"

    def client(self, name: str, timeout_s: float = 10.0) -> AgentClient:
        """Returns a new mTLS client of host `name`'s agent (close it after use)."""
        host = self.lab.host(name)
        return AgentClient(
            self.address(host),
            host=name,
            cert_dir=self.controller_certs,
            connect_timeout_s=2.0,
            timeout_s=timeout_s,
        )

    def host_manifests(self, lease_ttl_s: int = 10) -> str:
        """Returns YAML of every live host's Host manifest, ready for `corral up DIR`/apply."""
        docs = []
        for host in self.lab.hosts:
            data = self.host_manifest(host.name, lease_ttl_s).model_dump(
                mode="json", by_alias=True, exclude_none=True, exclude={"status"}
            )
            data["metadata"].pop("annotations", None)
            data["spec"] = {
                "address": data["spec"]["address"],
                "virtualization": data["spec"]["virtualization"],
                "fencing": {"method": "lease", "leaseTtlS": lease_ttl_s},
            }
            out = io.StringIO()
            YAML().dump(data, out)
            docs.append(out.getvalue())
        header = (
            f"# Hosts of lab {self.lab.name}: agents serve mutual TLS; run the controller with\n"
            f"# --certs {self.certs / 'controller'}\n"
        )
        return header + "---\n".join(docs)

    def host_manifest(
        self, name: str, lease_ttl_s: int = 10, labels: dict[str, str] | None = None
    ) -> Host:
        """Returns the Host object a controller needs for lab host `name` (TCG guests)."""
        host = self.lab.host(name)
        return Host(
            metadata=ObjectMeta(
                name=name, labels={"corral.dev/lab": self.lab.name, **(labels or {})}
            ),
            spec=HostSpec(
                address=self.address(host),
                virtualization=Virtualization.QEMU,
                fencing=Fencing(lease_ttl_s=lease_ttl_s),
            ),
        )

    # -- processes -------------------------------------------------------------------------

    def _pid_file(self, host: LabHost) -> Path:
        return host.plan.root / "agent.pid"

    def _log(self, host: LabHost) -> Path:
        return host.plan.root / "agent.log"

    def pid(self, name: str) -> int | None:
        """Returns the pid of host `name`'s agent if it runs (inside that host), else None."""
        host = self.lab.host(name)
        try:
            pid = int(self._pid_file(host).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if netns.process_name(pid) is None or pid not in netns.netns_pids(host.plan.netns):
            return None
        return pid

    def etcd_endpoints(self, host: LabHost) -> str:
        """Returns the etcd client URLs an agent of `host` uses: its own member first."""
        mine = self.lab.etcd.member(host).client_url
        return ",".join([mine, *(u for u in self.lab.etcd_endpoints() if u != mine)])

    def _argv(self, host: LabHost) -> list[str]:
        tls = self.lab.etcd_client_tls()
        return [
            sys.executable, "-m", "controller.cli.main", "agent",
            "--libvirt-uri", "qemu:///system",
            "--listen", f"{host.ip}:{AGENT_PORT}",
            "--certs", str(self._host_certs(host)),
            "--migration-uri", host.uri,
            "--host", host.name,
            "--lease-ttl", f"{self.lease_ttl_s:g}",
            "--lease-file", str(host.plan.root / "lease.json"),
            "--etcd-endpoints", self.etcd_endpoints(host),
            "--etcd-ca", str(tls.ca),
            "--etcd-cert", str(tls.cert),
            "--etcd-key", str(tls.key),
            "--log-level", self.log_level,
        ]  # fmt: skip

    def start(self, name: str, timeout_s: float = AGENT_START_TIMEOUT_S) -> LabAgent:
        """Returns host `name`'s agent after starting it if it does not run, and waiting until
        it answers with libvirt connected. Raises LabAgentError with the log's tail.
        """
        return self.up([name], timeout_s)[0]

    def _launch(self, host: LabHost) -> int:
        """Returns the pid of host's agent, starting it (detached) if it does not run."""
        pid = self.pid(host.name)
        if pid is not None:
            return pid
        with open(self._log(host), "ab") as out:
            proc = subprocess.Popen(
                host.nsenter(self._argv(host)),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=Path(__file__).resolve().parents[2],
                # The access log (stdout) in step with the agent's own log (stderr).
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # outlives `corral lab up`; Lab.down kills it
            )
        self._pid_file(host).write_text(f"{proc.pid}\n")
        self._children[proc.pid] = proc  # polled (reaped) here, or by init after we exit
        return proc.pid

    def _wait_healthy(self, name: str, pid: int, log: Path, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        with self.client(name, timeout_s=5.0) as client:
            while True:
                child = self._children.get(pid)
                if (child is not None and child.poll() is not None) or netns.process_name(
                    pid
                ) is None:
                    raise LabAgentError(f"{name}: agent exited: {_tail(log)}")
                try:
                    if client.health().libvirt_connected:
                        return
                except AgentUnavailable:
                    pass
                if time.monotonic() > deadline:
                    raise LabAgentError(
                        f"{name}: agent not healthy after {timeout_s:g}s: {_tail(log)}"
                    )
                time.sleep(0.1)

    def stop(self, name: str, crash: bool = False, timeout_s: float = 15.0) -> bool:
        """Stops host `name`'s agent (SIGKILL if `crash`, else SIGTERM); returns whether one ran.

        Its VMs keep running either way: stopping an agent never touches libvirt.
        """
        pid = self.pid(name)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL if crash else signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while netns.process_name(pid) is not None:
            child = self._children.get(pid)
            if child is not None:
                child.poll()
            if time.monotonic() > deadline:
                if crash:
                    raise LabAgentError(f"{name}: agent {pid} survived SIGKILL")
                return self.stop(name, crash=True)
            time.sleep(0.02)
        self._children.pop(pid, None)
        self._pid_file(self.lab.host(name)).unlink(missing_ok=True)
        return True

    def up(
        self, names: list[str] | None = None, timeout_s: float = AGENT_START_TIMEOUT_S
    ) -> list[LabAgent]:
        """Returns the agents of `names` (default: every live host), after starting those not
        running (all at once) and waiting until each answers with libvirt connected.

        Raises LabAgentError naming the host, with its log's tail.
        """
        self.controller_certs  # noqa: B018 - the CA must exist before host certs are issued
        hosts = [self.lab.host(n) for n in names or [h.name for h in self.lab.hosts]]
        pids = {host.name: self._launch(host) for host in hosts}
        for host in hosts:
            self._wait_healthy(host.name, pids[host.name], self._log(host), timeout_s)
        return [LabAgent(h.name, self.address(h), pids[h.name], self._log(h)) for h in hosts]

    def down(self) -> None:
        """Stops every agent of the lab's live hosts (their VMs keep running) and removes the
        lab's firewall table (see `cut`)."""
        for host in self.lab.hosts:
            self.stop(host.name)
        self.remove_cuts()

    # -- faults ----------------------------------------------------------------------------

    @property
    def nft_table(self) -> str:
        """Returns the name of the lab's own nftables table (inet family) holding its cuts."""
        return f"corral_lab_{self.lab.name}"

    def cut(self, name: str) -> None:
        """Drops every packet this machine's root namespace sends to host `name`'s agent port:
        the controller loses the agent while the host, its guests and libvirtd run on.

        Only the lab's own table is touched; `reconnect` or `down` lifts the cut.
        """
        host = self.lab.host(name)
        table = self.nft_table
        netns.run(["nft", "add", "table", "inet", table])
        netns.run(
            ["nft", "add", "chain", "inet", table, "out",
             "{ type filter hook output priority 0 ; policy accept ; }"]
        )  # fmt: skip
        if not self._cut_handles(host.ip):
            netns.run(
                ["nft", "add", "rule", "inet", table, "out", "ip", "daddr", host.ip,
                 "tcp", "dport", str(AGENT_PORT), "drop", "comment", f'"{name}"']
            )  # fmt: skip

    def reconnect(self, name: str) -> None:
        """Lifts the cut of host `name` (no error if there is none)."""
        host = self.lab.host(name)
        for handle in self._cut_handles(host.ip):
            netns.run(["nft", "delete", "rule", "inet", self.nft_table, "out", "handle", handle])

    def _cut_handles(self, ip: str) -> list[str]:
        out = netns.run(["nft", "-a", "list", "chain", "inet", self.nft_table, "out"], check=False)
        return [
            line.rsplit("handle", 1)[1].strip()
            for line in out.splitlines()
            if f"ip daddr {ip} " in line and "handle" in line
        ]

    def remove_cuts(self) -> None:
        """Removes the lab's nftables table, lifting every cut (no error if there is none)."""
        tables = netns.run(["nft", "list", "tables"], check=False)
        if f"inet {self.nft_table}" in tables:
            netns.run(["nft", "delete", "table", "inet", self.nft_table])


def _tail(log: Path, lines: int = 8) -> str:
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "<no log>"


class LeasePoller:
    """Reads the leases of `hosts`' agents every `interval_s` on a thread; keeps, per host,
    the least time left before its self-fence (`expires_in_s`) and whether it was ever not
    held. A context manager: polls from enter to exit."""

    def __init__(self, agents: LabAgents, hosts: list[str], interval_s: float = 0.25) -> None:
        self.agents = agents
        self.hosts = hosts
        self.interval_s = interval_s
        self.least: dict[str, float] = {}
        self.lapsed: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lease-poller", daemon=True)

    def _loop(self) -> None:
        clients = {h: self.agents.client(h, timeout_s=2.0) for h in self.hosts}
        try:
            while not self._stop.wait(self.interval_s):
                for host, client in clients.items():
                    with contextlib.suppress(AgentClientError):
                        lease = client.get_lease()
                        if not lease.held:
                            self.lapsed.add(host)
                        if lease.expires_in_s is not None:
                            least = self.least.get(host, lease.expires_in_s)
                            self.least[host] = min(least, lease.expires_in_s)
        finally:
            for client in clients.values():
                client.close()

    def __enter__(self) -> LeasePoller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
