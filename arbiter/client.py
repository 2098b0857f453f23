"""A client of etcd's v3 JSON gateway (the grpc-gateway every etcd serves on its client URL).

Only what the HA arbiter needs: leases (grant, keepalive, revoke), keys (put, range,
delete) and a watch of a prefix. Every call has a bounded timeout, so a caller can
say when a request was sent and whether etcd acknowledged it, which the agent's
fencing timer is built on. Keys and values are bytes on the wire (base64 in JSON);
int64 fields arrive as strings. Several endpoints are tried in turn; the one that last
answered is tried first.

Errors: EtcdUnavailable when no endpoint could be reached (or none answered in time),
EtcdRequestError when etcd answered with an error (its gRPC code and message).
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import httpx

from arbiter.settings import EtcdSettingError, EtcdSettings

DEFAULT_TIMEOUT_S = 2.0
WATCH_IDLE_S = 3.0
"""A watch that delivers nothing for this long is closed; its caller resyncs (a linearizable
read, answered only by a quorum) and watches again, so a stream cut silently by a partition
costs at most this long."""

REQUIRE_LEADER = {"Grpc-Metadata-hasleader": "true"}
"""Asks the member to end the watch when it loses its leader (etcd's WithRequireLeader),
instead of leaving a minority member's stream open and silent."""

GRPC_NOT_FOUND = 5


class EtcdError(Exception):
    """An etcd call failed."""


class EtcdUnavailable(EtcdError):
    """No endpoint answered: unreachable, refused, timed out, or TLS refused."""

    def __init__(self, message: str, endpoints: tuple[str, ...]) -> None:
        super().__init__(message)
        self.endpoints = endpoints


class EtcdRequestError(EtcdError):
    """etcd answered with an error; `code` is its gRPC status code."""

    def __init__(self, message: str, code: int | None) -> None:
        super().__init__(message)
        self.code = code


def _b64(data: bytes | str) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


def _unb64(text: str | None) -> bytes:
    return base64.b64decode(text) if text else b""


def prefix_end(prefix: bytes) -> bytes:
    """Return the range end that selects every key starting with `prefix` (etcd's rule)."""
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\0"


@dataclass(frozen=True)
class KeyValue:
    """One key as etcd holds it; `lease` is 0 when no lease is attached."""

    key: str
    value: bytes
    lease: int
    mod_revision: int


@dataclass(frozen=True)
class WatchEvent:
    """A change of a watched key: `kind` is PUT or DELETE; `value` is empty on DELETE."""

    kind: str
    key: str
    value: bytes
    lease: int
    revision: int


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=_unb64(raw.get("key")).decode(),
        value=_unb64(raw.get("value")),
        lease=int(raw.get("lease", 0)),
        mod_revision=int(raw.get("mod_revision", 0)),
    )


def _ssl_context(settings: EtcdSettings) -> ssl.SSLContext | bool:
    if not settings.tls:
        return True
    context = ssl.create_default_context(cafile=str(settings.ca_file))
    context.load_cert_chain(str(settings.cert_file), str(settings.key_file))
    return context


