"""Mutual TLS for the agent: the fleet CA, host and controller certificates, and the
check that a client is the controller.

Only the controller may command an agent. The TLS handshake (CERT_REQUIRED with
the fleet CA) refuses clients without a certificate or with one from another CA;
`RequireController` then refuses a valid fleet certificate that is not the
controller's (a host certificate, say): the subject CN must be `corral-controller`
and the certificate must carry the clientAuth extended key usage.

Uvicorn does not put the peer certificate in the ASGI scope, so
`PeerIdentityH11Protocol` reads it from the transport's ssl_object when the
connection is made and puts the identity into that connection's scope state.

`build_tls_server` serves both the agent (mutual TLS, controller only) and the
REST API (server TLS, bearer tokens) with a certificate issued by the fleet CA.

Layout of a certs directory (`corral certs ...`):
  ca.crt, ca.key                      the fleet CA
  hosts/NAME/{ca.crt,agent.crt,agent.key}        what an agent's --certs points at
  controller/{ca.crt,client.crt,client.key}      what the controller's client uses
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from uvicorn.protocols.http.h11_impl import H11Protocol

from nodeagent import logredact

CONTROLLER_IDENTITY = "corral-controller"
PEER_IDENTITY_KEY = "corral_tls_peer_identity"
CA_DAYS = 3650
CERT_DAYS = 825
CERT_FILES = ("agent.crt", "agent.key")  # a server's certificate and key in hosts/NAME/


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _load_ca(certs_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = certs_dir / "ca.crt", certs_dir / "ca.key"
    if not cert_path.exists() or not key_path.exists():
        raise FileNotFoundError(f"no CA in {certs_dir}: run `corral certs init --dir {certs_dir}`")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def make_ca(certs_dir: str | Path, name: str = "Corral fleet CA") -> Path:
    """Create the fleet CA in `certs_dir` unless one exists; return the CA certificate path."""
    certs_dir = Path(certs_dir)
    cert_path = certs_dir / "ca.crt"
    if cert_path.exists() and (certs_dir / "ca.key").exists():
        return cert_path
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(certs_dir / "ca.key", key)
    _write_cert(cert_path, cert)
    return cert_path


def _issue(
    certs_dir: Path,
    common_name: str,
    usage: x509.ObjectIdentifier | Sequence[x509.ObjectIdentifier],
    names: list[x509.GeneralName],
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Issue a certificate of certs_dir's CA for `common_name` with the extended key
    usage(s) `usage` (one or several) and the SANs `names`; return it and its key."""
    usages = [usage] if isinstance(usage, x509.ObjectIdentifier) else list(usage)
    ca_cert, ca_key = _load_ca(certs_dir)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def make_host_cert(
    certs_dir: str | Path, name: str, ips: list[str] | None = None, dns: list[str] | None = None
) -> Path:
    """Issue host `name`'s agent (server) certificate; return its directory hosts/NAME/.

    The names it answers to are `name`, `dns` and the `ips` (SANs); a host
    certificate carries serverAuth only, so it can never act as the controller.
    """
    certs_dir = Path(certs_dir)
    alt: list[x509.GeneralName] = [x509.DNSName(n) for n in [name, *(dns or [])]]
    alt += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips or []]
    cert, key = _issue(certs_dir, name, ExtendedKeyUsageOID.SERVER_AUTH, alt)
    out = certs_dir / "hosts" / name
    _write_key(out / "agent.key", key)
    _write_cert(out / "agent.crt", cert)
    shutil.copyfile(certs_dir / "ca.crt", out / "ca.crt")
    return out


