"""/api/v1/<plural> routes for every kind: list, get, create, replace, patch, delete, status."""

from __future__ import annotations

import typing
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from controller.api.auth import require
from controller.api.bodies import JSON_PATCH, MERGE_PATCH, read_json
from controller.api.errors import BAD_REQUEST, METHOD_NOT_ALLOWED, ApiError, Detail
from controller.api.objects import ObjectService
from controller.api.rbac import Identity, Verb
from controller.api.selectors import SelectorError, parse_selector
from controller.api.serialize import list_bytes, object_json
from controller.store import InvalidInput
from schemas.kinds import KINDS, PLURALS

API_PREFIX = "/api/v1"
MAX_PAGE = 10_000

Reader = Annotated[Identity, Depends(require(Verb.READ))]
Writer = Annotated[Identity, Depends(require(Verb.WRITE))]
DryRun = Annotated[
    bool, Query(alias="dryRun", description="Validate and return the plan; write nothing")
]
Force = Annotated[bool, Query(description="Take the object over from its source (admin only)")]
NamePath = Annotated[str, "the object's name"]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS: dict[int | str, dict[str, Any]] = {
    code: _json(_ref("Status"), text)
    for code, text in (
        (400, "Malformed request"),
        (401, "No valid token"),
        (403, "Role or scope forbids it"),
        (404, "Not found"),
        (409, "Conflict or owned by a source"),
        (413, "Body too large"),
        (415, "Unsupported patch type"),
        (422, "Invalid object"),
    )
}


def service(request: Request) -> ObjectService:
    """Return the app's ObjectService."""
    return request.app.state.objects


Service = Annotated[ObjectService, Depends(service)]


def kind_router(kind: str) -> APIRouter:
    """Return the routes of one kind under /api/v1/<plural>."""
    plural = PLURALS[kind]
    router = APIRouter(prefix=f"{API_PREFIX}/{plural}", tags=[kind])
    one = _ref(kind)
    body = {"requestBody": {"required": True, "content": {"application/json": {"schema": one}}}}
    patch_body = {
        "requestBody": {
            "required": True,
            "content": {
                MERGE_PATCH: {"schema": {"type": "object"}},
                JSON_PATCH: {"schema": {"type": "array", "items": {"type": "object"}}},
            },
        }
    }
    written = {
        200: _json({"anyOf": [one, _ref("DryRun")]}, f"The {kind} as stored, or the dry run")
    }

    @router.get(
        "",
        operation_id=f"list_{plural}",
        summary=f"List {plural}",
        responses={200: _json(_ref(f"{kind}List"), f"A page of {plural}"), **ERRORS},
    )
    def list_objects(
        identity: Reader,
        objects: Service,
        label_selector: Annotated[
            str | None, Query(alias="labelSelector", description="kubectl form: app=web,tier!=db")
        ] = None,
        limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
        continue_token: Annotated[str | None, Query(alias="continue")] = None,
    ) -> JSONResponse:
        try:
            selector = parse_selector(label_selector)
        except SelectorError as exc:
            raise ApiError(
                400, BAD_REQUEST, str(exc), (Detail("labelSelector", str(exc)),)
            ) from exc
        revision = objects.store.revision()
        try:
            page = objects.list(identity, kind, selector, limit, continue_token)
        except InvalidInput as exc:
            message = f"continue: {exc}"
            raise ApiError(400, BAD_REQUEST, message, (Detail("continue", message),)) from exc
        return Response(list_bytes(kind, page, revision), media_type="application/json")

    @router.post(
        "",
        operation_id=f"create_{plural}",
        summary=f"Create a {kind}",
        status_code=201,
        responses={201: _json(one, "Created"), **written, **ERRORS},
        openapi_extra=body,
    )
    async def create_object(
        request: Request, identity: Writer, objects: Service, dry_run: DryRun = False
    ) -> JSONResponse:
        doc = await read_json(request)
        result = await run_in_threadpool(objects.create, identity, kind, doc, dry_run=dry_run)
        return JSONResponse(result.body, status_code=200 if dry_run else 201)

    @router.get(
        "/{name}",
        operation_id=f"get_{plural}",
        summary=f"Get a {kind}",
        responses={200: _json(one, f"The {kind}"), **ERRORS},
    )
    def get_object(name: str, identity: Reader, objects: Service) -> JSONResponse:
        return JSONResponse(object_json(objects.get(identity, kind, name)))

    @router.put(
        "/{name}",
        operation_id=f"replace_{plural}",
        summary=f"Replace a {kind}",
        responses={**written, **ERRORS},
        openapi_extra=body,
    )
    async def replace_object(
        name: str,
        request: Request,
        identity: Writer,
        objects: Service,
        dry_run: DryRun = False,
        force: Force = False,
    ) -> JSONResponse:
        doc = await read_json(request)
        result = await run_in_threadpool(
            objects.replace, identity, kind, name, doc, dry_run=dry_run, force=force
        )
        return JSONResponse(result.body)

    @router.patch(
        "/{name}",
        operation_id=f"patch_{plural}",
        summary=f"Patch a {kind} (merge patch or JSON patch)",
        responses={**written, **ERRORS},
        openapi_extra=patch_body,
    )
    async def patch_object(
        name: str,
        request: Request,
        identity: Writer,
        objects: Service,
        dry_run: DryRun = False,
        force: Force = False,
    ) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        patch = await read_json(request)
        result = await run_in_threadpool(
            objects.patch, identity, kind, name, patch, content_type, dry_run=dry_run, force=force
        )
        return JSONResponse(result.body)

    @router.delete(
        "/{name}",
        operation_id=f"delete_{plural}",
        summary=f"Delete a {kind}",
        responses={**written, **ERRORS},
    )
    def delete_object(
        name: str,
        identity: Writer,
        objects: Service,
        resource_version: Annotated[int | None, Query(alias="resourceVersion", ge=1)] = None,
        dry_run: DryRun = False,
        force: Force = False,
    ) -> JSONResponse:
        result = objects.delete(
            identity, kind, name, resource_version, dry_run=dry_run, force=force
        )
        return JSONResponse(result.body)

    status_name = status_model(kind).__name__

    @router.get(
        "/{name}/status",
        operation_id=f"get_{plural}_status",
        summary=f"Get a {kind}'s status (written only by the controller)",
        responses={
            200: _json(
                {"anyOf": [_ref(status_name), {"type": "null"}]},
                "The status, or null before the first pass",
            ),
            **ERRORS,
        },
    )
    def get_status(name: str, identity: Reader, objects: Service) -> JSONResponse:
        stored = objects.get(identity, kind, name)
        status = stored.obj.status
        return JSONResponse(
            status.model_dump(mode="json", by_alias=True, exclude_none=True) if status else None
        )

    def read_only(name: str, identity: Writer) -> JSONResponse:
        raise ApiError(
            405,
            METHOD_NOT_ALLOWED,
            f"{kind}/{name}: status is written only by the controller",
            (Detail("status", "read-only", "read_only"),),
        )

    router.add_api_route(
        "/{name}/status",
        read_only,
        methods=["PUT", "PATCH"],
        include_in_schema=False,
    )
    return router


def status_model(kind: str) -> type:
    """Return the status model class of a kind (VirtualMachineStatus, ...)."""
    annotation = KINDS[kind].model_fields["status"].annotation
    return next(a for a in typing.get_args(annotation) if a is not type(None))


def object_routers() -> list[APIRouter]:
    """Return a router per kind."""
    return [kind_router(kind) for kind in KINDS]
