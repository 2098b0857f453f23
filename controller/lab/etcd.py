"""etcd members, the HA arbiter: one per lab host, forming the lab's cluster.

Each lab host runs one member inside its network and mount namespaces, on the host's lab
address (client port 2379, peer port 2380), so cutting the host's link (`Lab.partition`) cuts
its member off with it, and the other members keep a quorum when a majority remains. The
members talk mutual TLS with the lab's CA (`<lab root>/certs`, the agents' CA):

- `certs/etcd/members/NAME/{ca.crt,member.crt,member.key}`: a member's certificate, for its
  client and peer ports (serverAuth and clientAuth, the host's IP as SAN);
- `certs/etcd/client/{ca.crt,client.crt,client.key}`: the one client certificate the
  controller and the agents present (CN corral-etcd-client: agents refuse it as a controller).

A member's data dir, log and pid file are `<lab root>/host-N/etcd/{data,member.log,member.pid}`.
Members run detached, so they outlive `corral lab up`; `Lab.down` kills them with every other
process in the lab's namespaces and removes their data with the lab's dirs.

The argv, the certificates and `wait_healthy` here are shared with tests/helpers/etcd.py,
which runs members on 127.0.0.1 for tests. Both reach the members with arbiter's EtcdClient.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from arbiter import EtcdClient, EtcdError, EtcdSettings, make_settings
from controller.lab import netns
from nodeagent.tls import _issue, _write_cert, _write_key, make_ca, make_controller_cert

if TYPE_CHECKING:
    from controller.lab.libvirtd import Lab, LabHost

CLIENT_PORT = 2379
PEER_PORT = 2380
START_TIMEOUT_S = 30.0
"""Three fresh members elect a leader in about a second; a loaded 2-core machine needs more."""
PROCESS_NAME = "etcd"
CLIENT_IDENTITY = "corral-etcd-client"
MEMBER_FILES = ("ca.crt", "member.crt", "member.key")


class EtcdMemberError(RuntimeError):
    """An etcd member did not start, answer or join as asked; the message names it."""


class ClientTLS(NamedTuple):
    """The files an etcd client presents: the CA it trusts, its certificate and its key."""

    ca: Path
    cert: Path
    key: Path


@dataclass(frozen=True)
class Member:
    """One member's identity and files: name, address, ports, data dir, TLS dir (or None)."""

    name: str
    ip: str
    data_dir: Path
    client_port: int = CLIENT_PORT
    peer_port: int = PEER_PORT
    tls_dir: Path | None = None
    """Holds MEMBER_FILES; None serves plain HTTP on both ports."""

    @property
    def scheme(self) -> str:
        return "http" if self.tls_dir is None else "https"

    @property
    def client_url(self) -> str:
        """Returns the URL clients reach this member at (its JSON gateway lives there too)."""
        return f"{self.scheme}://{self.ip}:{self.client_port}"

    @property
    def peer_url(self) -> str:
        """Returns the URL the other members reach this member at."""
        return f"{self.scheme}://{self.ip}:{self.peer_port}"


def member_argv(
    member: Member, cluster: Mapping[str, str], *, token: str, state: str = "new"
) -> list[str]:
    """Returns the etcd command line of `member` in a cluster of `cluster` (name -> peer URL).

    `state` is "new" when every member of `cluster` starts fresh, "existing" when the member
    joins a running cluster that already lists it. Both are ignored once the data dir holds
    a member: a restart needs the same argv only. Pre-vote keeps a member that comes back
    from a partition from deposing a healthy leader.
    """
    argv = [
        "etcd",
        "--name", member.name,
        "--data-dir", str(member.data_dir),
        "--listen-client-urls", member.client_url,
        "--advertise-client-urls", member.client_url,
        "--listen-peer-urls", member.peer_url,
        "--initial-advertise-peer-urls", member.peer_url,
        "--initial-cluster", ",".join(f"{name}={url}" for name, url in cluster.items()),
        "--initial-cluster-state", state,
        "--initial-cluster-token", token,
        "--pre-vote=true",
        "--logger", "zap",
        "--log-outputs", "stderr",
    ]  # fmt: skip
    if member.tls_dir is not None:
        ca, cert, key = (str(member.tls_dir / name) for name in MEMBER_FILES)
        argv += [
            "--trusted-ca-file", ca, "--cert-file", cert, "--key-file", key,
            "--client-cert-auth",
            "--peer-trusted-ca-file", ca, "--peer-cert-file", cert, "--peer-key-file", key,
            "--peer-client-cert-auth",
        ]  # fmt: skip
    return argv


