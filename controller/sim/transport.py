"""The agent's HTTP contract (agentapi.verbs) served from a SimHost, as an httpx transport.

Every verb of the table is routed by its method and path to the handler registered
under its name (`handles`); bodies are validated with the verb's request model (refused
as `invalid_spec` naming the field) and answers are the verb's answer model as JSON,
errors the agent's `AgentError` body with its HTTP status. The call takes the latency of its
verb, with at most `per_host_parallel` verbs at once per host, as libvirtd's workers;
lease reads bypass that bound (the agent serves them on its event loop).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, ValidationError

from agentapi import (
    API_PREFIX,
    VERBS,
    AgentError,
    BatchAnswer,
    BatchCall,
    BatchResult,
    Health,
    Verb,
    VerbResult,
)
from controller.agents import EPOCH_HEADER
from controller.sim.host import AGENT_VERSION, SimFailure, SimHost

if TYPE_CHECKING:
    from controller.sim.fleet import SimFleet

HTTP_STATUS = {
    "not_found": 404,
    "conflict": 409,
    "invalid_spec": 422,
    "hook_failed": 424,
    "unauthorized": 403,
    "unavailable": 503,
    "libvirt_error": 502,
}
"""The agent's status per error type (nodeagent.errors.HTTP_STATUS)."""
OCTETS = "application/octet-stream"


@dataclass(frozen=True)
class Received:
    """A call as a handler sees it: its path parameters, its body validated with the
    verb's request model (None without one), and the request itself (query, raw body)."""

    path: dict[str, str]
    body: Any
    request: httpx.Request


Handler = Callable[["SimTransport", SimHost, Received], Any]
HANDLERS: dict[str, tuple[str | None, Handler]] = {}
"""The simulator's handler of each verb, by the verb's name (agentapi.verbs), with the
name of its latency (controller.sim.latency; None: none, nor a slot)."""


def handles(verb: Verb, latency: str | None) -> Callable[[Handler], Handler]:
    """Register the handler of `verb`, taking the latency named `latency`."""

    def register(fn: Handler) -> Handler:
        if verb.name in HANDLERS:
            raise ValueError(f"{verb.name} has a handler already")
        HANDLERS[verb.name] = (latency, fn)
        return fn

    return register


def request_body(verb: Verb, request: httpx.Request) -> Any:
    """Return the body validated as the verb's request model (a model with defaults for
    every field may be left out); invalid_spec naming the first bad field."""
    if verb.request is None:
        return None
    raw = request.content
    try:
        return verb.request.model_validate_json(raw) if raw else verb.request()
    except ValidationError as exc:
        if not raw:
            raise SimFailure("invalid_spec", "body: Field required", field_="body") from None
        problems, first = [], None
        for err in exc.errors():
            path = ".".join(str(p) for p in err.get("loc", ())) or "body"
            first = first or path
            problems.append(f"{path}: {err.get('msg', 'invalid')}")
        raise SimFailure("invalid_spec", "; ".join(problems), field_=first or "body") from None


def _json(value: Any, status: int = 200) -> httpx.Response:
    if isinstance(value, BaseModel):
        content = value.model_dump_json().encode()
    elif isinstance(value, list):
        content = ("[" + ",".join(v.model_dump_json() for v in value) + "]").encode()
    else:
        content = json.dumps(value).encode()
    return httpx.Response(status, content=content, headers={"content-type": "application/json"})


