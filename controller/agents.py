"""Client for the node-agent API: one method per verb, typed Corral exceptions.

Every transport failure (refused, timed out, TLS) becomes AgentUnavailable; every
AgentError body becomes the exception of its `type`. Code above this module
catches these classes only, never httpx's or libvirt's.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from agentapi import (
    AgentError,
    AgentEvent,
    ApplyResult,
    BalloonRequest,
    BatchRequest,
    BatchResult,
    DomainSpec,
    DomainState,
    GraphicsTicket,
    GraphicsTicketRequest,
    Health,
    HostState,
    HostStats,
    LeaseState,
    MigrateRequest,
    MigrationJob,
    NetworkSpec,
    NetworkState,
    PoolSpec,
    PoolState,
    SnapshotSpec,
    SnapshotState,
    VerbResult,
    VolumeApplyResult,
    VolumeSpec,
    VolumeState,
)
from controller import agentverbs
from controller.agentverbs import A, Verb, agent_path

M = TypeVar("M", bound=BaseModel)


class AgentClientError(Exception):
    """A node-agent call failed."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        vm: str | None = None,
        error: AgentError | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(f"{host}: {message}" if host else message)
        self.host = host
        self.vm = vm
        self.error = error
        self.status = status
        if error is not None:
            self.retryable = error.retryable


class AgentNotFound(AgentClientError):
    """The object the verb names does not exist on the host."""


class AgentConflict(AgentClientError):
    """The object's current state forbids the verb (running, lease expired, other uuid)."""


class AgentUnavailable(AgentClientError):
    """The agent or its libvirt cannot be reached now (connection error, timeout, 503)."""

    retryable = True


class AgentUnauthorized(AgentClientError):
    """The agent refused this client's certificate."""


class AgentLibvirtError(AgentClientError):
    """Libvirt refused the operation; `libvirt_code` is libvirt's error code."""

    @property
    def libvirt_code(self) -> int | None:
        """Return libvirt's error code."""
        return self.error.libvirt_code if self.error else None


class HookFailed(AgentClientError):
    """A host hook script vetoed or failed the verb."""


class InvalidSpec(AgentClientError):
    """The agent rejected the request body; `field` names the bad field."""

    @property
    def field(self) -> str | None:
        """Return the dotted path of the bad field."""
        return self.error.field if self.error else None


_BY_TYPE: dict[str, type[AgentClientError]] = {
    "not_found": AgentNotFound,
    "conflict": AgentConflict,
    "unavailable": AgentUnavailable,
    "unauthorized": AgentUnauthorized,
    "libvirt_error": AgentLibvirtError,
    "hook_failed": HookFailed,
    "invalid_spec": InvalidSpec,
}


def error_from_response(response: httpx.Response, host: str | None, vm: str | None) -> Exception:
    """Return the typed exception for a failed agent response."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    return error_from_body(response.status_code, body, host, vm)


def error_from_body(status: int, body: Any, host: str | None, vm: str | None) -> AgentClientError:
    """Return the typed exception for a failed call's status and decoded JSON body."""
    try:
        error = AgentError.model_validate(body)
    except ValidationError:
        kind = AgentUnavailable if status >= 500 else AgentClientError
        text = body if isinstance(body, str) else json.dumps(body)
        return kind(f"HTTP {status}: {text[:200]}", host=host, vm=vm, status=status)
    return _BY_TYPE[error.type](error.message, host=host, vm=vm, error=error, status=status)


def client_ssl_context(cert_dir: str | Path) -> ssl.SSLContext:
    """Return a TLS context trusting the fleet CA and presenting the controller cert.

    `cert_dir` is the `corral certs controller` output: ca.crt, client.crt, client.key.
    """
    cert_dir = Path(cert_dir)
    context = ssl.create_default_context(cafile=str(cert_dir / "ca.crt"))
    context.load_cert_chain(str(cert_dir / "client.crt"), str(cert_dir / "client.key"))
    return context


BATCH_RETRY_S = 300.0
"""How long an agent that answered a batch with 404 gets its verbs one by one."""

EPOCH_HEADER = "X-Corral-Epoch"
"""The controller term (fencing token) a mutating call is made under; see nodeagent.server."""