# -- certificates ----------------------------------------------------------------------------


def issue_member_cert(certs_dir: Path, name: str, ips: Sequence[str]) -> Path:
    """Returns certs_dir/etcd/members/NAME/ holding MEMBER_FILES, issued by certs_dir's CA
    (made if missing) with `name` and `ips` as SANs.

    The certificate carries serverAuth and clientAuth: a member dials its peers with it, and
    its JSON gateway dials the member's own gRPC port with it, which --client-cert-auth
    refuses ("incompatible key usage") for a serverAuth-only certificate like an agent's.
    """
    make_ca(certs_dir)
    alt: list[x509.GeneralName] = [x509.DNSName(name)]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert, key = _issue(certs_dir, name, usages, alt)
    out = certs_dir / "etcd" / "members" / name
    _write_key(out / "member.key", key)
    _write_cert(out / "member.crt", cert)
    shutil.copyfile(certs_dir / "ca.crt", out / "ca.crt")
    return out


def issue_client_cert(certs_dir: Path) -> ClientTLS:
    """Returns the etcd client certificate's files in certs_dir/etcd/client/, issuing it (and
    the CA) once; later calls return the same files."""
    out = certs_dir / "etcd" / "client"
    if not (out / "client.crt").exists():
        make_ca(certs_dir)
        make_controller_cert(certs_dir, name=CLIENT_IDENTITY, subdir="etcd/client")
    return ClientTLS(out / "ca.crt", out / "client.crt", out / "client.key")


def client_settings(endpoints: Iterable[str], tls: ClientTLS | None) -> EtcdSettings:
    """Returns arbiter's settings for members' client URLs (mutual TLS when `tls`)."""
    files = {} if tls is None else {"ca_file": tls.ca, "cert_file": tls.cert, "key_file": tls.key}
    return make_settings(list(endpoints), **files)


def log_tail(log: Path, lines: int = 6) -> str:
    """Returns the last lines of a member's log joined with " | ", each of etcd's JSON lines
    shortened to "level: msg: error" (for error messages)."""
    try:
        tail = log.read_text(errors="replace").splitlines()[-lines:]
    except FileNotFoundError:
        return "<no log>"
    return " | ".join(_short_log_line(line) for line in tail)


def _short_log_line(line: str) -> str:
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict):
        return line
    parts = [entry.get("level", "?"), entry.get("msg", "")]
    return ": ".join(str(part) for part in [*parts, entry.get("error")] if part)


def wait_healthy(
    client: EtcdClient,
    member: Member,
    log: Path,
    timeout_s: float = START_TIMEOUT_S,
    exited: Callable[[], bool] = lambda: False,
) -> float:
    """Returns the seconds until `member` answered healthy.

    Raises EtcdMemberError naming the member, with its log's tail, when `exited()` says its
    process is gone or `timeout_s` passes.
    """
    started = time.monotonic()
    while not client.health(member.client_url):
        if exited():
            raise EtcdMemberError(f"etcd member {member.name} exited: {log_tail(log)}")
        if time.monotonic() - started > timeout_s:
            raise EtcdMemberError(
                f"etcd member {member.name} not healthy at {member.client_url} after "
                f"{timeout_s:g}s: {log_tail(log)}"
            )
        time.sleep(0.1)
    return time.monotonic() - started


