"""Starts node agents on this machine for hosts whose address is on loopback (`corral up`)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from agentapi import VERBS
from schemas.host import Host

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def loopback_port(host: Host) -> int | None:
    """Return the port of a plain-HTTP loopback agent address, or None for any other address."""
    parts = urlsplit(host.spec.address)
    if parts.scheme != "http" or parts.hostname not in LOOPBACK:
        return None
    return parts.port or 80


def answering(address: str, timeout_s: float = 1.0) -> bool:
    """Return True when an agent answers its health verb at `address`."""
    url = address.rstrip("/") + VERBS.health.route
    try:
        return httpx.get(url, timeout=timeout_s).status_code == 200
    except httpx.HTTPError:
        return False


class LocalAgents:
    """Agent processes started for loopback hosts; stopped (VMs keep running) on close."""

    def __init__(self, libvirt_uri: str, log_dir: Path) -> None:
        self.libvirt_uri = libvirt_uri
        self.log_dir = log_dir
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def ensure(self, host: Host, wait_s: float = 20.0) -> str | None:
        """Start an agent for `host` if it is a loopback host and none answers; return a note."""
        port = loopback_port(host)
        if port is None or answering(host.spec.address):
            return None
        if host.metadata.name in self.processes:
            return None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"agent-{host.metadata.name}.log", "ab")  # noqa: SIM115
        argv = [
            sys.executable,
            "-m",
            "controller.cli.main",
            "agent",
            "--libvirt-uri",
            self.libvirt_uri,
            "--listen",
            f"127.0.0.1:{port}",
            "--insecure-dev",
            "--lease-ttl",
            str(host.spec.fencing.lease_ttl_s),
            "--lease-file",
            str(self.log_dir / f"agent-{host.metadata.name}-lease.json"),
        ]
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.processes[host.metadata.name] = process
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the agent for {host.metadata.name} exited with {process.returncode}; "
                    f"see {log.name}"
                )
            if answering(host.spec.address, 0.5):
                return (
                    f"started agent for {host.metadata.name} on 127.0.0.1:{port} "
                    f"({self.libvirt_uri}), log {log.name}"
                )
            time.sleep(0.2)
        raise RuntimeError(f"the agent for {host.metadata.name} did not answer in {wait_s:.0f}s")

    def close(self) -> None:
        for process in self.processes.values():
            process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        self.processes.clear()
