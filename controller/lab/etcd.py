"""etcd members, the HA arbiter: their command line, certificates and health probes.

A member listens on one address with a client port (where its v3 JSON gateway answers too)
and a peer port. With a TLS dir, both ports speak mutual TLS with certificates from a Corral
CA (nodeagent.tls): a member certificate per member (serverAuth and clientAuth, its address
as SAN) and a client certificate (`certs/etcd/client/{ca.crt,client.crt,client.key}`, CN
corral-etcd-client, which agents refuse as a controller).

tests/helpers/etcd.py runs members on 127.0.0.1 for tests with these.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from nodeagent.tls import CERT_DAYS, make_ca, make_controller_cert

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
    ca_cert = x509.load_pem_x509_certificate((certs_dir / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((certs_dir / "ca.key").read_bytes(), None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    alt: list[x509.GeneralName] = [x509.DNSName(name)]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    usages = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    out = certs_dir / "etcd" / "members" / name
    out.mkdir(parents=True, exist_ok=True)
    fd = os.open(out / "member.key", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    (out / "member.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
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


def client_ssl_context(tls: ClientTLS) -> ssl.SSLContext:
    """Returns an SSL context that trusts `tls.ca` and presents `tls.cert`."""
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.cert), str(tls.key))
    return context


# -- the JSON gateway ------------------------------------------------------------------------


def http_client(tls: ClientTLS | None, timeout_s: float = 2.0) -> httpx.Client:
    """Returns an httpx client for members' client URLs (mutual TLS when `tls`)."""
    verify: ssl.SSLContext | bool = client_ssl_context(tls) if tls is not None else True
    return httpx.Client(verify=verify, timeout=timeout_s)


def call(client: httpx.Client, endpoint: str, path: str, body: Mapping[str, Any]) -> dict:
    """Returns the JSON answer of POST endpoint+path (e.g. /v3/maintenance/status).

    Raises httpx.HTTPError when the member is unreachable or answers an error status.
    """
    answer = client.post(f"{endpoint}{path}", json=dict(body))
    answer.raise_for_status()
    return answer.json()


def is_healthy(client: httpx.Client, endpoint: str) -> bool:
    """Returns whether GET /health says true: the member has a leader and a quorum read
    succeeded. False when unreachable."""
    try:
        answer = client.get(f"{endpoint}/health")
        return answer.status_code == 200 and answer.json().get("health") == "true"
    except (httpx.HTTPError, ValueError):
        return False


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
    client: httpx.Client,
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
    while not is_healthy(client, member.client_url):
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