def has_data(member: Member) -> bool:
    """Returns whether the member's data dir holds a member (a restart keeps its identity)."""
    return (member.data_dir / "member").is_dir()


# -- the lab's members ----------------------------------------------------------------------


class LabEtcd:
    """Starts, stops, kills and addresses the etcd members of a lab's hosts (one cluster).

    It never takes the lab's lock (Lab's methods call it while holding it); callers pass the
    live hosts they act on.
    """

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.certs = lab.root / "certs"
        self.token = f"corral-lab-{lab.name}"

    # -- addressing ------------------------------------------------------------------------

    def member(self, host: LabHost) -> Member:
        """Returns the member of `host` (its TLS dir is issued on first use)."""
        tls_dir = self.certs / "etcd" / "members" / host.name
        if not all((tls_dir / name).exists() for name in MEMBER_FILES):
            issue_member_cert(self.certs, host.name, [host.ip])
        return Member(host.name, host.ip, host.plan.root / "etcd" / "data", tls_dir=tls_dir)

    def endpoints(self, hosts: Iterable[LabHost] | None = None) -> list[str]:
        """Returns the client URLs (https://IP:2379) of `hosts`' members (default: every
        live host's), in host order."""
        hosts = self.lab.hosts if hosts is None else hosts
        return [f"https://{host.ip}:{CLIENT_PORT}" for host in hosts]

    def client_tls(self) -> ClientTLS:
        """Returns the client certificate files the controller and the agents present."""
        return issue_client_cert(self.certs)

    def client(self, hosts: Iterable[LabHost] | None = None, timeout_s: float = 2.0) -> EtcdClient:
        """Returns a new etcd client of `hosts`' members (default: every live host's) with the
        lab's client certificate (close it after use)."""
        return EtcdClient(
            client_settings(self.endpoints(hosts), self.client_tls()), timeout_s=timeout_s
        )

    def _dir(self, host: LabHost) -> Path:
        return host.plan.root / "etcd"

    def log(self, host: LabHost) -> Path:
        """Returns the path of `host`'s member log (as seen from the root namespace)."""
        return self._dir(host) / "member.log"

    # -- processes -------------------------------------------------------------------------

    def pid(self, host: LabHost) -> int | None:
        """Returns the pid of `host`'s member if it runs inside that host, else None."""
        try:
            pid = int((self._dir(host) / "member.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        running = netns.process_name(pid) == PROCESS_NAME
        return pid if running and pid in netns.netns_pids(host.plan.netns) else None

    def _launch(self, host: LabHost, cluster: Mapping[str, str], state: str) -> int:
        member = self.member(host)
        self._dir(host).mkdir(parents=True, exist_ok=True)
        argv = host.nsenter(member_argv(member, cluster, token=self.token, state=state))
        with open(self.log(host), "ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives `corral lab up`; Lab.down kills it
            )
        (self._dir(host) / "member.pid").write_text(f"{proc.pid}\n")
        return proc.pid

    def _wait(self, client: EtcdClient, host: LabHost, pid: int, timeout_s: float) -> None:
        def exited() -> bool:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return netns.process_name(pid) is None

        wait_healthy(client, self.member(host), self.log(host), timeout_s, exited)

    def up(self, hosts: Sequence[LabHost], timeout_s: float = START_TIMEOUT_S) -> None:
        """Makes a member run on each of `hosts` and waits until each answers healthy.

        The first time, `hosts` form a new cluster. Members with data restart with it. A host
        that has none joins the running cluster: it is added as a member (unless the cluster
        lists it already), then started, one host at a time. Raises EtcdMemberError naming
        the member, with its log's tail.
        """
        if not hosts:
            return
        if shutil.which(PROCESS_NAME) is None:
            raise EtcdMemberError("etcd not found (make setup: scripts/setup-etcd.sh)")
        members = {host.name: self.member(host) for host in hosts}
        pids = {h.name: pid for h in hosts if (pid := self.pid(h)) is not None}
        known = {h.name: h for h in [*self.lab.hosts, *hosts]}
        fresh = not any(has_data(self.member(h)) for h in known.values())
        with self.client(hosts) as client:
            if fresh:
                cluster = {name: m.peer_url for name, m in members.items()}
                for host in hosts:
                    if host.name not in pids:
                        pids[host.name] = self._launch(host, cluster, "new")
            else:
                # A restart ignores the cluster flags (the data dir knows its cluster).
                cluster = {name: self.member(h).peer_url for name, h in known.items()}
                for host in hosts:
                    if host.name not in pids and has_data(members[host.name]):
                        pids[host.name] = self._launch(host, cluster, "existing")
                for host in hosts:
                    if host.name not in pids:
                        cluster = self._admit(members[host.name], known, timeout_s)
                        pids[host.name] = self._launch(host, cluster, "existing")
                        self._wait(client, host, pids[host.name], timeout_s)
            for host in hosts:
                self._wait(client, host, pids[host.name], timeout_s)

    def _admit(
        self, member: Member, known: Mapping[str, LabHost], timeout_s: float
    ) -> dict[str, str]:
        """Returns the cluster (name -> peer URL) `member` joins, after adding it to the
        running cluster unless it is listed already (a join that crashed before its start).
        It is added through a member that answers healthy: adding one needs a quorum."""
        others = [h for name, h in known.items() if name != member.name]
        deadline = time.monotonic() + timeout_s
        with contextlib.ExitStack() as stack:
            clients = [(h, stack.enter_context(self.client([h]))) for h in others]
            while True:
                for other, client in clients:
                    with contextlib.suppress(EtcdError):
                        listed = client.call("cluster/member/list", {})
                        peers = [m.get("peerURLs", []) for m in listed["members"]]
                        if not any(member.peer_url in urls for urls in peers):
                            if not client.health(self.member(other).client_url):
                                continue
                            listed = client.call(
                                "cluster/member/add", {"peerURLs": [member.peer_url]}
                            )
                        return {
                            m.get("name") or member.name: m["peerURLs"][0]
                            for m in listed["members"]
                        }
                if time.monotonic() > deadline:
                    raise EtcdMemberError(
                        f"etcd member {member.name}: no running member of lab {self.lab.name} "
                        f"could add it within {timeout_s:g}s ({', '.join(o.name for o in others)})"
                    )
                time.sleep(0.2)

    def start(self, host: LabHost, timeout_s: float = START_TIMEOUT_S) -> int:
        """Returns the pid of `host`'s member, restarting it with its data if it does not run,
        and waiting until it answers healthy (which needs a quorum of the cluster)."""
        self.up([host], timeout_s)
        pid = self.pid(host)
        assert pid is not None
        return pid

    def kill(self, host: LabHost) -> int | None:
        """SIGKILLs `host`'s member (a crash) and returns its pid, None if none ran; its data
        stays for `start`."""
        pid = self.pid(host)
        if pid is None:
            return None
        if netns.kill_and_wait([pid]):
            raise EtcdMemberError(f"etcd member {host.name}: pid {pid} survived SIGKILL")
        return pid

    def stop(self, host: LabHost, timeout_s: float = 10.0) -> bool:
        """Stops `host`'s member with SIGTERM (SIGKILL after timeout_s); returns whether one
        ran. It stays a member: `start` brings it back with its data."""
        pid = self.pid(host)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while netns.process_name(pid) is not None:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            if time.monotonic() > deadline:
                self.kill(host)
                break
            time.sleep(0.05)
        return True

    def status(self, host: LabHost) -> dict:
        """Returns `host`'s member status (POST /v3/maintenance/status: leader, raft term,
        header.member_id); raises httpx.HTTPError when it cannot be reached."""
        with self.client([host]) as client:
            return client.status(self.member(host).client_url)