class SimTransport(httpx.BaseTransport):
    """Serves one simulated host's agent API to an httpx client, with its link's faults."""

    def __init__(self, fleet: SimFleet, host: str) -> None:
        self.fleet = fleet
        self.host_name = host
        self._last_state: bytes | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        faults = self.fleet.faults[self.host_name]
        if faults.cut:
            raise httpx.ConnectError("connection refused", request=request)
        host = self.fleet.hosts[self.host_name]
        path = unquote(request.url.raw_path.decode().split("?", 1)[0])
        upgrade = request.headers.get("upgrade", "").lower() == "websocket"
        method = "WS" if upgrade else request.method
        found = VERBS.find(method, path.removeprefix(API_PREFIX))
        if found is None or not path.startswith(API_PREFIX):
            error = AgentError(type="not_found", message=f"no route {request.method} {path}")
            return _json(error, 404)
        verb, params = found
        latency, handler = HANDLERS[verb.name]
        if latency is None:
            return self._answer(verb, handler, host, params, request)
        delay = self.fleet.latency.of(latency)
        # The agent serves its lease on the event loop, never queued behind libvirt verbs.
        lease = verb is VERBS.get_lease
        slot = contextlib.nullcontext() if lease else self.fleet.slot(self.host_name)
        mutating = verb.method not in ("GET", "WS")
        with slot:
            if delay:
                self.fleet.sleep(delay)
            self.fleet.settle()
            response = self._answer(verb, handler, host, params, request)
            if mutating and faults.duplicate > 0:
                faults.duplicate -= 1
                self.fleet.injected.add("duplicated verb")
                response = self._answer(verb, handler, host, params, request)
        if verb is VERBS.get_state:
            response = self._maybe_stale(response, faults)
        if faults.lose_answers > 0 and mutating:
            faults.lose_answers -= 1
            self.fleet.injected.add("lost answer")
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def run_batch(self, calls: list[BatchCall], request: httpx.Request) -> BatchResult:
        """Answer every call of a batch as it would be answered alone; concurrently when
        verbs take time. A call whose answer a lossy link loses drops the whole batch."""
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() not in ("content-length", "content-type")
        ]
        subs = [
            httpx.Request(
                call.method,
                request.url.join(API_PREFIX + call.path),
                params=call.query,
                headers=headers,
                json=call.body,
            )
            for call in calls
        ]
        if self.fleet.latency.scale and len(subs) > 1:
            responses = list(self.fleet.batch_pool().map(self.handle_request, subs))
        else:
            responses = [self.handle_request(sub) for sub in subs]
        answers = [
            BatchAnswer(status=r.status_code, body=json.loads(r.content) if r.content else None)
            for r in responses
        ]
        return BatchResult(answers=answers)

    def _answer(
        self,
        verb: Verb,
        handler: Handler,
        host: SimHost,
        params: dict[str, str],
        request: httpx.Request,
    ) -> httpx.Response:
        try:
            if request.method != "GET" and EPOCH_HEADER in request.headers:
                host.admit_term(request.headers[EPOCH_HEADER])
            result = handler(self, host, Received(params, request_body(verb, request), request))
        except SimFailure as exc:
            error = AgentError(
                type=exc.type,  # type: ignore[arg-type]
                message=exc.message,
                retryable=exc.retryable,
                field=exc.field,
            )
            return _json(error, HTTP_STATUS[exc.type])
        if isinstance(result, httpx.Response):
            return result
        return _json(result, verb.status)

    def _maybe_stale(self, response: httpx.Response, faults) -> httpx.Response:
        """Answer with the previously served state instead of this one, when asked to."""
        current = response.content
        if faults.stale_reads > 0 and self._last_state is not None:
            faults.stale_reads -= 1
            self.fleet.injected.add("stale state read")
            return httpx.Response(
                200, content=self._last_state, headers={"content-type": "application/json"}
            )
        self._last_state = current
        return response


# --- the host -----------------------------------------------------------------------------


@handles(VERBS.health, "read")
def _health(t: SimTransport, host: SimHost, q: Received) -> Any:
    return Health(ok=True, libvirt_connected=True, agent_version=AGENT_VERSION)


