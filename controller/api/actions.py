"""Actions that are not plain state, as in oVirt's API: migrate, drain, reconcile, release."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from controller.api.auth import require
from controller.api.bodies import read_json
from controller.api.errors import INVALID, NOT_FOUND, ApiError, Detail, validation_details
from controller.api.objects import ObjectService
from controller.api.rbac import Identity, Verb
from controller.api.routes import API_PREFIX, ERRORS, _json, _ref, service
from controller.store import NotFound
from schemas.kinds import PLURALS
from schemas.meta import Name

MIGRATE_REQUESTED = "MigrateRequested"
"""An operator asked through the API for a VM to move to a host."""
DRAIN_REQUESTED = "DrainRequested"
"""An operator put a host in maintenance through the API: its VMs move off."""
UNDRAIN_REQUESTED = "UndrainRequested"
"""An operator took a host out of maintenance through the API."""
RECONCILE_REQUESTED = "ReconcileRequested"
"""An operator asked for a reconcile pass now."""

Operator = Annotated[Identity, Depends(require(Verb.ACTION))]
Service = Annotated[ObjectService, Depends(service)]
DryRun = Annotated[bool, Query(alias="dryRun")]


class MigrateRequest(BaseModel):
    """Where to move the VM: it is pinned there (spec.placement.host) until changed."""

    model_config = ConfigDict(extra="forbid")
    host: Name = Field(description="The target host's name")


def _pin(host: str) -> Any:
    def change(doc: dict[str, Any]) -> None:
        placement = doc["spec"].setdefault("placement", {})
        placement["host"] = host

    return change


def _maintenance(on: bool) -> Any:
    def change(doc: dict[str, Any]) -> None:
        doc["spec"]["maintenance"] = on

    return change


def action_router() -> APIRouter:
    """Return the action routes."""
    router = APIRouter(prefix=API_PREFIX, tags=["actions"])
    written = _written("VirtualMachine")

    @router.post(
        "/virtualmachines/{name}/migrate",
        operation_id="migrate_virtualmachines",
        summary="Move a VM to a host (pins spec.placement.host)",
        responses={**written, **ERRORS},
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("MigrateRequest")}},
            }
        },
    )
    async def migrate(
        name: str, request: Request, identity: Operator, objects: Service, dry_run: DryRun = False
    ) -> JSONResponse:
        doc = await read_json(request)
        try:
            body = MigrateRequest.model_validate(doc)
        except ValidationError as exc:
            details = validation_details(exc)
            message = f"migrate: {details[0].field}: {details[0].message}"
            raise ApiError(422, INVALID, message, details) from exc

        def run() -> dict[str, Any]:
            try:
                objects.store.get("Host", body.host)
            except NotFound:
                raise ApiError(
                    404, NOT_FOUND, f"Host/{body.host} not found", (Detail("host", "no such host"),)
                ) from None
            return objects.update_spec(
                identity,
                "VirtualMachine",
                name,
                _pin(body.host),
                MIGRATE_REQUESTED,
                f"asked to move to {body.host}",
                dry_run=dry_run,
            ).body

        return JSONResponse(await run_in_threadpool(run))

    for path, on, reason, verb in (
        ("drain", True, DRAIN_REQUESTED, "put in maintenance"),
        ("undrain", False, UNDRAIN_REQUESTED, "taken out of maintenance"),
    ):
        _host_action(router, path, on, reason, verb)

    @router.post(
        "/{plural}/{name}/release",
        operation_id="release_object",
        summary="Hand an object the API took over back to its source",
        responses={200: _json({"type": "object"}, "The object as returned"), **ERRORS},
    )
    def release(plural: str, name: str, identity: Operator, objects: Service) -> JSONResponse:
        kind = next((k for k, p in PLURALS.items() if p == plural), None)
        if kind is None:
            raise ApiError(404, NOT_FOUND, f"no kind is called {plural!r}")
        return JSONResponse(objects.release(identity, kind, name).body)

    @router.post(
        "/reconcile",
        operation_id="reconcile",
        summary="Ask the controller for a reconcile pass now",
        responses={202: _json({"type": "object"}, "Requested"), **ERRORS},
        status_code=202,
    )
    def reconcile(request: Request, identity: Operator, objects: Service) -> JSONResponse:
        objects.store.record_event(
            "Controller",
            "controller",
            "Normal",
            RECONCILE_REQUESTED,
            f"{identity.name} asked for a reconcile pass through the API",
            component="api",
            identity=identity.name,
        )
        controller = getattr(request.app.state, "controller", None)
        if controller is not None:
            controller.trigger()
        return JSONResponse(
            {"requested": True, "revision": objects.store.revision()}, status_code=202
        )

    return router


def _written(kind: str) -> dict[int | str, dict[str, Any]]:
    """Return the 200 response of an action that writes an object of `kind` (or dry-runs)."""
    return {200: _json({"anyOf": [_ref(kind), _ref("DryRun")]}, f"The {kind} as written")}


def _host_action(router: APIRouter, path: str, on: bool, reason: str, verb: str) -> None:
    @router.post(
        f"/hosts/{{name}}/{path}",
        operation_id=f"{path}_hosts",
        summary=f"Set the host's spec.maintenance to {str(on).lower()}",
        responses={**_written("Host"), **ERRORS},
    )
    def host_action(
        name: str, identity: Operator, objects: Service, dry_run: DryRun = False
    ) -> JSONResponse:
        return JSONResponse(
            objects.update_spec(
                identity, "Host", name, _maintenance(on), reason, verb, dry_run=dry_run
            ).body
        )
