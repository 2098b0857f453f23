"""Events and plan history: GET /api/v1/events, /api/v1/<plural>/{name}/events, /api/v1/plans."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from controller.api.auth import require
from controller.api.errors import BAD_REQUEST, NOT_FOUND, ApiError, Detail
from controller.api.objects import ObjectService
from controller.api.rbac import Identity, Verb
from controller.api.routes import API_PREFIX, ERRORS, _json, service
from controller.store import EventRecord, NotFound, PlanRecord
from schemas.kinds import KINDS, PLURALS, resolve_kind

Reader = Annotated[Identity, Depends(require(Verb.READ))]
Service = Annotated[ObjectService, Depends(service)]
MAX_EVENTS = 1000
MAX_ID = 2**63 - 1
"""The largest plan id the store can hold (a signed 64-bit key): larger ones cannot exist."""


def event_json(event: EventRecord) -> dict[str, Any]:
    """Return an event as the API shows it."""
    return {
        "id": event.id,
        "type": event.type,
        "reason": event.reason,
        "message": event.message,
        "involvedObject": {"kind": event.kind, "name": event.name},
        "count": event.count,
        "firstSeen": event.first_seen.isoformat(),
        "lastSeen": event.last_seen.isoformat(),
        "component": event.component,
        "identity": event.identity,
    }


def plan_json(record: PlanRecord, visible: set[str] | None = None) -> dict[str, Any]:
    """Return a stored plan; with `visible`, only actions on those "Kind/name" targets."""
    actions = []
    for action, outcome in zip(record.actions, record.outcomes, strict=True):
        if visible is not None and action.get("target") not in visible:
            continue
        entry = dict(action)
        entry["outcome"] = (
            None
            if outcome is None
            else {"ok": outcome.ok, "error": outcome.error, "at": outcome.at.isoformat()}
        )
        actions.append(entry)
    return {
        "id": record.id,
        "createdAt": record.created_at.isoformat(),
        "finishedAt": record.finished_at.isoformat() if record.finished_at else None,
        "source": record.source,
        "revision": record.revision,
        "summary": record.summary,
        "actions": actions,
    }


def _visible_refs(objects: ObjectService, identity: Identity) -> set[str] | None:
    """Return the "Kind/name" of every object a scoped caller sees (None: unscoped)."""
    if identity.scope is None:
        return None
    page = objects.store.list(label_selector=identity.scope)
    return {f"{s.kind}/{s.name}" for s in page.items}


def history_router() -> APIRouter:
    router = APIRouter(prefix=API_PREFIX, tags=["history"])

    @router.get(
        "/events",
        operation_id="list_events",
        summary="List events, newest first",
        responses={200: _json({"type": "object"}, "An EventList"), **ERRORS},
    )
    def list_events(
        identity: Reader,
        objects: Service,
        kind: Annotated[str | None, Query(description="Kind, plural or short name")] = None,
        name: str | None = None,
        type: Annotated[str | None, Query(pattern="^(Normal|Warning)$")] = None,
        since: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
    ) -> JSONResponse:
        if since is not None and since.tzinfo is None:
            # Stored timestamps are UTC: a naive one cannot be compared (the store refuses it).
            raise ApiError(
                400,
                BAD_REQUEST,
                f"query.since: give a timezone (Z), got {since.isoformat()}",
                (Detail("query.since", "no timezone", "timezone_aware"),),
            )
        resolved = None
        if kind is not None:
            resolved = resolve_kind(kind) or (kind if kind in ("Source", "Controller") else None)
            if resolved is None:
                raise ApiError(404, NOT_FOUND, f"no kind is called {kind!r}")
        events = objects.store.list_events(resolved, name, since, type, limit)
        visible = _visible_refs(objects, identity)
        if visible is not None:
            events = [e for e in events if f"{e.kind}/{e.name}" in visible]
        return JSONResponse({"kind": "EventList", "items": [event_json(e) for e in events]})

    for kind in KINDS:
        _object_events(router, kind)

    @router.get(
        "/plans",
        operation_id="list_plans",
        summary="List computed plans with their outcomes, newest first",
        responses={200: _json({"type": "object"}, "A PlanList"), **ERRORS},
    )
    def list_plans(
        identity: Reader,
        objects: Service,
        limit: Annotated[int, Query(ge=1, le=200)] = 20,
    ) -> JSONResponse:
        visible = _visible_refs(objects, identity)
        plans = objects.store.list_plans(limit=limit)
        return JSONResponse({"kind": "PlanList", "items": [plan_json(p, visible) for p in plans]})

    @router.get(
        "/plans/{plan_id}",
        operation_id="get_plan",
        summary="Get one plan with its outcomes",
        responses={200: _json({"type": "object"}, "A Plan"), **ERRORS},
    )
    def get_plan(
        plan_id: Annotated[int, Path(ge=1, le=MAX_ID)], identity: Reader, objects: Service
    ) -> JSONResponse:
        try:
            record = objects.store.get_plan(plan_id)
        except NotFound:
            raise ApiError(404, NOT_FOUND, f"plan {plan_id} not found") from None
        return JSONResponse(plan_json(record, _visible_refs(objects, identity)))

    return router


def _object_events(router: APIRouter, kind: str) -> None:
    @router.get(
        f"/{PLURALS[kind]}/{{name}}/events",
        operation_id=f"list_{PLURALS[kind]}_events",
        summary=f"List a {kind}'s events, newest first",
        tags=[kind],
        responses={200: _json({"type": "object"}, "An EventList"), **ERRORS},
    )
    def object_events(
        name: str,
        identity: Reader,
        objects: Service,
        limit: Annotated[int, Query(ge=1, le=MAX_EVENTS)] = 100,
    ) -> JSONResponse:
        objects.get(identity, kind, name)
        events = objects.store.list_events(kind, name, limit=limit)
        return JSONResponse({"kind": "EventList", "items": [event_json(e) for e in events]})
