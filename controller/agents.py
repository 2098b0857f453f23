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
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ValidationError

from agentapi import (
    API_PREFIX,
    VERBS,
    AgentError,
    AgentEvent,
    ApplyResult,
    BalloonRequest,
    BatchRequest,
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
    StopRequest,
    VerbResult,
    VolumeApplyResult,
    VolumeSpec,
    VolumeState,
)
from controller.agentverbs import Call, call

if TYPE_CHECKING:
    from websockets.asyncio.client import ClientConnection


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


class ConsoleUnavailable(Exception):
    """The agent's console websocket could not be opened (refused, unreachable, TLS)."""

    def __init__(self, message: str, *, host: str | None = None, vm: str | None = None) -> None:
        super().__init__(message)
        self.host = host
        self.vm = vm


def websocket_url(base_url: str, path: str, params: dict[str, str] | None = None) -> str:
    """Return the ws:// or wss:// URL of `path` under an http(s) base URL."""
    if base_url.startswith("https://"):
        url = "wss://" + base_url[len("https://") :]
    elif base_url.startswith("http://"):
        url = "ws://" + base_url[len("http://") :]
    else:
        raise ValueError(f"base URL must be http:// or https://, got {base_url!r}")
    query = f"?{urlencode(params)}" if params else ""
    return url.rstrip("/") + "/" + path.lstrip("/") + query


WEBSOCKET_OPEN_TIMEOUT_S = 10.0


