"""The agent's HTTP contract (nodeagent/openapi.json) served from a SimHost, as an httpx transport.

Same paths, methods, request bodies (validated by the same wire models, refused as
`invalid_spec` naming the field) and answers (the same models as JSON, errors as the
agent's `AgentError` body with its HTTP status). The call takes the latency of its
verb, with at most `per_host_parallel` verbs at once per host, as libvirtd's workers;
lease reads bypass that bound (the agent serves them on its event loop).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, ValidationError

from agentapi import (
    AgentError,
    BatchAnswer,
    BatchRequest,
    BatchResult,
    DomainSpec,
    Health,
    MigrateRequest,
    NetworkSpec,
    PoolSpec,
    SnapshotSpec,
    StopRequest,
    VerbResult,
    VolumeSpec,
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

Handler = Callable[["SimTransport", SimHost, dict[str, str], httpx.Request], Any]
_ROUTES: list[tuple[str, re.Pattern[str], str, Handler]] = []


def route(method: str, pattern: str, verb: str) -> Callable[[Handler], Handler]:
    """Register a handler for METHOD /v1/<pattern>; `verb` names its latency."""

    def register(fn: Handler) -> Handler:
        regex = re.compile("^/v1/" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")
        _ROUTES.append((method, regex, verb, fn))
        return fn

    return register


def body(model: type[BaseModel], request: httpx.Request, optional: bool = False) -> Any:
    """Return the request body validated as `model`; invalid_spec naming the first bad field."""
    raw = request.content
    if not raw:
        if optional:
            return None
        raise SimFailure("invalid_spec", "body: Field required", field_="body")
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
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
        if request.method == "POST" and path == "/v1/batch":
            return self._batch(request)
        found = self._route(request.method, path)
        if found is None:
            error = AgentError(type="not_found", message=f"no route {request.method} {path}")
            return _json(error, 404)
        method, verb, handler, match = found
        delay = self.fleet.latency.of(verb)
        # The agent serves its lease on the event loop, never queued behind libvirt verbs.
        slot = self.fleet.slot(self.host_name) if verb != "lease" else contextlib.nullcontext()
        with slot:
            if delay:
                self.fleet.sleep(delay)
            self.fleet.settle()
            response = self._answer(handler, host, match.groupdict(), request)
            if method != "GET" and faults.duplicate > 0:
                faults.duplicate -= 1
                self.fleet.injected.add("duplicated verb")
                response = self._answer(handler, host, match.groupdict(), request)
        if verb == "read" and path == "/v1/state":
            response = self._maybe_stale(response, faults)
        if faults.lose_answers > 0 and method != "GET":
            faults.lose_answers -= 1
            self.fleet.injected.add("lost answer")
            raise httpx.ReadError("connection reset by peer", request=request)
        return response

    def _batch(self, request: httpx.Request) -> httpx.Response:
        """Answer every call of a batch as it would be answered alone; concurrently when
        verbs take time. A call whose answer a lossy link loses drops the whole batch."""
        try:
            calls = body(BatchRequest, request).calls
        except SimFailure as exc:
            error = AgentError(type="invalid_spec", message=exc.message, field=exc.field)
            return _json(error, 422)
        headers = [
            (k, v)
            for k, v in request.headers.multi_items()
            if k.lower() not in ("content-length", "content-type")
        ]
        subs = [
            httpx.Request(
                call.method,
                request.url.join(f"/v1/{call.path}"),
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
        return _json(BatchResult(answers=answers))

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, str, Handler, re.Match[str]] | None:
        for route_method, regex, verb, handler in _ROUTES:
            match = regex.match(path)
            if route_method == method and match:
                return route_method, verb, handler, match
        return None

    def _answer(
        self, handler: Handler, host: SimHost, params: dict[str, str], request: httpx.Request
    ) -> httpx.Response:
        try:
            if request.method != "GET" and EPOCH_HEADER in request.headers:
                host.admit_term(request.headers[EPOCH_HEADER])
            result = handler(self, host, params, request)
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
        return _json(result)

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


# --- reads --------------------------------------------------------------------------------


@route("GET", "health", "read")
def _health(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return Health(ok=True, libvirt_connected=True, agent_version=AGENT_VERSION)


@route("GET", "state", "read")
def _state(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.state_document(frozenset(r.url.params.get_list("omit_volumes")))


# --- domains ------------------------------------------------------------------------------


@route("GET", "domains/{name}", "read")
def _get_domain(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.get_domain(p["name"])


@route("PUT", "domains/{name}", "define")
def _put_domain(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_domain_defined(p["name"], body(DomainSpec, r))


@route("POST", "domains/{name}/ensure-running", "start")
def _running(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_running(p["name"])


@route("POST", "domains/{name}/ensure-stopped", "stop")
def _stopped(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    request = body(StopRequest, r, optional=True) or StopRequest()
    return host.ensure_stopped(p["name"], "shut down" if request.timeout_s else "destroyed")


@route("POST", "domains/{name}/ensure-destroyed", "destroy")
def _destroyed(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_stopped(p["name"], "destroyed")


@route("DELETE", "domains/{name}", "undefine")
def _undefine(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_undefined(p["name"], r.url.params.get("force") == "true")


# --- snapshots ----------------------------------------------------------------------------


@route("GET", "domains/{name}/snapshots", "read")
def _snapshots(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.list_snapshots(p["name"])


@route("PUT", "domains/{name}/snapshots/{snap}", "define")
def _put_snapshot(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    spec = body(SnapshotSpec, r, optional=True) or SnapshotSpec()
    return host.ensure_snapshot(p["name"], p["snap"], spec)


@route("DELETE", "domains/{name}/snapshots/{snap}", "undefine")
def _delete_snapshot(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_snapshot_deleted(p["name"], p["snap"])


# --- migration ----------------------------------------------------------------------------


@route("POST", "domains/{name}/migrate", "define")
def _migrate(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    job = t.fleet.start_migration(host.name, p["name"], body(MigrateRequest, r))
    return _json(job, 202)


@route("GET", "domains/{name}/migration", "read")
def _migration(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.get_migration(p["name"])


@route("DELETE", "domains/{name}/migration", "define")
def _cancel(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    host.get_domain(p["name"])
    cancelled = t.fleet.cancel_migration(host.name, p["name"])
    return VerbResult(name=p["name"], changed=cancelled, state="cancelled" if cancelled else None)


# --- networks -----------------------------------------------------------------------------


@route("GET", "networks", "read")
def _networks(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    with host.lock:
        return [host.networks[n] for n in sorted(host.networks)]


@route("GET", "networks/{name}", "read")
def _network(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    with host.lock:
        if p["name"] not in host.networks:
            raise SimFailure("not_found", f"network {p['name']!r} not found on this host")
        return host.networks[p["name"]]


@route("PUT", "networks/{name}", "network")
def _put_network(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_network_defined(p["name"], body(NetworkSpec, r))


@route("POST", "networks/{name}/ensure-active", "network_start")
def _net_active(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.set_network_active(p["name"], True)


@route("POST", "networks/{name}/ensure-inactive", "network")
def _net_inactive(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.set_network_active(p["name"], False)


@route("DELETE", "networks/{name}", "network")
def _net_delete(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_network_undefined(p["name"])


# --- storage ------------------------------------------------------------------------------


@route("GET", "pools", "read")
def _pools(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    with host.lock:
        return [host.get_pool(n) for n in sorted(host.pools)]


@route("GET", "pools/{name}", "read")
def _pool(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.get_pool(p["name"])


@route("PUT", "pools/{name}", "pool")
def _put_pool(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_pool(p["name"], body(PoolSpec, r))


@route("DELETE", "pools/{name}", "pool")
def _delete_pool(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_pool_undefined(p["name"])


@route("GET", "pools/{pool}/volumes/{vol}", "read")
def _volume(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.get_volume(p["pool"], p["vol"])


@route("PUT", "pools/{pool}/volumes/{vol}", "volume")
def _put_volume(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_volume(p["pool"], p["vol"], body(VolumeSpec, r))


@route("DELETE", "pools/{pool}/volumes/{vol}", "volume")
def _delete_volume(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.ensure_volume_deleted(p["pool"], p["vol"])


# --- lease --------------------------------------------------------------------------------


@route("GET", "lease", "lease")
def _lease(t: SimTransport, host: SimHost, p: dict[str, str], r: httpx.Request) -> Any:
    return host.lease_state()