class EtcdClient:
    """Calls etcd through its JSON gateway; thread-safe (one httpx client, one lock-free
    preferred-endpoint index)."""

    def __init__(self, settings: EtcdSettings, *, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        self._http = httpx.Client(verify=_ssl_context(settings), timeout=timeout_s)
        self._preferred = 0
        self._lock = threading.Lock()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> EtcdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _order(self) -> list[str]:
        endpoints = list(self.settings.endpoints)
        first = self._preferred % len(endpoints)
        return endpoints[first:] + endpoints[:first]

    def call(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> dict:
        """POST `body` to /v3/`path` on the first endpoint that answers; return its JSON."""
        errors: list[str] = []
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        for endpoint in self._order():
            try:
                response = self._http.post(f"{endpoint}/v3/{path}", json=body, timeout=timeout)
            except (httpx.TransportError, ssl.SSLError) as exc:
                errors.append(f"{endpoint}: {type(exc).__name__}: {exc}")
                continue
            with self._lock:
                self._preferred = self.settings.endpoints.index(endpoint)
            doc = response.json() if response.content else {}
            if response.status_code != 200 or "error" in doc or "code" in doc:
                message = doc.get("message") or doc.get("error") or response.text
                raise EtcdRequestError(f"etcd {path}: {message}", doc.get("code"))
            return doc
        raise EtcdUnavailable(
            f"etcd unreachable at {', '.join(self.settings.endpoints)}: {'; '.join(errors)}",
            self.settings.endpoints,
        )

    # leases

    def grant(self, ttl_s: int, timeout_s: float | None = None) -> tuple[int, int]:
        """Grant a lease of `ttl_s` seconds; return (lease id, granted TTL)."""
        doc = self.call("lease/grant", {"TTL": ttl_s}, timeout_s)
        return int(doc["ID"]), int(doc["TTL"])

    def keepalive(self, lease: int, timeout_s: float | None = None) -> int:
        """Renew `lease` once; return its TTL from now (0 when etcd no longer has it)."""
        doc = self.call("lease/keepalive", {"ID": lease}, timeout_s)
        result = doc.get("result", doc)
        return int(result.get("TTL", 0))

    def revoke(self, lease: int) -> None:
        """Revoke `lease` (deleting its keys); a lease already gone is no error."""
        try:
            self.call("lease/revoke", {"ID": lease})
        except EtcdRequestError as exc:
            if exc.code != GRPC_NOT_FOUND:
                raise

    # keys

    def put(self, key: str, value: bytes | str, lease: int = 0) -> int:
        """Set `key` (bound to `lease` when nonzero); return the store revision after it."""
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = lease
        doc = self.call("kv/put", body)
        return int(doc["header"]["revision"])

    def get(self, key: str) -> KeyValue | None:
        """Return `key`, or None when absent (a linearizable read)."""
        doc = self.call("kv/range", {"key": _b64(key)})
        kvs = doc.get("kvs") or []
        return _kv(kvs[0]) if kvs else None

    def get_prefix(self, prefix: str) -> tuple[int, list[KeyValue]]:
        """Return (revision, every key under `prefix`), read at one revision."""
        raw = prefix.encode()
        doc = self.call("kv/range", {"key": _b64(raw), "range_end": _b64(prefix_end(raw))})
        return int(doc["header"]["revision"]), [_kv(kv) for kv in doc.get("kvs") or []]

    def delete(self, key: str) -> int:
        """Delete `key`; return how many keys were deleted (0 or 1)."""
        doc = self.call("kv/deleterange", {"key": _b64(key)})
        return int(doc.get("deleted", 0))

    def status(self, endpoint: str) -> dict[str, Any]:
        """Return the maintenance status of one member (its id in header.member_id, leader)."""
        response = self._http.post(f"{endpoint}/v3/maintenance/status", json={})
        response.raise_for_status()
        return response.json()

    def health(self, endpoint: str) -> bool:
        """Return whether one member answers GET /health with true: it has a leader and a
        quorum read succeeded. False when it is unhealthy or cannot be reached."""
        try:
            response = self._http.get(f"{endpoint}/health")
            return response.status_code == 200 and response.json().get("health") == "true"
        except (httpx.HTTPError, ssl.SSLError, ValueError):
            return False

    # watch

    def watch_prefix(
        self, prefix: str, start_revision: int, idle_s: float = WATCH_IDLE_S
    ) -> Iterator[WatchEvent]:
        """Yield the changes under `prefix` from `start_revision` on, in revision order.

        Ends with EtcdUnavailable when the stream breaks or stays idle for `idle_s`
        (then resync with get_prefix and watch again from its revision + 1), and with
        EtcdRequestError when etcd cancels the watch (a compacted revision, say).
        """
        raw = prefix.encode()
        request = {
            "create_request": {
                "key": _b64(raw),
                "range_end": _b64(prefix_end(raw)),
                "start_revision": start_revision,
                "progress_notify": True,
            }
        }
        endpoint = self._order()[0]
        timeout = httpx.Timeout(self.timeout_s, read=idle_s)
        try:
            with self._http.stream(
                "POST",
                f"{endpoint}/v3/watch",
                json=request,
                timeout=timeout,
                headers=REQUIRE_LEADER,
            ) as response:
                if response.status_code != 200:
                    raise EtcdRequestError(
                        f"etcd watch: HTTP {response.status_code}", response.status_code
                    )
                for line in response.iter_lines():
                    if not line.strip():
                        continue
                    doc = json.loads(line)
                    if "error" in doc:
                        error = doc["error"]
                        raise EtcdRequestError(
                            f"etcd watch: {error.get('message')}", error.get("grpc_code")
                        )
                    result = doc.get("result", {})
                    if result.get("canceled"):
                        reason = result.get("cancel_reason") or "canceled"
                        raise EtcdRequestError(f"etcd watch canceled: {reason}", None)
                    for event in result.get("events") or []:
                        kv = event.get("kv", {})
                        yield WatchEvent(
                            kind=event.get("type", "PUT"),
                            key=_unb64(kv.get("key")).decode(),
                            value=_unb64(kv.get("value")),
                            lease=int(kv.get("lease", 0)),
                            revision=int(kv.get("mod_revision", 0)),
                        )
        except (httpx.TransportError, ssl.SSLError) as exc:
            with self._lock:
                self._preferred += 1
            raise EtcdUnavailable(
                f"etcd watch at {endpoint} broke: {type(exc).__name__}: {exc}",
                self.settings.endpoints,
            ) from exc
        with self._lock:
            self._preferred += 1
        raise EtcdUnavailable(f"etcd watch at {endpoint} ended", self.settings.endpoints)


def probe(settings: EtcdSettings, timeout_s: float = 3.0) -> None:
    """Return when some endpoint answers a read; else EtcdSettingError naming the setting.

    A refused TLS handshake names the certificate settings, anything else the endpoints.
    """
    errors: list[str] = []
    tls_refused = False
    for endpoint in settings.endpoints:
        single = replace(settings, endpoints=(endpoint,))
        try:
            with EtcdClient(single, timeout_s=timeout_s) as client:
                client.get_prefix(settings.prefix + "probe/")
            return
        except EtcdUnavailable as exc:
            errors.append(str(exc))
            tls_refused = tls_refused or "SSL" in str(exc) or "certificate" in str(exc).lower()
        except EtcdRequestError as exc:
            errors.append(f"{endpoint}: {exc}")
        except (ssl.SSLError, OSError) as exc:
            errors.append(f"{endpoint}: {exc}")
            tls_refused = True
    if tls_refused:
        setting = ", ".join(settings.name_of(k) for k in ("ca_file", "cert_file", "key_file"))
        raise EtcdSettingError(setting, f"etcd refused the TLS handshake: {'; '.join(errors)}")
    raise EtcdSettingError(settings.name_of("endpoints"), "; ".join(errors))
