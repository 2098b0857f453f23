"""A real etcd for tests: a cluster of 1 or 3 members on 127.0.0.1, optionally over mutual TLS.

Each member listens on free ports of 127.0.0.1 (client and peer) and keeps its data dir under
one temporary directory; `kill_member` SIGKILLs one (a crash) and `start_member` restarts it
with its data. With `tls`, a CA of the cluster's own issues the member certificates and one
client certificate (`client_tls`), and members refuse clients without it. Command lines,
certificates and health probes are controller.lab.etcd's, as for the lab's members; clients
are arbiter's EtcdClient (`client`).

Fixtures (registered for every test in tests/conftest.py), each started once per module:
`etcd` (1 member, plain HTTP), `etcd_tls` (1 member, mutual TLS), `etcd3` (3 members, plain
HTTP). Without the etcd binary a test using them fails, naming `make setup`.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from arbiter import EtcdClient
from controller.lab.etcd import (
    START_TIMEOUT_S,
    ClientTLS,
    EtcdMemberError,
    Member,
    client_settings,
    issue_client_cert,
    issue_member_cert,
    member_argv,
    wait_healthy,
)
from tests.helpers.private_pg import free_port
from tests.helpers.services import require

LOOPBACK = "127.0.0.1"


def missing_binary() -> str | None:
    """Returns why no member can run here (None when the etcd binary is on PATH)."""
    return None if shutil.which("etcd") else "etcd not found (Debian's etcd-server package)"


def free_ports(count: int) -> list[int]:
    """Returns `count` distinct TCP ports of 127.0.0.1 that nothing listened on a moment ago."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        if port not in ports:
            ports.append(port)
    return ports


