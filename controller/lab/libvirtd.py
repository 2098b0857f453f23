"""Real libvirtd hosts on this machine: the single system host, or a multi-host lab.

Single host: `ensure_system_libvirtd()` runs setup-host.sh (qemu.conf, users, virtlogd and
libvirtd) when qemu:///system does not answer, and returns that URI.

Multi-host lab: `Lab(name).up(n)` builds n hosts, each a network namespace (veth on a bridge)
plus a private mount namespace with its own libvirt dirs, holding a libvirtd that listens on
TCP (unauthenticated: lab only) and an etcd member of the lab's cluster (controller.lab.etcd).
See controller.lab.hostconf for names and addresses. Every step is idempotent; `up` repairs a
half-built lab, and `down` removes every namespace, link, process and dir the lab made, using
its state file (/run/corral-lab/<name>.json) and the lab's name prefixes, so it also cleans up
after a crash of the process that built the lab.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from controller.lab import hostconf, netns
from controller.lab.etcd import ClientTLS, EtcdMemberError, LabEtcd
from controller.lab.hostconf import HostPlan

SYSTEM_URI = "qemu:///system"
SETUP_HOST_SCRIPT = Path(__file__).with_name("setup-host.sh")
DEFAULT_LAB_NAME = "lab"
DEFAULT_SUBNET = "10.77.0.0/24"
STATE_DIR = Path("/run/corral-lab")
LAB_ROOT = Path("/var/lib/corral-lab")
SYSTEM_CAPS_CACHE = Path("/var/cache/libvirt/qemu/capabilities")
LIBVIRTD_START_TIMEOUT_S = 60.0
"""A cold libvirtd probes QEMU's capabilities for ~8 s; a copied cache makes that 0.2 s."""
LIBVIRTD_PROCESS_NAMES = frozenset({"libvirtd", "qemu-system-x86"})
"""comm names (15 bytes) of what `kill_host` stops: the daemon and the guests' QEMUs."""


class LabError(RuntimeError):
    """The lab or the system libvirtd could not be brought to the requested state."""


def libvirt_answers(uri: str, timeout_s: float = 10.0) -> bool:
    """Returns True if `virsh -c uri` connects within timeout_s (a libvirt connect to an
    unreachable host hangs forever, so it runs in a killable subprocess).
    """
    try:
        proc = subprocess.run(
            ["virsh", "-q", "-c", uri, "uri"], capture_output=True, timeout=timeout_s, check=False
        )
    except (subprocess.TimeoutExpired, FileNotFoundError):
        return False
    return proc.returncode == 0


