"""The warehouse in the REST API: GET /api/v1/history/rollups and /api/v1/history/samples.

The views read controller.history's Warehouse; they live with the API (its auth, errors
and RBAC), so that history imports nothing of the API.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from controller.api.auth import require
from controller.api.errors import BAD_REQUEST, ApiError, Detail
from controller.api.rbac import Identity, Verb
from controller.api.routes import ERRORS
from controller.history.model import Period, Subject
from controller.history.warehouse import Warehouse, rollups_json

Reader = Annotated[Identity, Depends(require(Verb.READ))]
DEFAULT_WINDOW = timedelta(days=7)
MAX_SAMPLES = 50_000


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    end = until or datetime.now(UTC)
    start = since or end - DEFAULT_WINDOW
    for field, value in (("since", start), ("until", end)):
        if value.tzinfo is None:
            raise ApiError(
                400, BAD_REQUEST, f"{field}: give a timezone (Z)", (Detail(field, "no timezone"),)
            )
    return start, end


def _warehouse(request: Request) -> Warehouse:
    warehouse = getattr(request.app.state, "warehouse", None)
    if warehouse is None:
        warehouse = request.app.state.warehouse = Warehouse(request.app.state.store)
    return warehouse


def _visible(request: Request, identity: Identity) -> set[tuple[str, str]] | None:
    """Return the (subject, name) a scoped caller sees; None when unscoped."""
    if identity.scope is None:
        return None
    page = request.app.state.store.list(label_selector=identity.scope)
    subjects = {"Host": "host", "VirtualMachine": "vm"}
    return {(subjects[o.kind], o.name) for o in page.items if o.kind in subjects}


def warehouse_router() -> APIRouter:
    """Return the routes of the warehouse views (roll-ups and raw samples)."""
    router = APIRouter(prefix="/api/v1/history", tags=["history"], responses=ERRORS)

    @router.get("/rollups", operation_id="list_history_rollups", summary="Hourly/daily roll-ups")
    async def list_rollups(
        request: Request,
        identity: Reader,
        period: Period = Period.HOUR,
        subject: Subject | None = None,
        name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> JSONResponse:
        start, end = _window(since, until)
        rows = await run_in_threadpool(
            _warehouse(request).rollups, period, start, end, subject, name
        )
        visible = await run_in_threadpool(_visible, request, identity)
        if visible is not None:
            rows = [r for r in rows if (r.subject.value, r.name) in visible]
        return JSONResponse({"kind": "RollupList", "items": rollups_json(rows)})

    @router.get("/samples", operation_id="list_history_samples", summary="Raw samples")
    async def list_samples(
        request: Request,
        identity: Reader,
        subject: Subject | None = None,
        name: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_SAMPLES)] = 10_000,
    ) -> JSONResponse:
        start, end = _window(since, until)
        rows = await run_in_threadpool(_warehouse(request).samples, start, end, subject, name)
        visible = await run_in_threadpool(_visible, request, identity)
        if visible is not None:
            rows = [s for s in rows if (s.subject.value, s.name) in visible]
        items: list[dict[str, Any]] = [
            {
                "subject": s.subject.value,
                "name": s.name,
                "at": s.at.isoformat(),
                "host": s.host,
                "running": s.running,
                "cpuPct": s.cpu_pct,
                "memoryPct": s.memory_pct,
                "memoryMiB": s.memory_mib,
                "ioBps": s.io_bps,
                "netBps": s.net_bps,
                "configVersion": s.config_version,
            }
            for s in rows[:limit]
        ]
        return JSONResponse({"kind": "SampleList", "items": items})

    return router
