"""The REST API application: create_app(store, tokens) -> FastAPI.

Everything but GET /healthz needs a bearer token (see tokens.py); what a token may
do is its role's verbs (rbac.py) within its label scope.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Annotated, Any

from fastapi import Depends, FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.api.actions import action_router
from controller.api.auth import require
from controller.api.bodies import MAX_BODY_BYTES
from controller.api.console import console_router
from controller.api.errors import (
    INTERNAL,
    TOO_LARGE,
    ApiError,
    api_error_handler,
    from_store_error,
    http_error_handler,
    request_validation_handler,
    status_body,
)
from controller.api.history import history_router
from controller.api.metrics import CONTENT_TYPE, ControllerMetrics
from controller.api.objects import ObjectService
from controller.api.openapi import custom_openapi
from controller.api.rbac import ROLE_VERBS, Identity, Verb
from controller.api.routes import API_PREFIX, object_routers
from controller.api.tokens import TokenStore
from controller.api.warehouse import warehouse_router
from controller.api.watch import watch_router
from controller.store import Store, StoreError, StoreUnavailable
from nodeagent.bodylimit import BodySizeLimit
from schemas.kinds import KINDS, PLURALS, SHORT_NAMES
from schemas.meta import API_VERSION

log = logging.getLogger(__name__)
API_TITLE = "Corral API"
Reader = Annotated[Identity, Depends(require(Verb.READ))]
API_SEMVER = "1.0.0"


class RequestMetrics:
    """ASGI middleware counting requests by method, route template and status."""

    def __init__(self, app: ASGIApp, metrics: ControllerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.monotonic()
        code = 500

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", "unmatched")
            self.metrics.observe_request(scope["method"], template, code, time.monotonic() - start)


@functools.cache
def api_routes() -> tuple[BaseRoute, ...]:
    """Return the /api/v1 routes, built once per process.

    Routes hold no state of their own (handlers read the store from `app.state`), and
    FastAPI's analysis of ~90 routes takes a noticeable part of a second, so every
    app shares them.
    """
    routers = [
        *object_routers(),
        action_router(),
        history_router(),
        watch_router(),
        console_router(),
        warehouse_router(),
    ]
    return tuple(route for router in routers for route in router.routes)


async def _store_error_handler(_request: Any, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StoreError)
    if isinstance(exc, StoreUnavailable):
        body = status_body(503, "StoreUnavailable", "the database is unavailable; retry later")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
    try:
        error = from_store_error(exc)
    except StoreError:
        log.exception("store error")
        return JSONResponse(status_body(500, INTERNAL, "internal store error"), status_code=500)
    return JSONResponse(error.to_json(), status_code=error.code, headers=error.headers)


async def _internal_error_handler(_request: Any, exc: Exception) -> JSONResponse:
    log.error("unhandled error", exc_info=exc)
    return JSONResponse(
        status_body(500, INTERNAL, "internal error; it was logged"), status_code=500
    )


def create_app(
    store: Store,
    tokens: TokenStore,
    *,
    controller: Any = None,
    metrics: ControllerMetrics | None = None,
) -> FastAPI:
    """Return the API app serving `store`; `controller` (optional) is woken on writes."""
    app = FastAPI(
        title=API_TITLE,
        version=API_SEMVER,
        description="Corral's REST API: desired objects, status, actions, watch, history.",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    metrics = metrics or ControllerMetrics(store)
    app.state.store = store
    app.state.tokens = tokens
    app.state.controller = controller
    app.state.metrics = metrics
    app.state.objects = ObjectService(store, controller.trigger if controller else None)
    app.add_exception_handler(ApiError, api_error_handler)
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
    app.add_exception_handler(StoreError, _store_error_handler)
    app.add_exception_handler(Exception, _internal_error_handler)
    app.add_middleware(RequestMetrics, metrics=metrics)
    app.add_middleware(
        BodySizeLimit,
        max_bytes=MAX_BODY_BYTES,
        error_body=lambda message: status_body(413, TOO_LARGE, message),
    )

    @app.get("/healthz", tags=["meta"], operation_id="healthz", summary="Liveness (no token)")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/metrics",
        tags=["meta"],
        operation_id="metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"description": "Exposition text", "content": {"text/plain": {}}}},
    )
    def metrics_endpoint(identity: Reader) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @app.get(
        f"{API_PREFIX}/openapi.json",
        tags=["meta"],
        operation_id="openapi",
        summary="This API's OpenAPI document",
        include_in_schema=False,
    )
    def openapi_document(identity: Reader) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get(API_PREFIX, tags=["meta"], operation_id="discovery", summary="Kinds served")
    def discovery(identity: Reader) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "resources": [
                {"kind": kind, "plural": PLURALS[kind], "shortNames": SHORT_NAMES[kind]}
                for kind in KINDS
            ],
        }

    @app.get(f"{API_PREFIX}/whoami", tags=["meta"], operation_id="whoami", summary="The caller")
    def whoami(identity: Reader) -> dict[str, Any]:
        return {
            "name": identity.name,
            "role": identity.role.value,
            "verbs": sorted(v.value for v in ROLE_VERBS[identity.role]),
            "scope": identity.scope.describe() if identity.scope else None,
        }

    app.router.routes.extend(api_routes())
    from controller.dashboard import mount_dashboard

    mount_dashboard(app)
    app.openapi = lambda: custom_openapi(app)  # type: ignore[method-assign]
    return app