def make_controller_cert(
    certs_dir: str | Path, name: str = CONTROLLER_IDENTITY, subdir: str = "controller"
) -> Path:
    """Issue a client certificate (by default the controller's); return its directory.

    Another `name` makes a fleet client certificate that agents still refuse.
    """
    certs_dir = Path(certs_dir)
    cert, key = _issue(certs_dir, name, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    out = certs_dir / subdir
    _write_key(out / "client.key", key)
    _write_cert(out / "client.crt", cert)
    shutil.copyfile(certs_dir / "ca.crt", out / "ca.crt")
    return out


def peer_identity(der: bytes | None) -> str | None:
    """Return the CN of a DER client certificate that carries clientAuth, else None."""
    if not der:
        return None
    cert = x509.load_der_x509_certificate(der)
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return None
    if ExtendedKeyUsageOID.CLIENT_AUTH not in usages:
        return None
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


class PeerIdentityH11Protocol(H11Protocol):
    """Uvicorn's h11 protocol that records the TLS peer's identity in the scope state."""

    def connection_made(self, transport: Any) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        # app_state is copied into every request's scope["state"]; a per-connection
        # copy keeps one client's identity out of other connections.
        self.app_state = {**self.app_state, PEER_IDENTITY_KEY: peer_identity(der)}


class RequireController:
    """ASGI middleware: 403 `unauthorized` unless the TLS peer is the controller."""

    def __init__(self, app: Any, identity: str = CONTROLLER_IDENTITY) -> None:
        self.app = app
        self.identity = identity

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        peer = scope.get("state", {}).get(PEER_IDENTITY_KEY)
        if peer == self.identity:
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            # Closing before accepting refuses the handshake: the client gets HTTP 403.
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        body = (
            b'{"type":"unauthorized","message":"client certificate is not the controller\'s '
            b"(needs CN=" + self.identity.encode() + b' with clientAuth)","retryable":false,'
            b'"libvirt_code":null,"field":null}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class ServeConfigError(ValueError):
    """The listen address or certificate options cannot be served safely."""


def parse_listen(listen: str) -> tuple[str, int]:
    """Return (host, port) of 'HOST:PORT' (IPv6 as '[::1]:PORT')."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ServeConfigError(f"expected HOST:PORT, got {listen!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def is_loopback(host: str) -> bool:
    """Return True for 'localhost' and loopback IP addresses."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _tls_options(certs: Path, cert_name: str, require_controller: bool) -> dict[str, Any]:
    """Return uvicorn's ssl_* options for a hosts/NAME certs directory.

    Raises ServeConfigError naming the first missing file. With `require_controller`
    the handshake also demands a client certificate from the fleet CA.
    """
    needed = ("ca.crt", "agent.crt", "agent.key") if require_controller else CERT_FILES
    for name in needed:
        if not (certs / name).exists():
            raise ServeConfigError(
                f"{certs / name} is missing (corral certs host {cert_name} --dir DIR)"
            )
    options: dict[str, Any] = {
        "ssl_certfile": str(certs / "agent.crt"),
        "ssl_keyfile": str(certs / "agent.key"),
    }
    if require_controller:
        options["ssl_ca_certs"] = str(certs / "ca.crt")
        options["ssl_cert_reqs"] = ssl.CERT_REQUIRED
    return options


def build_tls_server(
    app: Any,
    listen: str,
    certs_dir: str | Path | None,
    *,
    insecure_dev: bool,
    log_level: str,
    cert_name: str,
    require_controller: bool,
    graceful_shutdown_s: int,
) -> uvicorn.Server:
    """Return a uvicorn server for `app` on `listen`, HTTPS with the fleet certificate.

    `certs_dir` holds ca.crt, agent.crt and agent.key (`corral certs host cert_name`).
    With `require_controller` the server asks for a client certificate and only the
    controller's passes (`RequireController`). Without `certs_dir` it serves plain
    HTTP, which needs `insecure_dev` and a loopback address: neither tokens nor
    commands may cross a network in clear. Raises ServeConfigError otherwise.
    """
    host, port = parse_listen(listen)
    options: dict[str, Any] = {}
    if certs_dir is None:
        if not insecure_dev:
            raise ServeConfigError("--certs is required (or --insecure-dev on loopback)")
        if not is_loopback(host):
            raise ServeConfigError(f"--insecure-dev serves plain HTTP on loopback only, not {host}")
    else:
        options = _tls_options(Path(certs_dir), cert_name, require_controller)
        if require_controller:
            app = RequireController(app)
    if require_controller:
        options["http"] = PeerIdentityH11Protocol
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws="websockets-sansio",
        lifespan="off",
        log_level=log_level,
        timeout_graceful_shutdown=graceful_shutdown_s,
        **options,
    )
    logredact.install()  # after Config: it sets up uvicorn's loggers
    return uvicorn.Server(config)
