"""Helpers for end-to-end tests on this machine's real libvirtd: names, agents, guests.

Every name a test creates on libvirt (domains, networks, pools) starts with a per-test
prefix, so parallel or leftover runs never collide, and the `libvirt_objects` finalizer
removes all of them, also when the test fails.
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from controller.lab.heartbeat import GUEST_UP, SerialLogReader, parse_heartbeats
from tests.helpers.agent_server import free_port

SERIAL_DIR = Path("/var/log/libvirt/qemu")
REPO_ROOT = Path(__file__).resolve().parents[2]


def serial_log(vm: str) -> Path:
    """Return the serial log the agent gives VM `vm` (the planner's naming)."""
    return SERIAL_DIR / f"{vm}-serial.log"


def used_subnets(conn) -> list[ipaddress.IPv4Network]:
    """Return the IPv4 subnets of every libvirt network on `conn` (active or not)."""
    subnets = []
    for net in conn.listAllNetworks():
        for ip in ET.fromstring(net.XMLDesc()).iter("ip"):
            address, prefix = ip.get("address"), ip.get("prefix") or ip.get("netmask")
            if address and prefix and ":" not in address:
                subnets.append(ipaddress.IPv4Network(f"{address}/{prefix}", strict=False))
    return subnets


def free_subnet(conn) -> str:
    """Return a /24 under 10.120.0.0/14 that no libvirt network on `conn` overlaps."""
    used = used_subnets(conn)
    candidates = list(ipaddress.IPv4Network("10.120.0.0/14").subnets(new_prefix=24))
    start = uuid.uuid4().int % len(candidates)
    for candidate in candidates[start:] + candidates[:start]:
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise RuntimeError("no free /24 under 10.120.0.0/14 for a test network")


@dataclass
class LibvirtObjects:
    """What a test made on libvirt, removed by `cleanup` (domains, then networks, pools)."""

    conn: object
    prefix: str
    domains: list[str] = field(default_factory=list)
    networks: list[str] = field(default_factory=list)
    pools: list[tuple[str, Path]] = field(default_factory=list)

    def name(self, suffix: str) -> str:
        """Return a libvirt-safe unique name: "<prefix>-<suffix>"."""
        return f"{self.prefix}-{suffix}"

    def domain(self, name: str) -> str:
        self.domains.append(name)
        return name

    def network(self, name: str) -> str:
        self.networks.append(name)
        return name

    def pool(self, name: str, path: Path) -> str:
        self.pools.append((name, path))
        return name

    def cleanup(self) -> None:
        """Destroy and undefine everything recorded; no error for what is already gone."""
        import libvirt

        conn = self.conn
        for name in self.domains:
            with suppress(libvirt.libvirtError):
                dom = conn.lookupByName(name)
                with suppress(libvirt.libvirtError):
                    dom.destroy()
                with suppress(libvirt.libvirtError):
                    dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            serial_log(name).unlink(missing_ok=True)
            (SERIAL_DIR / f"{name}.log").unlink(missing_ok=True)
        for name in self.networks:
            with suppress(libvirt.libvirtError):
                net = conn.networkLookupByName(name)
                with suppress(libvirt.libvirtError):
                    net.destroy()
                with suppress(libvirt.libvirtError):
                    net.undefine()
        for name, path in self.pools:
            with suppress(libvirt.libvirtError):
                pool = conn.storagePoolLookupByName(name)
                with suppress(libvirt.libvirtError):
                    pool.destroy()
                with suppress(libvirt.libvirtError):
                    pool.undefine()
            shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class AgentProcess:
    """A real `corral agent` process on loopback, plain HTTP (--insecure-dev)."""

    address: str
    process: subprocess.Popen
    log: Path


def start_agent(libvirt_uri: str, log: Path, port: int | None = None) -> AgentProcess:
    """Start `corral agent` on 127.0.0.1 and return once it answers /v1/health."""
    port = port or free_port()
    address = f"http://127.0.0.1:{port}"
    argv = [
        sys.executable, "-m", "controller.cli.main", "agent",
        "--libvirt-uri", libvirt_uri,
        "--listen", f"127.0.0.1:{port}",
        "--insecure-dev",
        "--lease-ttl", "3600",
        "--lease-file", str(log.with_suffix(".lease.json")),
        "--log-level", "warning",
    ]  # fmt: skip
    out = open(log, "wb")  # noqa: SIM115 - the child writes to it for its whole life
    process = subprocess.Popen(argv, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"agent exited {process.returncode}: {log.read_text()[-2000:]}")
        with suppress(httpx.HTTPError):
            if httpx.get(f"{address}/v1/health", timeout=1).status_code == 200:
                return AgentProcess(address, process, log)
        if time.monotonic() > deadline:
            stop_agent(process)
            raise RuntimeError(f"agent not answering after 60 s: {log.read_text()[-2000:]}")
        time.sleep(0.2)


def stop_agent(process: subprocess.Popen) -> None:
    """Terminate an agent process (its VMs keep running) and reap it."""
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def current_boot(vm: str) -> list[tuple[int, float]]:
    """Return (number, uptime_s) of the heartbeats printed since `vm`'s latest GUEST-UP."""
    try:
        data = serial_log(vm).read_bytes()
    except FileNotFoundError:
        return []
    start = data.rfind(GUEST_UP)
    return parse_heartbeats(data[start:]) if start >= 0 else []


def wait_heartbeats(
    vm: str, count: int = 2, *, booted_after: float | None = None, timeout_s: float = 90.0
) -> list[tuple[int, float]]:
    """Return `vm`'s current-boot heartbeats once there are `count` of them.

    `booted_after` (time.monotonic()) also requires the boot to be newer than that
    moment, judged by the guest's own uptime: a restarted guest counts from zero again.
    Raises TimeoutError with the log's last lines when that does not happen in time.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        beats = current_boot(vm)
        fresh = booted_after is None or (
            bool(beats) and beats[-1][1] < time.monotonic() - booted_after
        )
        if len(beats) >= count and fresh:
            return beats
        if time.monotonic() > deadline:
            tail = SerialLogReader({vm: serial_log(vm)}).tails()[vm]
            raise TimeoutError(f"{vm}: no {count} fresh heartbeats in {timeout_s} s; log: {tail}")
        time.sleep(0.2)