def missing_host_tools() -> list[str]:
    """Returns the binaries a libvirt host needs that are not on PATH."""
    tools = ["libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "qemu-img", "ip", "unshare"]
    return [tool for tool in tools if shutil.which(tool) is None]


def ensure_system_libvirtd(install: bool = False) -> str:
    """Returns qemu:///system after making sure the machine's own libvirtd answers there,
    running setup-host.sh (with apt installs only if `install`) when it does not.

    Raises LabError with the script's output if libvirtd still does not answer.
    """
    if libvirt_answers(SYSTEM_URI, timeout_s=5.0):
        return SYSTEM_URI
    argv = [str(SETUP_HOST_SCRIPT)] + ([] if install else ["--no-install"])
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not libvirt_answers(SYSTEM_URI):
        raise LabError(f"system libvirtd not available: {(proc.stderr or proc.stdout).strip()}")
    return SYSTEM_URI


@dataclass(frozen=True)
class LabHost:
    """A running lab host: its identity plus the pid holding its namespaces."""

    plan: HostPlan
    anchor_pid: int

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def ip(self) -> str:
        return self.plan.ip

    @property
    def uri(self) -> str:
        """Returns qemu+tcp://IP/system, reachable from the root namespace via the bridge."""
        return self.plan.uri

    @property
    def socket_uri(self) -> str:
        """Returns a URI over the host's unix socket: works while the host is partitioned."""
        return self.plan.socket_uri

    def outside(self, inside: str | Path) -> Path:
        """Returns the root-namespace path of a path as this host's processes see it."""
        return self.plan.outside(inside)

    def nsenter(self, argv: list[str]) -> list[str]:
        """Returns argv wrapped to run inside this host's network and mount namespaces."""
        return ["nsenter", "-t", str(self.anchor_pid), "-m", "-n", "--", *argv]


class Lab:
    """A set of libvirt hosts in namespaces on this machine, named and addressed by `name`.

    Every method takes a lock on the lab's state file, so two processes cannot interleave.
    """

    def __init__(
        self,
        name: str = DEFAULT_LAB_NAME,
        subnet: str = DEFAULT_SUBNET,
        state_dir: Path = STATE_DIR,
        root: Path = LAB_ROOT,
    ) -> None:
        hostconf.validate(name, subnet, 1)
        self.name = name
        self.subnet = subnet
        self.state_file = state_dir / f"{name}.json"
        self.root = root / name
        self.bridge = hostconf.bridge_name(name)
        self.etcd = LabEtcd(self)

    # -- state ---------------------------------------------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with open(self.state_file.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def _read_state(self) -> dict:
        try:
            return json.loads(self.state_file.read_text())
        except FileNotFoundError:
            return {"name": self.name, "subnet": self.subnet, "hosts": []}

    def _write_state(self, state: dict) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        os.replace(tmp, self.state_file)

    def _plan(self, index: int) -> HostPlan:
        return hostconf.plan_host(self.name, self.subnet, index, self.root)

    @property
    def hosts(self) -> list[LabHost]:
        """Returns the hosts whose namespaces are alive, in index order."""
        found = []
        for index in self._read_state()["hosts"]:
            plan = self._plan(index)
            pid = _anchor_pid(plan)
            if pid is not None:
                found.append(LabHost(plan, pid))
        return found

    def host(self, name: str) -> LabHost:
        """Returns the live host `name`; raises LabError if there is none."""
        for host in self.hosts:
            if host.name == name:
                return host
        raise LabError(f"lab {self.name}: no running host {name!r}")

    # -- up ------------------------------------------------------------------------------

    def up(self, count: int) -> list[LabHost]:
        """Returns hosts 1..count after making each exist with a libvirtd that answers and a
        healthy etcd member (see LabEtcd.up: the first `up` forms the cluster).

        Hosts already up are left alone (their guests keep running); hosts above `count` are
        not touched. Raises LabError (or LabCommandError) naming the failed step.
        """
        hostconf.validate(self.name, self.subnet, count)
        with self._locked():
            state = self._read_state()
            state["hosts"] = sorted(set(state["hosts"]) | set(range(1, count + 1)))
            self._write_state(state)
            netns.ensure_bridge(self.bridge, hostconf.bridge_address(self.subnet))
            hosts = [self._ensure_host(self._plan(index)) for index in range(1, count + 1)]
            self._ensure_etcd(hosts)
        return hosts

    def _ensure_etcd(self, hosts: list[LabHost]) -> None:
        try:
            self.etcd.up(hosts)
        except EtcdMemberError as exc:
            raise LabError(str(exc)) from exc

    def etcd_endpoints(self) -> list[str]:
        """Returns the client URLs of the lab's etcd members (https://IP:2379), in host order."""
        return self.etcd.endpoints()

    def etcd_client_tls(self) -> ClientTLS:
        """Returns (ca, cert, key): the files an etcd client of the lab (the controller, an
        agent) presents; the members refuse clients without them."""
        return self.etcd.client_tls()

    def _ensure_host(self, plan: HostPlan) -> LabHost:
        _write_host_files(plan)
        netns.ensure_netns(plan.netns)
        netns.ensure_veth(plan.veth, self.bridge, plan.netns, f"{plan.ip}/{plan.prefixlen}")
        pid = _anchor_pid(plan) or _start_anchor(plan)
        host = LabHost(plan, pid)
        self._ensure_libvirtd(host)
        return host

    def _caps_source(self, plan: HostPlan) -> Path | None:
        for index in self._read_state()["hosts"]:
            other = self._plan(index).root / "cache" / "qemu" / "capabilities"
            if index != plan.index and any(other.glob("*.xml")):
                return other
        return SYSTEM_CAPS_CACHE if any(SYSTEM_CAPS_CACHE.glob("*.xml")) else None

    def _ensure_libvirtd(self, host: LabHost) -> None:
        if _libvirtd_pid(host.plan) is None:
            caps = host.plan.root / "cache" / "qemu" / "capabilities"
            source = self._caps_source(host.plan)
            if source is not None and not any(caps.glob("*.xml")):
                shutil.copytree(source, caps, dirs_exist_ok=True)
            argv = host.nsenter(["libvirtd", "-d", "-l", "-p", "/run/libvirt/libvirtd.pid"])
            netns.run(argv)
        deadline = time.monotonic() + LIBVIRTD_START_TIMEOUT_S
        while not (_port_open(host.ip) and libvirt_answers(host.uri, timeout_s=5.0)):
            if time.monotonic() > deadline:
                log = host.plan.root / "log" / "libvirtd.log"
                tail = log.read_text().splitlines()[-5:] if log.exists() else []
                raise LabError(f"{host.name}: libvirtd did not answer at {host.uri}: {tail}")
            time.sleep(0.1)

    # -- faults --------------------------------------------------------------------------

    def kill_host(self, name: str) -> list[int]:
        """Returns the pids it SIGKILLed: the host's libvirtd and every QEMU on it (as a
        power loss would). Its namespaces and other processes (e.g. an agent) stay.
        """
        with self._locked():
            host = self.host(name)
            pids = [
                pid
                for pid in netns.netns_pids(host.plan.netns)
                if netns.process_name(pid) in LIBVIRTD_PROCESS_NAMES
            ]
            alive = netns.kill_and_wait(pids)
            if alive:
                raise LabError(f"{name}: processes {alive} survived SIGKILL")
            return pids

    def start_host(self, name: str) -> LabHost:
        """Returns the host after (re)starting its libvirtd and its etcd member if they do not
        run (the member rejoins with its data; it answers healthy once it has a quorum)."""
        with self._locked():
            host = self.host(name)
            self._ensure_libvirtd(host)
            self._ensure_etcd([host])
            return host

    def partition(self, name: str) -> None:
        """Cuts the host off the bridge (its veth down): no traffic in or out, processes run;
        its etcd member is cut off the others with it."""
        with self._locked():
            netns.set_link_up(self.host(name).plan.veth, False)

    def heal(self, name: str) -> None:
        """Reconnects a partitioned host to the bridge."""
        with self._locked():
            netns.set_link_up(self.host(name).plan.veth, True)

    def run_in_host(self, name: str, argv: list[str], **popen_kwargs) -> subprocess.Popen:
        """Returns a started process running argv inside the host's network and mount
        namespaces (where qemu:///system is that host's libvirtd). `down` kills it.
        """
        return subprocess.Popen(self.host(name).nsenter(argv), **popen_kwargs)

    # -- down ----------------------------------------------------------------------------

    def down(self) -> None:
        """Removes everything the lab made: processes in its namespaces, the namespaces,
        veths, bridge, host dirs and state file. Safe to repeat and after a crash.
        """
        with self._locked():
            state = self._read_state()
            names = set(netns.list_netns(hostconf.netns_prefix(self.name)))
            names |= {self._plan(index).netns for index in state["hosts"]}
            for ns in sorted(names):
                alive = netns.kill_and_wait(netns.netns_pids(ns))
                if alive:
                    raise LabError(f"{ns}: processes {alive} survived SIGKILL")
                netns.remove_netns(ns)
            for link in netns.list_links(hostconf.veth_prefix(self.name)):
                netns.remove_link(link)
            netns.remove_link(self.bridge)
            shutil.rmtree(self.root, ignore_errors=True)
            self.state_file.unlink(missing_ok=True)
            self.state_file.with_suffix(".lock").unlink(missing_ok=True)
        for directory in (self.root.parent, self.state_file.parent):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only if no other lab uses it


def _write_host_files(plan: HostPlan) -> None:
    for subdir, mount in hostconf.BIND_MOUNTS:
        (plan.root / subdir).mkdir(parents=True, exist_ok=True)
        # A bind mount needs its mount point to exist in the root namespace too.
        Path(mount).mkdir(parents=True, exist_ok=True)
    (plan.root / "log" / "qemu").mkdir(exist_ok=True)
    (plan.root / "etc" / "libvirtd.conf").write_text(hostconf.render_libvirtd_conf(plan))
    (plan.root / "etc" / "qemu.conf").write_text(hostconf.render_qemu_conf(plan))


def _pid_from(path: Path, expected_name: str) -> int | None:
    try:
        pid = int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return pid if netns.process_name(pid) == expected_name else None


def _anchor_pid(plan: HostPlan) -> int | None:
    return _pid_from(plan.root / "anchor.pid", "sleep")


def _libvirtd_pid(plan: HostPlan) -> int | None:
    return _pid_from(plan.root / "run" / "libvirtd.pid", "libvirtd")


def _start_anchor(plan: HostPlan, timeout_s: float = 10.0) -> int:
    (plan.root / "anchor.pid").unlink(missing_ok=True)
    argv = ["ip", "netns", "exec", plan.netns, "unshare", "-m", "--propagation", "private"]
    # setsid --fork detaches the anchor so it outlives the process that built the lab.
    log = plan.root / "anchor.log"
    with open(log, "w") as stderr:
        subprocess.run(
            ["setsid", "-f", *argv, "sh", "-c", hostconf.anchor_script(plan)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            check=True,
        )
    deadline = time.monotonic() + timeout_s
    while (pid := _anchor_pid(plan)) is None:
        if time.monotonic() > deadline:
            raise LabError(f"{plan.name}: namespace anchor did not start: {log.read_text()!r}")
        time.sleep(0.02)
    return pid


def _port_open(ip: str, port: int = hostconf.LIBVIRT_TCP_PORT, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((ip, port), timeout=timeout_s):
            return True
    except OSError:
        return False