@handles(VERBS.get_state, "read")
def _state(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.state_document(frozenset(q.request.url.params.get_list("omit_volumes")))


@handles(VERBS.get_stats, "read")
def _stats(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.get_stats()


@handles(VERBS.events, "read")
def _events(t: SimTransport, host: SimHost, q: Received) -> Any:
    """A simulated agent keeps no event history: the stream ends at once, after a resync
    frame when the caller has missed changes (the agent's answer to a gap it cannot fill)."""
    since = q.request.url.params.get("since") or q.request.headers.get("last-event-id")
    frames = ""
    if since is not None and int(since) < host.events_seq:
        reason = f"a simulated agent keeps no events: re-read {VERBS.get_state.route}"
        data = json.dumps({"last_seq": host.events_seq, "reason": reason})
        frames = f"id: {host.events_seq}\nevent: resync\ndata: {data}\n\n"
    return httpx.Response(200, text=frames, headers={"content-type": "text/event-stream"})


@handles(VERBS.get_lease, "lease")
def _lease(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.lease_state()


@handles(VERBS.batch, None)
def _batch(t: SimTransport, host: SimHost, q: Received) -> Any:
    return t.run_batch(q.body.calls, q.request)


# --- domains ------------------------------------------------------------------------------


@handles(VERBS.get_domain, "read")
def _get_domain(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.get_domain(q.path["name"])


@handles(VERBS.ensure_domain_defined, "define")
def _put_domain(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_domain_defined(q.path["name"], q.body)


@handles(VERBS.ensure_running, "start")
def _running(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_running(q.path["name"])


@handles(VERBS.ensure_stopped, "stop")
def _stopped(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_stopped(q.path["name"], "shut down" if q.body.timeout_s else "destroyed")


@handles(VERBS.ensure_destroyed, "destroy")
def _destroyed(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_stopped(q.path["name"], "destroyed")


@handles(VERBS.ensure_undefined, "undefine")
def _undefine(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_undefined(q.path["name"], q.request.url.params.get("force") == "true")


@handles(VERBS.set_balloon, "define")
def _balloon(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.set_balloon(q.path["name"], q.body.target_mib)


# --- snapshots ----------------------------------------------------------------------------


@handles(VERBS.list_snapshots, "read")
def _snapshots(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.list_snapshots(q.path["name"])


@handles(VERBS.get_snapshot, "read")
def _snapshot(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.get_snapshot(q.path["name"], q.path["snap"])


@handles(VERBS.ensure_snapshot, "define")
def _put_snapshot(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_snapshot(q.path["name"], q.path["snap"], q.body)


@handles(VERBS.ensure_snapshot_deleted, "undefine")
def _delete_snapshot(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_snapshot_deleted(q.path["name"], q.path["snap"])


@handles(VERBS.revert_snapshot, "define")
def _revert(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.revert_snapshot(q.path["name"], q.path["snap"])


# --- migration ----------------------------------------------------------------------------


@handles(VERBS.migrate, "define")
def _migrate(t: SimTransport, host: SimHost, q: Received) -> Any:
    return t.fleet.start_migration(host.name, q.path["name"], q.body)


@handles(VERBS.get_migration, "read")
def _migration(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.get_migration(q.path["name"])


@handles(VERBS.cancel_migration, "define")
def _cancel(t: SimTransport, host: SimHost, q: Received) -> Any:
    name = q.path["name"]
    host.get_domain(name)
    cancelled = t.fleet.cancel_migration(host.name, name)
    return VerbResult(name=name, changed=cancelled, state="cancelled" if cancelled else None)


# --- networks -----------------------------------------------------------------------------


@handles(VERBS.list_networks, "read")
def _networks(t: SimTransport, host: SimHost, q: Received) -> Any:
    with host.lock:
        return [host.networks[n] for n in sorted(host.networks)]


@handles(VERBS.get_network, "read")
def _network(t: SimTransport, host: SimHost, q: Received) -> Any:
    name = q.path["name"]
    with host.lock:
        if name not in host.networks:
            raise SimFailure("not_found", f"network {name!r} not found on this host")
        return host.networks[name]


@handles(VERBS.ensure_network_defined, "network")
def _put_network(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_network_defined(q.path["name"], q.body)


@handles(VERBS.ensure_network_active, "network_start")
def _net_active(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.set_network_active(q.path["name"], True)


@handles(VERBS.ensure_network_inactive, "network")
def _net_inactive(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.set_network_active(q.path["name"], False)


@handles(VERBS.ensure_network_undefined, "network")
def _net_delete(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_network_undefined(q.path["name"])


# --- storage ------------------------------------------------------------------------------


@handles(VERBS.list_pools, "read")
def _pools(t: SimTransport, host: SimHost, q: Received) -> Any:
    with host.lock:
        return [host.get_pool(n) for n in sorted(host.pools)]


@handles(VERBS.get_pool, "read")
def _pool(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.get_pool(q.path["name"])


@handles(VERBS.ensure_pool, "pool")
def _put_pool(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_pool(q.path["name"], q.body)


@handles(VERBS.ensure_pool_undefined, "pool")
def _delete_pool(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_pool_undefined(q.path["name"])


@handles(VERBS.get_volume, "read")
def _volume(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.get_volume(q.path["pool"], q.path["vol"])


@handles(VERBS.ensure_volume, "volume")
def _put_volume(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_volume(q.path["pool"], q.path["vol"], q.body)


@handles(VERBS.ensure_volume_deleted, "volume")
def _delete_volume(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_volume_deleted(q.path["pool"], q.path["vol"])


@handles(VERBS.upload_volume, "volume")
def _upload(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.upload_volume(q.path["pool"], q.path["vol"], q.request.content)


@handles(VERBS.download_volume, "read")
def _download(t: SimTransport, host: SimHost, q: Received) -> Any:
    content = host.download_volume(q.path["pool"], q.path["vol"])
    return httpx.Response(
        200, content=content, headers={"content-type": "application/octet-stream"}
    )


# --- consoles -----------------------------------------------------------------------------


@handles(VERBS.open_console, "read")
def _console(t: SimTransport, host: SimHost, q: Received) -> Any:
    host.get_domain(q.path["name"])
    raise SimFailure("unavailable", "a simulated domain has no serial console to attach to")


@handles(VERBS.issue_graphics_ticket, "read")
def _ticket(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.issue_graphics_ticket(q.path["name"], q.body)


@handles(VERBS.open_graphics, "read")
def _graphics(t: SimTransport, host: SimHost, q: Received) -> Any:
    host.get_domain(q.path["name"])
    raise SimFailure("unavailable", "a simulated domain has no display to attach to")