class AgentClient:
    """Synchronous client of one node agent (seconds for all timeouts).

    `cert_dir` enables mutual TLS; `transport` replaces the network (tests use
    httpx.ASGITransport over the real agent app).
    """

    def __init__(
        self,
        base_url: str,
        *,
        host: str | None = None,
        cert_dir: str | Path | None = None,
        connect_timeout_s: float = 3.0,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        epoch: Callable[[], int | None] | None = None,
    ) -> None:
        self.host = host or httpx.URL(base_url).host
        self.epoch = epoch
        self.base_url = base_url.rstrip("/")
        self.cert_dir = cert_dir
        self.timeout_s = timeout_s
        verify: ssl.SSLContext | bool = client_ssl_context(cert_dir) if cert_dir else True
        if base_url.startswith("http://"):
            verify = False  # no TLS at all; skips loading the system CA bundle
        self._single_until = 0.0
        self._http = httpx.Client(
            base_url=base_url.rstrip("/") + "/v1/",
            verify=verify,
            timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        vm: str | None = None,
        body: BaseModel | None = None,
        timeout_s: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        if body is not None:
            kwargs["content"] = body.model_dump_json()
            kwargs["headers"] = {"content-type": "application/json"}
        if timeout_s is not None:
            connect = self._http.timeout.connect
            kwargs["timeout"] = httpx.Timeout(
                timeout_s, connect=timeout_s if connect is None else min(connect, timeout_s)
            )
        term = self.epoch() if self.epoch is not None and method != "GET" else None
        if term is not None:
            kwargs["headers"] = {**kwargs.get("headers", {}), EPOCH_HEADER: str(term)}
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AgentUnavailable(
                f"{method} {path}: {type(exc).__name__}: {exc}", host=self.host, vm=vm
            ) from exc
        if response.is_error:
            raise error_from_response(response, self.host, vm)
        return response

    def perform(self, verb: Verb[A]) -> A:
        """Make the one call `verb` describes; return its answer (the verb's answer model)."""
        return self._call(
            verb.answer,
            verb.method,
            verb.path,
            vm=verb.vm,
            body=verb.body,
            params=verb.params or None,
            timeout_s=verb.wait_s + self.timeout_s if verb.wait_s else None,
        )

    @property
    def batches(self) -> bool:
        """Whether verbs for this agent now go in batches (False for a while after the agent
        answered a batch with 404)."""
        return time.monotonic() >= self._single_until

    def batch(self, verbs: Sequence[Verb[Any]]) -> list[BaseModel | AgentClientError]:
        """Make every verb in one request (the agent runs them concurrently); return each
        verb's answer or typed error, in order. A failure of the request itself (transport,
        stale term) raises; an agent without batches gets the verbs one by one."""
        if len(verbs) == 1 or not self.batches:
            return [self._performed(verb) for verb in verbs]
        request = BatchRequest.model_construct(calls=[verb.batch_call() for verb in verbs])
        timeout = max(verb.wait_s for verb in verbs)
        try:
            result = self._call(
                BatchResult,
                "POST",
                "batch",
                body=request,
                timeout_s=timeout + self.timeout_s if timeout else None,
            )
        except AgentNotFound:
            # An agent older than batches: one call per verb, asking again later (it may
            # be upgraded under a running controller).
            self._single_until = time.monotonic() + BATCH_RETRY_S
            return [self._performed(verb) for verb in verbs]
        if len(result.answers) != len(verbs):
            raise AgentUnavailable(
                f"batch of {len(verbs)} verbs answered {len(result.answers)}", host=self.host
            )
        return [
            verb.answer.model_validate(answer.body)
            if answer.status < 400
            else error_from_body(answer.status, answer.body, self.host, verb.vm)
            for verb, answer in zip(verbs, result.answers, strict=True)
        ]

    def _performed(self, verb: Verb[Any]) -> BaseModel | AgentClientError:
        try:
            return self.perform(verb)
        except AgentClientError as exc:
            return exc

    def _call(self, model: type[M], method: str, path: str, **kwargs: Any) -> M:
        return model.model_validate_json(self._request(method, path, **kwargs).content)

    def _list(self, model: type[M], path: str) -> list[M]:
        return [model.model_validate(item) for item in self._request("GET", path).json()]

    # --- reads ---------------------------------------------------------------------------

    def health(self) -> Health:
        """Return the agent's health."""
        return self._call(Health, "GET", "health")

    def get_state(self, omit_volumes: Iterable[str] = ()) -> HostState:
        """Return the host's full observed state, without the volumes of `omit_volumes` pools
        (shared pools that another host reports)."""
        omitted = sorted(omit_volumes)
        params = {"omit_volumes": omitted} if omitted else None
        return self._call(HostState, "GET", "state", params=params)

    def get_stats(self) -> HostStats:
        """Return host and per-domain statistics."""
        return self._call(HostStats, "GET", "stats")

    def events(self, since: int | None = None, wait_s: float | None = None) -> Iterator[AgentEvent]:
        """Yield events from the agent's SSE stream (kind `resync`: re-read the state).

        With `wait_s` the stream ends after that many seconds; without, it runs
        until the caller stops iterating or the connection drops (AgentUnavailable).
        """
        params: dict[str, Any] = {}
        if since is not None:
            params["since"] = since
        if wait_s is not None:
            params["wait_s"] = wait_s
        timeout = httpx.Timeout(None, connect=self._http.timeout.connect)
        try:
            with self._http.stream("GET", "events", params=params, timeout=timeout) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response, self.host, None)
                yield from parse_sse(response.iter_lines())
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"event stream: {exc}", host=self.host) from exc

    # --- domains -------------------------------------------------------------------------

    def get_domain(self, name: str) -> DomainState:
        """Return one domain's observed state."""
        return self._call(DomainState, "GET", agent_path("domains", name), vm=name)

    def ensure_domain_defined(self, spec: DomainSpec) -> ApplyResult:
        """Define or update the domain as `spec`."""
        return self.perform(agentverbs.define_domain(spec))

    def ensure_running(self, name: str) -> VerbResult:
        """Start (or resume) the domain."""
        return self.perform(agentverbs.ensure_running(name))

    def ensure_stopped(self, name: str, timeout_s: float = 60.0) -> VerbResult:
        """Shut the domain down gracefully, destroying it after `timeout_s`."""
        return self.perform(agentverbs.ensure_stopped(name, timeout_s))

    def ensure_destroyed(self, name: str) -> VerbResult:
        """Power the domain off."""
        return self.perform(agentverbs.ensure_destroyed(name))

    def ensure_undefined(self, name: str, force: bool = False) -> VerbResult:
        """Remove the domain (force: destroy it first if it runs)."""
        return self.perform(agentverbs.undefine_domain(name, force))

    def set_balloon(self, name: str, target_mib: int) -> VerbResult:
        """Set the running domain's balloon target (MiB; live only)."""
        body = BalloonRequest(target_mib=target_mib)
        return self._call(
            VerbResult, "PUT", agent_path("domains", name, "balloon"), vm=name, body=body
        )

    # --- snapshots -----------------------------------------------------------------------

    def list_snapshots(self, name: str) -> list[SnapshotState]:
        """Return the domain's snapshots."""
        return self._list(SnapshotState, agent_path("domains", name, "snapshots"))

    def get_snapshot(self, name: str, snap: str) -> SnapshotState:
        """Return one snapshot."""
        return self._call(
            SnapshotState, "GET", agent_path("domains", name, "snapshots", snap), vm=name
        )

    def ensure_snapshot(self, name: str, snap: str, spec: SnapshotSpec | None = None) -> VerbResult:
        """Make the snapshot exist."""
        return self.perform(agentverbs.ensure_snapshot(name, snap, spec))

    def revert_snapshot(self, name: str, snap: str) -> VerbResult:
        """Revert the domain to the snapshot."""
        path = agent_path("domains", name, "snapshots", snap, "revert")
        return self._call(VerbResult, "POST", path, vm=name)

    def ensure_snapshot_deleted(self, name: str, snap: str) -> VerbResult:
        """Make the snapshot absent."""
        return self.perform(agentverbs.delete_snapshot(name, snap))

    # --- migration -----------------------------------------------------------------------

    def migrate(self, name: str, request: MigrateRequest) -> MigrationJob:
        """Start a live migration job; returns at once."""
        return self.perform(agentverbs.migrate(name, request))

    def get_migration(self, name: str) -> MigrationJob:
        """Return the domain's last migration job."""
        return self._call(MigrationJob, "GET", agent_path("domains", name, "migration"), vm=name)

    def cancel_migration(self, name: str) -> VerbResult:
        """Abort the running migration."""
        return self.perform(agentverbs.cancel_migration(name))

    # --- networks ------------------------------------------------------------------------

    def list_networks(self) -> list[NetworkState]:
        """Return every network."""
        return self._list(NetworkState, "networks")

    def get_network(self, name: str) -> NetworkState:
        """Return one network."""
        return self._call(NetworkState, "GET", agent_path("networks", name))

    def ensure_network_defined(self, spec: NetworkSpec) -> ApplyResult:
        """Define or update the network."""
        return self.perform(agentverbs.define_network(spec))

    def ensure_network_active(self, name: str) -> VerbResult:
        """Start the network."""
        return self.perform(agentverbs.ensure_network_active(name))

    def ensure_network_inactive(self, name: str) -> VerbResult:
        """Stop the network."""
        return self.perform(agentverbs.ensure_network_inactive(name))

    def ensure_network_undefined(self, name: str) -> VerbResult:
        """Remove the network."""
        return self.perform(agentverbs.undefine_network(name))

    # --- storage -------------------------------------------------------------------------

    def list_pools(self) -> list[PoolState]:
        """Return every storage pool with its volumes."""
        return self._list(PoolState, "pools")

    def get_pool(self, name: str) -> PoolState:
        """Return one storage pool."""
        return self._call(PoolState, "GET", agent_path("pools", name))

    def ensure_pool(self, spec: PoolSpec) -> ApplyResult:
        """Define, build and start the pool."""
        return self.perform(agentverbs.define_pool(spec))

    def ensure_pool_undefined(self, name: str) -> VerbResult:
        """Stop and remove the pool (data stays)."""
        return self.perform(agentverbs.undefine_pool(name))

    def get_volume(self, pool: str, name: str) -> VolumeState:
        """Return one volume."""
        return self._call(VolumeState, "GET", agent_path("pools", pool, "volumes", name))

    def ensure_volume(self, pool: str, spec: VolumeSpec) -> VolumeApplyResult:
        """Create, thin-clone or grow the volume."""
        return self.perform(agentverbs.ensure_volume(pool, spec))

    def ensure_volume_deleted(self, pool: str, name: str) -> VerbResult:
        """Delete the volume."""
        return self.perform(agentverbs.delete_volume(pool, name))

    def upload_volume(self, pool: str, name: str, data: bytes | Iterable[bytes]) -> VerbResult:
        """Replace the volume's content with `data` (bytes or an iterable of chunks)."""
        path = agent_path("pools", pool, "volumes", name, "content")
        return self._call(
            VerbResult,
            "PUT",
            path,
            content=data,
            headers={"content-type": "application/octet-stream"},
            timeout_s=None,
        )

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        """Yield the volume's content in chunks."""
        path = agent_path("pools", pool, "volumes", name, "content")
        try:
            with self._http.stream("GET", path) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response, self.host, None)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"download {pool}/{name}: {exc}", host=self.host) from exc

    # --- consoles ------------------------------------------------------------------------

    def issue_graphics_ticket(
        self, name: str, kind: str = "vnc", ttl_s: float = 30.0
    ) -> GraphicsTicket:
        """Return a new one-time ticket for the domain's display (each call issues another)."""
        body = GraphicsTicketRequest(kind=kind, ttl_s=ttl_s)  # type: ignore[arg-type]
        path = agent_path("domains", name, "graphics-tickets")
        return self._call(GraphicsTicket, "POST", path, vm=name, body=body)

    # --- lease ---------------------------------------------------------------------------

    def get_lease(self) -> LeaseState:
        """Return the host's fencing lease in etcd, as its agent keeps it."""
        return self._call(LeaseState, "GET", "lease")


def parse_sse(lines: Iterable[str]) -> Iterator[AgentEvent]:
    """Yield AgentEvents from server-sent-event lines; a `resync` frame becomes kind resync."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if "data" in fields:
                yield _event_from_frame(fields)
            fields = {}
            continue
        if line.startswith(":"):
            continue
        key, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        fields[key] = fields[key] + "\n" + value if key in fields else value
    if "data" in fields:
        yield _event_from_frame(fields)


def _event_from_frame(fields: dict[str, str]) -> AgentEvent:
    data = json.loads(fields["data"])
    if fields.get("event") == "resync":
        return AgentEvent(
            seq=int(fields.get("id", data.get("last_seq", 0))),
            at=0.0,
            kind="resync",
            object="host",
            name="",
            event="resync",
            detail=str(data.get("reason", "")),
            data=data,
        )
    return AgentEvent.model_validate(data)