class AgentClient:
    """Synchronous client of one node agent (seconds for all timeouts): one method per verb
    of the contract (agentapi.verbs), each making its call through `perform`.

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
            base_url=self.base_url + API_PREFIX,
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

    def _send(self, c: Call, **kwargs: Any) -> httpx.Response:
        return self._request(
            c.verb.method,
            c.path,
            vm=c.vm,
            body=c.body,
            params=c.query or None,
            timeout_s=c.wait_s + self.timeout_s if c.wait_s else None,
            **kwargs,
        )

    def perform(self, c: Call) -> Any:
        """Make the one call `c` describes; return its answer (its verb's answer model)."""
        return c.answer(self._send(c).content)

    @property
    def batches(self) -> bool:
        """Whether calls to this agent now go in batches (False for a while after the agent
        answered a batch with 404)."""
        return time.monotonic() >= self._single_until

    def batch(self, calls: Sequence[Call]) -> list[BaseModel | AgentClientError]:
        """Make every call in one request (the agent runs them concurrently); return each
        call's answer or typed error, in order. A failure of the request itself (transport,
        stale term) raises; an agent without batches gets the calls one by one."""
        if len(calls) == 1 or not self.batches:
            return [self._performed(c) for c in calls]
        request = BatchRequest.model_construct(calls=[c.batch_call() for c in calls])
        wait_s = max(c.wait_s for c in calls)
        try:
            result = self.perform(call(VERBS.batch, request, wait_s=wait_s))
        except AgentNotFound:
            # An agent older than batches: one call per verb, asking again later (it may
            # be upgraded under a running controller).
            self._single_until = time.monotonic() + BATCH_RETRY_S
            return [self._performed(c) for c in calls]
        if len(result.answers) != len(calls):
            raise AgentUnavailable(
                f"batch of {len(calls)} verbs answered {len(result.answers)}", host=self.host
            )
        return [
            c.answer_from(answer.body)
            if answer.status < 400
            else error_from_body(answer.status, answer.body, self.host, c.vm)
            for c, answer in zip(calls, result.answers, strict=True)
        ]

    def _performed(self, c: Call) -> BaseModel | AgentClientError:
        try:
            return self.perform(c)
        except AgentClientError as exc:
            return exc

    def _stream(self, c: Call, what: str) -> Iterator[httpx.Response]:
        """Yield the open response of a streamed answer, typed errors raised before."""
        timeout = httpx.Timeout(None, connect=self._http.timeout.connect)
        try:
            with self._http.stream(
                c.verb.method, c.path, params=c.query or None, timeout=timeout
            ) as response:
                if response.is_error:
                    response.read()
                    raise error_from_response(response, self.host, c.vm)
                yield response
        except httpx.TransportError as exc:
            raise AgentUnavailable(f"{what}: {exc}", host=self.host) from exc

    def websocket_address(self, c: Call) -> str:
        """Return the ws:// or wss:// URL of the websocket call `c`, with its query."""
        return websocket_url(self.base_url, API_PREFIX + c.path, dict(c.query) or None)

    async def _open_websocket(
        self, c: Call, subprotocols: list[str] | None = None
    ) -> ClientConnection:
        # Imported here: only processes that open consoles load the websocket library.
        import websockets
        from websockets.asyncio.client import connect

        kwargs: dict[str, Any] = {"open_timeout": WEBSOCKET_OPEN_TIMEOUT_S, "max_size": 2**22}
        if self.base_url.startswith("https://") and self.cert_dir is not None:
            kwargs["ssl"] = client_ssl_context(self.cert_dir)
        if subprotocols:
            kwargs["subprotocols"] = subprotocols
        url = self.websocket_address(c)
        try:
            return await connect(url, **kwargs)
        except websockets.InvalidStatus as exc:
            raise ConsoleUnavailable(
                f"agent refused {API_PREFIX}{c.path}: HTTP {exc.response.status_code}",
                host=self.host,
                vm=c.vm,
            ) from exc
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            raise ConsoleUnavailable(f"cannot reach {url}: {exc}", host=self.host) from exc

    # --- the host ------------------------------------------------------------------------

    def health(self) -> Health:
        """Return the agent's health."""
        return self.perform(call(VERBS.health))

    def get_state(self, omit_volumes: Iterable[str] = ()) -> HostState:
        """Return the host's full observed state, without the volumes of `omit_volumes` pools
        (shared pools that another host reports)."""
        omitted = sorted(omit_volumes)
        return self.perform(
            call(VERBS.get_state, query={"omit_volumes": omitted} if omitted else None)
        )

    def get_stats(self) -> HostStats:
        """Return host and per-domain statistics."""
        return self.perform(call(VERBS.get_stats))

    def events(self, since: int | None = None, wait_s: float | None = None) -> Iterator[AgentEvent]:
        """Yield events from the agent's SSE stream (kind `resync`: re-read the state).

        With `wait_s` the stream ends after that many seconds; without, it runs
        until the caller stops iterating or the connection drops (AgentUnavailable).
        """
        query: dict[str, Any] = {}
        if since is not None:
            query["since"] = since
        if wait_s is not None:
            query["wait_s"] = wait_s
        for response in self._stream(call(VERBS.events, query=query), "event stream"):
            yield from parse_sse(response.iter_lines())

    def get_lease(self) -> LeaseState:
        """Return the host's fencing lease in etcd, as its agent keeps it."""
        return self.perform(call(VERBS.get_lease))

    # --- domains -------------------------------------------------------------------------

    def get_domain(self, name: str) -> DomainState:
        """Return one domain's observed state."""
        return self.perform(call(VERBS.get_domain, name=name))

    def ensure_domain_defined(self, spec: DomainSpec) -> ApplyResult:
        """Define or update the domain as `spec`."""
        return self.perform(call(VERBS.ensure_domain_defined, spec, name=spec.name))

    def ensure_running(self, name: str) -> VerbResult:
        """Start (or resume) the domain."""
        return self.perform(call(VERBS.ensure_running, name=name))

    def ensure_stopped(self, name: str, timeout_s: float = 60.0) -> VerbResult:
        """Shut the domain down gracefully, destroying it after `timeout_s`."""
        body = StopRequest(timeout_s=timeout_s)
        return self.perform(call(VERBS.ensure_stopped, body, name=name, wait_s=timeout_s))

    def ensure_destroyed(self, name: str) -> VerbResult:
        """Power the domain off."""
        return self.perform(call(VERBS.ensure_destroyed, name=name))

    def ensure_undefined(self, name: str, force: bool = False) -> VerbResult:
        """Remove the domain (force: destroy it first if it runs)."""
        query = {"force": "true"} if force else None
        return self.perform(call(VERBS.ensure_undefined, name=name, query=query))

    def set_balloon(self, name: str, target_mib: int) -> VerbResult:
        """Set the running domain's balloon target (MiB; live only)."""
        body = BalloonRequest(target_mib=target_mib)
        return self.perform(call(VERBS.set_balloon, body, name=name))

    # --- snapshots -----------------------------------------------------------------------

    def list_snapshots(self, name: str) -> list[SnapshotState]:
        """Return the domain's snapshots."""
        return self.perform(call(VERBS.list_snapshots, name=name))

    def get_snapshot(self, name: str, snap: str) -> SnapshotState:
        """Return one snapshot."""
        return self.perform(call(VERBS.get_snapshot, name=name, snap=snap))

    def ensure_snapshot(self, name: str, snap: str, spec: SnapshotSpec | None = None) -> VerbResult:
        """Make the snapshot exist."""
        body = spec or SnapshotSpec()
        return self.perform(call(VERBS.ensure_snapshot, body, name=name, snap=snap))

    def revert_snapshot(self, name: str, snap: str) -> VerbResult:
        """Revert the domain to the snapshot."""
        return self.perform(call(VERBS.revert_snapshot, name=name, snap=snap))

    def ensure_snapshot_deleted(self, name: str, snap: str) -> VerbResult:
        """Make the snapshot absent."""
        return self.perform(call(VERBS.ensure_snapshot_deleted, name=name, snap=snap))

    # --- migration -----------------------------------------------------------------------

    def migrate(self, name: str, request: MigrateRequest) -> MigrationJob:
        """Start a live migration job; returns at once."""
        return self.perform(call(VERBS.migrate, request, name=name))

    def get_migration(self, name: str) -> MigrationJob:
        """Return the domain's last migration job."""
        return self.perform(call(VERBS.get_migration, name=name))

    def cancel_migration(self, name: str) -> VerbResult:
        """Abort the running migration."""
        return self.perform(call(VERBS.cancel_migration, name=name))

    # --- networks ------------------------------------------------------------------------

    def list_networks(self) -> list[NetworkState]:
        """Return every network."""
        return self.perform(call(VERBS.list_networks))

    def get_network(self, name: str) -> NetworkState:
        """Return one network."""
        return self.perform(call(VERBS.get_network, name=name))

    def ensure_network_defined(self, spec: NetworkSpec) -> ApplyResult:
        """Define or update the network."""
        return self.perform(call(VERBS.ensure_network_defined, spec, name=spec.name))

    def ensure_network_active(self, name: str) -> VerbResult:
        """Start the network."""
        return self.perform(call(VERBS.ensure_network_active, name=name))

    def ensure_network_inactive(self, name: str) -> VerbResult:
        """Stop the network."""
        return self.perform(call(VERBS.ensure_network_inactive, name=name))

    def ensure_network_undefined(self, name: str) -> VerbResult:
        """Remove the network."""
        return self.perform(call(VERBS.ensure_network_undefined, name=name))

    # --- storage -------------------------------------------------------------------------

    def list_pools(self) -> list[PoolState]:
        """Return every storage pool with its volumes."""
        return self.perform(call(VERBS.list_pools))

    def get_pool(self, name: str) -> PoolState:
        """Return one storage pool."""
        return self.perform(call(VERBS.get_pool, name=name))

    def ensure_pool(self, spec: PoolSpec) -> ApplyResult:
        """Define, build and start the pool."""
        return self.perform(call(VERBS.ensure_pool, spec, name=spec.name))

    def ensure_pool_undefined(self, name: str) -> VerbResult:
        """Stop and remove the pool (data stays)."""
        return self.perform(call(VERBS.ensure_pool_undefined, name=name))

    def get_volume(self, pool: str, name: str) -> VolumeState:
        """Return one volume."""
        return self.perform(call(VERBS.get_volume, pool=pool, vol=name))

    def ensure_volume(self, pool: str, spec: VolumeSpec) -> VolumeApplyResult:
        """Create, thin-clone or grow the volume."""
        return self.perform(call(VERBS.ensure_volume, spec, pool=pool, vol=spec.name))

    def ensure_volume_deleted(self, pool: str, name: str) -> VerbResult:
        """Delete the volume."""
        return self.perform(call(VERBS.ensure_volume_deleted, pool=pool, vol=name))

    def upload_volume(self, pool: str, name: str, data: bytes | Iterable[bytes]) -> VerbResult:
        """Replace the volume's content with `data` (bytes or an iterable of chunks)."""
        c = call(VERBS.upload_volume, pool=pool, vol=name)
        headers = {"content-type": "application/octet-stream"}
        return c.answer(self._send(c, content=data, headers=headers).content)

    def download_volume(self, pool: str, name: str) -> Iterator[bytes]:
        """Yield the volume's content in chunks."""
        c = call(VERBS.download_volume, pool=pool, vol=name)
        for response in self._stream(c, f"download {pool}/{name}"):
            yield from response.iter_bytes()

    # --- consoles ------------------------------------------------------------------------

    async def open_console(self, name: str, force: bool = False) -> ClientConnection:
        """Return the domain's serial console websocket, open: binary frames are console
        bytes, text frames ConsoleMessage JSON. `force` takes over another session.
        Raises ConsoleUnavailable when the agent cannot be reached or refuses."""
        query = {"force": "true"} if force else None
        return await self._open_websocket(call(VERBS.open_console, name=name, query=query))

    def issue_graphics_ticket(
        self, name: str, kind: str = "vnc", ttl_s: float = 30.0
    ) -> GraphicsTicket:
        """Return a new one-time ticket for the domain's display (each call issues another)."""
        body = GraphicsTicketRequest(kind=kind, ttl_s=ttl_s)  # type: ignore[arg-type]
        return self.perform(call(VERBS.issue_graphics_ticket, body, name=name))

    async def open_graphics(
        self, name: str, ticket: str, kind: str = "vnc", subprotocols: list[str] | None = None
    ) -> ClientConnection:
        """Return the domain's display websocket, open, entered with a one-time `ticket`
        (issue_graphics_ticket). Raises ConsoleUnavailable when refused or unreachable."""
        c = call(VERBS.open_graphics, name=name, query={"ticket": ticket, "kind": kind})
        return await self._open_websocket(c, subprotocols)


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