class EtcdCluster:
    """`size` members of one cluster on 127.0.0.1; `start`, crash and restart them, `close`.

    Member i is named m<i>; its client URL is `endpoints[i]` and stays the same across
    restarts. Nothing runs until `start`.
    """

    def __init__(self, size: int = 1, *, tls: bool = False) -> None:
        if size < 1:
            raise ValueError(f"size: expected 1 or more members, got {size}")
        self.root = Path(tempfile.mkdtemp(prefix="corral-etcd-"))
        self.token = f"corral-test-{uuid.uuid4().hex[:8]}"
        certs = self.root / "certs"
        ports = free_ports(2 * size)
        self.members = [
            Member(
                f"m{i}",
                LOOPBACK,
                self.root / f"m{i}" / "data",
                client_port=ports[2 * i],
                peer_port=ports[2 * i + 1],
                tls_dir=issue_member_cert(certs, f"m{i}", [LOOPBACK]) if tls else None,
            )
            for i in range(size)
        ]
        self._client_tls = issue_client_cert(certs) if tls else None
        self._procs: list[subprocess.Popen | None] = [None] * size

    @property
    def endpoints(self) -> list[str]:
        """Returns each member's client URL (http(s)://127.0.0.1:PORT), by member index."""
        return [member.client_url for member in self.members]

    @property
    def client_tls(self) -> ClientTLS | None:
        """Returns the (ca, cert, key) paths a client presents, or None without TLS."""
        return self._client_tls

    def client(self, *members: int, timeout_s: float = 2.0) -> EtcdClient:
        """Returns a new etcd client of the members of indices `members` (default: all), with
        the client certificate under TLS; close it after use."""
        endpoints = [self.endpoints[i] for i in members] if members else self.endpoints
        return EtcdClient(client_settings(endpoints, self._client_tls), timeout_s=timeout_s)

    def log(self, i: int) -> Path:
        """Returns member i's log file (etcd's JSON lines, appended across restarts)."""
        return self.root / f"m{i}.log"

    def running(self, i: int) -> bool:
        """Returns whether member i's process runs."""
        proc = self._procs[i]
        return proc is not None and proc.poll() is None

    def _launch(self, i: int) -> None:
        cluster = {member.name: member.peer_url for member in self.members}
        argv = member_argv(self.members[i], cluster, token=self.token)
        with open(self.log(i), "ab") as out:
            self._procs[i] = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT
            )

    def _wait(self, i: int, timeout_s: float) -> None:
        with self.client(i) as client:
            wait_healthy(
                client, self.members[i], self.log(i), timeout_s, lambda: not self.running(i)
            )

    def start(self, timeout_s: float = START_TIMEOUT_S) -> EtcdCluster:
        """Starts every member and returns once each answers healthy (a leader is elected).

        Raises EtcdMemberError naming the member, with its log's tail, on exit or timeout.
        """
        for i in range(len(self.members)):
            if not self.running(i):
                self._launch(i)
        for i in range(len(self.members)):
            self._wait(i, timeout_s)
        return self

    def kill_member(self, i: int) -> None:
        """SIGKILLs member i (a crash: no graceful leave) and waits until it is gone."""
        proc = self._procs[i]
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)

    def start_member(self, i: int, timeout_s: float = START_TIMEOUT_S) -> None:
        """Restarts member i with its data dir if it does not run; returns once it answers
        healthy (rejoined, with a leader). Raises EtcdMemberError on exit or timeout."""
        if not self.running(i):
            self._launch(i)
        self._wait(i, timeout_s)

    def status(self, i: int) -> dict:
        """Returns member i's POST /v3/maintenance/status answer (leader, header.member_id,
        raftTerm: int64 fields as strings). Raises httpx.HTTPError if it does not answer."""
        with self.client(i) as client:
            return client.status(self.endpoints[i])

    def leader_index(self) -> int | None:
        """Returns the index of the running member that reports itself leader, or None."""
        for i in range(len(self.members)):
            if not self.running(i):
                continue
            try:
                status = self.status(i)
            except httpx.HTTPError:
                continue
            if status.get("leader") and status["leader"] == status["header"]["member_id"]:
                return i
        return None

    def wait_leader(self, timeout_s: float = 15.0, other_than: int | None = None) -> int:
        """Returns the leader's index once one (not `other_than`) is elected; raises
        EtcdMemberError after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while (leader := self.leader_index()) is None or leader == other_than:
            if time.monotonic() > deadline:
                raise EtcdMemberError(f"no leader other than {other_than} after {timeout_s:g}s")
            time.sleep(0.05)
        return leader

    def close(self) -> None:
        """Kills every member and deletes the cluster's directory."""
        for i in range(len(self.members)):
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.kill_member(i)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> EtcdCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- reads, and a client without a certificate ------------------------------------------------


def value(client: EtcdClient, key: str) -> bytes | None:
    """Returns the value of `key` (a linearizable read), or None if it does not exist."""
    kv = client.get(key)
    return None if kv is None else kv.value


def put_without_certificate(endpoint: str, ca: Path, key: str) -> None:
    """Puts `key` (empty value) through a client that trusts `ca` but presents no certificate,
    which arbiter's EtcdClient cannot be under TLS. Raises httpx.TransportError when the
    member refuses the handshake, httpx.HTTPStatusError when it answers an error."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(ca)), timeout=2.0) as client:
        body = {"key": base64.b64encode(key.encode()).decode()}
        client.post(f"{endpoint}/v3/kv/put", json=body).raise_for_status()


# -- fixtures ----------------------------------------------------------------------------------


def _serve(size: int, tls: bool) -> Iterator[EtcdCluster]:
    require("etcd", missing_binary())
    cluster = EtcdCluster(size, tls=tls)
    try:
        yield cluster.start()
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def etcd() -> Iterator[EtcdCluster]:
    """Yields a started 1-member cluster on plain HTTP for the module; removed afterwards."""
    yield from _serve(1, tls=False)


@pytest.fixture(scope="module")
def etcd_tls() -> Iterator[EtcdCluster]:
    """Yields a started 1-member cluster that requires client certificates (`client_tls`)."""
    yield from _serve(1, tls=True)


@pytest.fixture(scope="module")
def etcd3() -> Iterator[EtcdCluster]:
    """Yields a started 3-member cluster on plain HTTP; a test that kills a member restarts it
    (`start_member`) so the next test finds all three."""
    yield from _serve(3, tls=False)
