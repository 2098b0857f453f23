"""The agent's HTTP API (FastAPI): the routes of the verbs of agentapi.verbs, each taking its
method and path from that table (nodeagent.verbroute): ensure verbs, reads and events.

Every failure is an `AgentError` JSON body with a stable `type`; request bodies that
do not validate are `invalid_spec` naming the field. Libvirt calls block, so
handlers are plain functions that FastAPI runs in its thread pool.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

import libvirt
from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi import Path as FastAPIPath
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from agentapi import (
    API_PREFIX,
    NAME_PATTERN,
    VERBS,
    AgentError,
    AgentEvent,
    ApplyResult,
    BalloonRequest,
    BatchRequest,
    BatchResult,
    DomainSpec,
    DomainState,
    ErrorType,
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
from nodeagent import __version__, balloon, domains, migration, networks, snapshots, storage
from nodeagent.agent import Agent
from nodeagent.batch import run_batch
from nodeagent.bodylimit import MIB, BodySizeLimit
from nodeagent.consoleroutes import install_console_routes
from nodeagent.context import AgentContext
from nodeagent.errors import AgentFailure, from_libvirt
from nodeagent.state import read_host_state
from nodeagent.stats import read_stats
from nodeagent.verbroute import is_upload, verb_route

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": AgentError} for code in (400, 403, 404, 409, 422, 424, 502, 503)
}
_HTTP_ERROR_TYPES: dict[int, ErrorType] = {403: "unauthorized", 404: "not_found", 409: "conflict"}
"""Error type of a refusal made by the HTTP layer itself; any other status is invalid_spec."""


def _error_response(error: AgentError, status: int) -> JSONResponse:
    return JSONResponse(error.model_dump(), status_code=status)


def _validation_error(exc: RequestValidationError) -> AgentError:
    """Return invalid_spec naming the first bad field (dotted path), listing all of them."""
    problems = []
    first_field = None
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path")]
        field = ".".join(loc) or "body"
        first_field = first_field or field
        problems.append(f"{field}: {err.get('msg', 'invalid')}")
    return AgentError(
        type="invalid_spec", message="; ".join(problems) or "invalid request", field=first_field
    )


def format_sse(event: AgentEvent) -> str:
    """Return one server-sent event: `id` is the sequence number, `event` the kind."""
    return f"id: {event.seq}\nevent: {event.kind}\ndata: {event.model_dump_json()}\n\n"


async def _agent(request: Request) -> Agent:
    agent = request.app.state.agent
    if agent is None:
        raise AgentFailure("unavailable", "agent is starting", retryable=True)
    return agent


async def _ctx(request: Request) -> AgentContext:
    return (await _agent(request)).ctx


EPOCH_HEADER = "X-Corral-Epoch"


async def _current_term(conn: HTTPConnection) -> None:
    """Refuse a mutating call made under an older controller term than one seen before
    (nodeagent.term)."""
    if conn.scope.get("method", "GET") in ("GET", "HEAD"):
        return
    raw = conn.headers.get(EPOCH_HEADER)
    agent = conn.app.state.agent
    if raw is None or agent is None:
        return
    try:
        term = int(raw)
    except ValueError:
        raise AgentFailure(
            "invalid_spec", f"{EPOCH_HEADER} must be an integer, got {raw!r}", field=EPOCH_HEADER
        ) from None
    agent.terms.admit(term)


AgentDep = Annotated[Agent, Depends(_agent)]
Ctx = Annotated[AgentContext, Depends(_ctx)]


MAX_BODY_BYTES = 8 * MIB
"""Bodies above 8 MiB are refused (413): a domain definition is a few kilobytes."""


def _too_large(message: str) -> dict[str, Any]:
    return AgentError(
        type="invalid_spec", message=f"request body too large: {message}", field="body"
    ).model_dump()


def create_app(agent: Agent | None = None) -> FastAPI:
    """Return the ASGI app serving `agent` (settable later as `app.state.agent`).

    Transport security (mutual TLS, controller identity) is added by nodeagent.serve.
    """
    app = FastAPI(
        title="Corral node agent",
        version=__version__,
        openapi_url=f"{API_PREFIX}openapi.json",
        docs_url=f"{API_PREFIX}docs",
        redoc_url=None,
        responses=_ERRORS,
        dependencies=[Depends(_current_term)],
    )
    app.state.agent = agent
    app.add_middleware(
        BodySizeLimit,
        max_bytes=MAX_BODY_BYTES,
        error_body=_too_large,
        exempt=is_upload,
    )
    install_console_routes(app)

    @app.exception_handler(AgentFailure)
    async def _agent_failure(_request: Request, exc: AgentFailure) -> JSONResponse:
        return _error_response(exc.error, exc.status_code)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # A body that cannot be decoded is refused by FastAPI itself (400) before validation;
        # the client still gets the typed error every agent failure has.
        error = AgentError(
            type=_HTTP_ERROR_TYPES.get(exc.status_code, "invalid_spec"),
            message=str(exc.detail),
            field="body" if exc.status_code == 400 else None,
        )
        return JSONResponse(error.model_dump(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error_response(_validation_error(exc), 422)

    @app.exception_handler(libvirt.libvirtError)
    async def _libvirt(_request: Request, exc: libvirt.libvirtError) -> JSONResponse:
        failure = from_libvirt(exc)
        return _error_response(failure.error, failure.status_code)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        error = AgentError(
            type="unavailable",
            message=f"internal agent error: {type(exc).__name__}: {exc}",
            retryable=True,
        )
        return _error_response(error, 500)

    # --- reads ---------------------------------------------------------------------------

    @verb_route(app, VERBS.health)
    def health(ctx: Ctx) -> Health:
        """Return whether the agent runs and reaches libvirt (never fails)."""
        with contextlib.suppress(AgentFailure):
            ctx.connection.get()
        connected = ctx.connection.connected()
        return Health(ok=connected, libvirt_connected=connected, agent_version=__version__)

    @verb_route(app, VERBS.get_state)
    def get_state(ctx: Ctx, omit_volumes: Annotated[list[str] | None, Query()] = None) -> HostState:
        """Return the host's full observed state, without the volumes of `omit_volumes` pools."""
        return read_host_state(ctx, frozenset(omit_volumes or ()))

    @verb_route(app, VERBS.get_stats)
    def get_stats(ctx: Ctx) -> HostStats:
        """Return host and per-domain statistics."""
        return read_stats(ctx)

    @verb_route(app, VERBS.events)
    async def get_events(
        agent: AgentDep,
        since: Annotated[int | None, Query(description="last seq the client has")] = None,
        wait_s: Annotated[float | None, Query(gt=0, description="close after seconds")] = None,
        last_event_id: Annotated[int | None, Header()] = None,
    ) -> StreamingResponse:
        """Stream events as SSE (`id` = seq); a `resync` event first when `since` is unknown."""
        start = since if since is not None else last_event_id
        return StreamingResponse(
            _event_stream(agent, start, wait_s), media_type="text/event-stream"
        )

    # --- domains -------------------------------------------------------------------------

    @verb_route(app, VERBS.get_domain)
    def get_domain(ctx: Ctx, name: str) -> DomainState:
        """Return one domain's observed state."""
        return domains.get_domain(ctx, name)

    @verb_route(app, VERBS.ensure_domain_defined)
    def put_domain(ctx: Ctx, name: str, spec: DomainSpec) -> ApplyResult:
        """ensure_domain_defined: the persistent definition equals `spec`."""
        return domains.ensure_domain_defined(ctx, name, spec)

    @verb_route(app, VERBS.ensure_running)
    def ensure_running(ctx: Ctx, name: str) -> VerbResult:
        """ensure_running: the domain runs (started through hooks, or resumed)."""
        return domains.ensure_running(ctx, name)

    @verb_route(app, VERBS.ensure_stopped)
    def ensure_stopped(ctx: Ctx, name: str, request: StopRequest | None = None) -> VerbResult:
        """ensure_stopped: graceful shutdown, destroy after `timeout_s`."""
        timeout_s = (request or StopRequest()).timeout_s
        return domains.ensure_stopped(ctx, name, timeout_s)

    @verb_route(app, VERBS.ensure_destroyed)
    def ensure_destroyed(ctx: Ctx, name: str) -> VerbResult:
        """ensure_destroyed: the domain is off (hard power-off if it ran)."""
        return domains.ensure_destroyed(ctx, name)

    @verb_route(app, VERBS.ensure_undefined)
    def delete_domain(ctx: Ctx, name: str, force: bool = False) -> VerbResult:
        """ensure_undefined: the domain is gone; running ones need force=true."""
        return domains.ensure_undefined(ctx, name, force)

    @verb_route(app, VERBS.set_balloon)
    def put_balloon(ctx: Ctx, name: str, request: BalloonRequest) -> VerbResult:
        """set_balloon: the running domain's balloon target is `target_mib` (live only)."""
        return balloon.set_balloon(ctx, name, request.target_mib)

    # --- snapshots -----------------------------------------------------------------------

    @verb_route(app, VERBS.list_snapshots)
    def list_snapshots(ctx: Ctx, name: str) -> list[SnapshotState]:
        """Return the domain's snapshots, oldest first."""
        return snapshots.list_snapshots(ctx, name)

    @verb_route(app, VERBS.ensure_snapshot)
    def put_snapshot(
        ctx: Ctx,
        name: str,
        snap: Annotated[str, FastAPIPath(pattern=NAME_PATTERN)],
        spec: SnapshotSpec | None = None,
    ) -> VerbResult:
        """ensure_snapshot: the snapshot exists."""
        return snapshots.ensure_snapshot(ctx, name, snap, spec or SnapshotSpec())

    @verb_route(app, VERBS.get_snapshot)
    def get_snapshot(ctx: Ctx, name: str, snap: str) -> SnapshotState:
        """Return one snapshot."""
        return snapshots.get_snapshot(ctx, name, snap)

    @verb_route(app, VERBS.ensure_snapshot_deleted)
    def delete_snapshot(ctx: Ctx, name: str, snap: str) -> VerbResult:
        """ensure_snapshot_deleted: the snapshot is gone."""
        return snapshots.ensure_snapshot_deleted(ctx, name, snap)

    @verb_route(app, VERBS.revert_snapshot)
    def revert_snapshot(ctx: Ctx, name: str, snap: str) -> VerbResult:
        """Revert the domain to the snapshot."""
        return snapshots.revert_snapshot(ctx, name, snap)

    # --- migration -----------------------------------------------------------------------

    @verb_route(app, VERBS.migrate)
    def migrate(ctx: Ctx, name: str, request: MigrateRequest) -> MigrationJob:
        """Start a live migration job (returns at once; poll the migration)."""
        return migration.start_migration(ctx, name, request)

    @verb_route(app, VERBS.get_migration)
    def get_migration(ctx: Ctx, name: str) -> MigrationJob:
        """Return the domain's last migration job with its progress."""
        return migration.get_migration(ctx, name)

    @verb_route(app, VERBS.cancel_migration)
    def cancel_migration(ctx: Ctx, name: str) -> VerbResult:
        """Cancel the running migration (abortJob)."""
        return migration.cancel_migration(ctx, name)

    # --- networks ------------------------------------------------------------------------

    @verb_route(app, VERBS.list_networks)
    def list_networks(ctx: Ctx) -> list[NetworkState]:
        """Return every network."""
        return networks.list_networks(ctx)

    @verb_route(app, VERBS.get_network)
    def get_network(ctx: Ctx, name: str) -> NetworkState:
        """Return one network."""
        return networks.get_network(ctx, name)

    @verb_route(app, VERBS.ensure_network_defined)
    def put_network(ctx: Ctx, name: str, spec: NetworkSpec) -> ApplyResult:
        """ensure_network_defined: defined as `spec` (not started)."""
        return networks.ensure_network_defined(ctx, name, spec)

    @verb_route(app, VERBS.ensure_network_active)
    def network_active(ctx: Ctx, name: str) -> VerbResult:
        """ensure_network_active."""
        return networks.ensure_network_active(ctx, name)

    @verb_route(app, VERBS.ensure_network_inactive)
    def network_inactive(ctx: Ctx, name: str) -> VerbResult:
        """ensure_network_inactive (refused while running domains use it)."""
        return networks.ensure_network_inactive(ctx, name)

    @verb_route(app, VERBS.ensure_network_undefined)
    def delete_network(ctx: Ctx, name: str) -> VerbResult:
        """ensure_network_undefined."""
        return networks.ensure_network_undefined(ctx, name)

    # --- storage -------------------------------------------------------------------------

    @verb_route(app, VERBS.list_pools)
    def list_pools(ctx: Ctx) -> list[PoolState]:
        """Return every storage pool with its volumes."""
        return storage.list_pools(ctx)

    @verb_route(app, VERBS.get_pool)
    def get_pool(ctx: Ctx, name: str) -> PoolState:
        """Return one storage pool with its volumes."""
        return storage.get_pool(ctx, name)

    @verb_route(app, VERBS.ensure_pool)
    def put_pool(ctx: Ctx, name: str, spec: PoolSpec) -> ApplyResult:
        """ensure_pool: defined, built, active."""
        return storage.ensure_pool(ctx, name, spec)

    @verb_route(app, VERBS.ensure_pool_undefined)
    def delete_pool(ctx: Ctx, name: str) -> VerbResult:
        """ensure_pool_undefined (data stays on disk)."""
        return storage.ensure_pool_undefined(ctx, name)

    @verb_route(app, VERBS.get_volume)
    def get_volume(ctx: Ctx, pool: str, vol: str) -> VolumeState:
        """Return one volume."""
        return storage.get_volume(ctx, pool, vol)

    @verb_route(app, VERBS.ensure_volume)
    def put_volume(ctx: Ctx, pool: str, vol: str, spec: VolumeSpec) -> VolumeApplyResult:
        """ensure_volume: created, thin-cloned or grown."""
        return storage.ensure_volume(ctx, pool, vol, spec)

    @verb_route(app, VERBS.ensure_volume_deleted)
    def delete_volume(ctx: Ctx, pool: str, vol: str) -> VerbResult:
        """ensure_volume_deleted."""
        return storage.ensure_volume_deleted(ctx, pool, vol)

    @verb_route(app, VERBS.upload_volume)
    async def upload_volume(ctx: Ctx, pool: str, vol: str, request: Request) -> VerbResult:
        """Replace the volume's content with the streamed request body."""
        upload = await run_in_threadpool(storage.VolumeUpload, ctx, pool, vol)
        try:
            async for chunk in request.stream():
                if chunk:
                    await run_in_threadpool(upload.send, chunk)
            await run_in_threadpool(upload.finish)
        except BaseException:
            upload.abort()
            raise
        return VerbResult(name=vol, changed=True, message=f"{upload.bytes_sent} bytes written")

    @verb_route(app, VERBS.download_volume)
    def download_volume(ctx: Ctx, pool: str, vol: str) -> StreamingResponse:
        """Stream the volume's content."""
        chunks = storage.open_volume_download(ctx, pool, vol)
        return StreamingResponse(chunks, media_type="application/octet-stream")

    # --- batches -------------------------------------------------------------------------

    @verb_route(app, VERBS.batch)
    async def batch(request: Request, calls: BatchRequest) -> BatchResult:
        """Run several ensure verbs in one request, concurrently; each call is answered (or
        refused) exactly as it would be alone, in the order of the calls."""
        return BatchResult(answers=await run_batch(request.app, request.scope, calls.calls))

    # --- lease ---------------------------------------------------------------------------

    @verb_route(app, VERBS.get_lease)
    async def get_lease(agent: AgentDep) -> LeaseState:
        """Return this host's fencing lease in etcd, as the agent keeps it."""
        return agent.lease_state()

    return app


async def _event_stream(
    agent: Agent, since: int | None, wait_s: float | None
) -> AsyncIterator[str]:
    """Yield SSE frames from `since` on; resync when the buffer cannot cover the gap."""
    hub = agent.events
    cursor = hub.last_seq if since is None else since
    deadline = None if wait_s is None else time.monotonic() + wait_s
    while True:
        complete, events = hub.since(cursor)
        if not complete:
            cursor = hub.last_seq
            data = json.dumps(
                {
                    "last_seq": cursor,
                    "reason": "events since the given seq are "
                    f"unknown to this agent: re-read {VERBS.get_state.route}",
                }
            )
            yield f"id: {cursor}\nevent: resync\ndata: {data}\n\n"
            events = []
        for event in events:
            yield format_sse(event)
            cursor = event.seq
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            return
        timeout = KEEPALIVE_S if remaining is None else min(KEEPALIVE_S, remaining)
        before = hub.last_seq
        await hub.wait(cursor, timeout)
        if hub.last_seq == before and (remaining is None or remaining > KEEPALIVE_S):
            yield ": keepalive\n\n"
