"""The agent's HTTP contract (agentapi.verbs) served from a SimHost, as an httpx transport.

Every verb of the table is routed by its method and path to what serves it under its
name: the SimHost method of that name, or a handler registered for it here (`handles`)
when a host method cannot serve it alone. Bodies are validated with the verb's request
model (refused as `invalid_spec` naming the field); answers are the verb's answer model
as JSON with the verb's status, errors the agent's `AgentError` body with its HTTP
status. A call takes its verb's latency (controller.sim.latency), with at most
`per_host_parallel` calls at once per host, as libvirtd's workers; lease reads bypass
that bound (the agent serves them on its event loop).
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
    Verb,
    VerbResult,
)
from controller.agents import EPOCH_HEADER
from controller.sim.host import SimFailure, SimHost
from controller.sim.latency import latency_of

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
HANDLERS: dict[str, Handler] = {}
"""The handlers of the verbs a SimHost method cannot serve alone (a query, the fleet, raw
bytes, a stream), by verb name; every other verb is served by the SimHost method of its
name (`handler_of`)."""


def handles(verb: Verb) -> Callable[[Handler], Handler]:
    """Register `fn` as the handler of `verb`."""

    def register(fn: Handler) -> Handler:
        if verb.name in HANDLERS:
            raise ValueError(f"{verb.name} has a handler already")
        HANDLERS[verb.name] = fn
        return fn

    return register


def handler_of(verb: Verb) -> Handler:
    """Return what serves `verb`: its registered handler, else the SimHost method of its
    name, called with the path parameters in order and then the body if the verb takes
    one. LookupError when neither exists."""
    if verb.name in HANDLERS:
        return HANDLERS[verb.name]
    if not callable(getattr(SimHost, verb.name, None)):
        raise LookupError(f"the simulator serves no verb {verb.name}")
    takes_body = verb.request is not None

    def host_method(t: SimTransport, host: SimHost, q: Received) -> Any:
        args = [q.path[name] for name in verb.params]
        return getattr(host, verb.name)(*args, *([q.body] if takes_body else []))

    return host_method


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
        handler = _SERVED[verb.name]
        if verb is VERBS.batch:  # each of its calls takes its own latency, slot and faults
            return self._answer(verb, handler, host, params, request)
        delay = self.fleet.latency.of(latency_of(verb))
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


# --- verbs a SimHost method cannot serve alone -------------------------------------------


@handles(VERBS.get_state)
def _state(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.state_document(frozenset(q.request.url.params.get_list("omit_volumes")))


@handles(VERBS.events)
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


@handles(VERBS.get_lease)
def _lease(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.lease_state()


@handles(VERBS.batch)
def _batch(t: SimTransport, host: SimHost, q: Received) -> Any:
    return t.run_batch(q.body.calls, q.request)


@handles(VERBS.ensure_undefined)
def _undefine(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.ensure_undefined(q.path["name"], q.request.url.params.get("force") == "true")


@handles(VERBS.migrate)
def _migrate(t: SimTransport, host: SimHost, q: Received) -> Any:
    return t.fleet.start_migration(host.name, q.path["name"], q.body)


@handles(VERBS.cancel_migration)
def _cancel(t: SimTransport, host: SimHost, q: Received) -> Any:
    name = q.path["name"]
    host.get_domain(name)
    cancelled = t.fleet.cancel_migration(host.name, name)
    return VerbResult(name=name, changed=cancelled, state="cancelled" if cancelled else None)


@handles(VERBS.upload_volume)
def _upload(t: SimTransport, host: SimHost, q: Received) -> Any:
    return host.upload_volume(q.path["pool"], q.path["vol"], q.request.content)


@handles(VERBS.download_volume)
def _download(t: SimTransport, host: SimHost, q: Received) -> Any:
    content = host.download_volume(q.path["pool"], q.path["vol"])
    return httpx.Response(200, content=content, headers={"content-type": OCTETS})


_SERVED: dict[str, Handler] = {verb.name: handler_of(verb) for verb in VERBS}
"""What serves each verb; built once every handler is registered (a verb without one
fails the import)."""
