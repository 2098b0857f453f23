"""Real node agents running inside lab hosts (`corral agent` over mTLS), as on real machines."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from controller.agents import AgentClient, AgentUnavailable
from controller.lab.libvirtd import Lab, LabHost
from nodeagent.tls import make_ca, make_controller_cert, make_host_cert

AGENT_PORT = 8443
REPO_ROOT = Path(__file__).resolve().parents[2]


def agent_argv(host: LabHost, certs: Path) -> list[str]:
    """Returns the `corral agent` command line for `host`, serving mTLS on its lab address."""
    return [
        sys.executable, "-m", "controller.cli.main", "agent",
        "--libvirt-uri", "qemu:///system",
        "--listen", f"{host.ip}:{AGENT_PORT}",
        "--certs", str(certs),
        "--migration-uri", host.uri,
        "--lease-ttl", "3600",
        "--lease-file", str(certs.parent / f"lease-{host.name}.json"),
        "--log-level", "warning",
    ]  # fmt: skip


def wait_healthy(client: AgentClient, proc: subprocess.Popen, log: Path, timeout_s: float) -> None:
    """Returns once the agent answers /v1/health with libvirt connected; raises RuntimeError
    with the agent's log if it exits or does not answer in time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"agent exited {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            if client.health().libvirt_connected:
                return
        except AgentUnavailable:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"agent not healthy after {timeout_s} s: {log.read_text()[-2000:]}")
        time.sleep(0.2)


@contextmanager
def agents_in_lab(lab: Lab, names: list[str], workdir: Path) -> Iterator[dict[str, AgentClient]]:
    """Yields a controller-side client per host, each talking mTLS to a real agent process
    started inside that host's namespaces; stops the agents on exit (also on failure).
    """
    certs = workdir / "certs"
    make_ca(certs)
    controller_certs = make_controller_cert(certs)
    with ExitStack() as stack:
        clients = {}
        for name in names:
            host = lab.host(name)
            host_certs = make_host_cert(certs, name, ips=[host.ip])
            log = workdir / f"agent-{name}.log"
            out = stack.enter_context(open(log, "w"))
            proc = lab.run_in_host(
                name, agent_argv(host, host_certs), cwd=REPO_ROOT, stdout=out, stderr=out
            )
            stack.callback(_stop, proc)
            client = stack.enter_context(
                AgentClient(f"https://{host.ip}:{AGENT_PORT}", cert_dir=controller_certs)
            )
            wait_healthy(client, proc, log, timeout_s=60)
            clients[name] = client
        yield clients


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
