"""The API's error shape: every 4xx/5xx body is a machine-readable Status.

    {"kind": "Status", "code": 409, "reason": "Conflict", "message": "...",
     "details": [{"field": "metadata.resourceVersion", "message": "...", "type": "..."}]}

`reason` is a CamelCase constant a client can branch on; `message` is a sentence a
person can act on; `details` name the offending field paths. Store errors and
pydantic validation errors are mapped here, where they enter the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from controller.store import Conflict, InvalidInput, NotFound, OwnedElsewhere, StoreBusy

BAD_REQUEST = "BadRequest"
"""The request is malformed: not JSON, a bad query parameter, a bad patch."""
INVALID = "Invalid"
"""The object does not validate against its kind's schema; `details` name the fields."""
UNAUTHORIZED = "Unauthorized"
"""No token, or a token that is unknown, malformed or revoked."""
FORBIDDEN = "Forbidden"
"""The token's role or label scope does not allow this request."""
NOT_FOUND = "NotFound"
"""No such object (or it lies outside the token's scope)."""
CONFLICT = "Conflict"
"""The resourceVersion given is not the stored one, or the object already exists."""
OWNED_BY_SOURCE = "OwnedBySource"
"""The object belongs to a git, directory or Kubernetes source; change it there."""
METHOD_NOT_ALLOWED = "MethodNotAllowed"
"""The path exists but not with this method (status is read-only, for instance)."""
TOO_LARGE = "RequestEntityTooLarge"
"""The body is above the API's size limit."""
UNSUPPORTED_MEDIA_TYPE = "UnsupportedMediaType"
"""The PATCH content type is neither merge patch nor JSON patch."""
BUSY = "StoreBusy"
"""The database was busy; retry the request."""
INTERNAL = "InternalError"
"""An unexpected error; it is logged with a traceback."""

_REASON_BY_CODE = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    403: FORBIDDEN,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    409: CONFLICT,
    413: TOO_LARGE,
    415: UNSUPPORTED_MEDIA_TYPE,
    422: INVALID,
    503: BUSY,
}


@dataclass(frozen=True)
class Detail:
    """One problem with one field: its dotted path, a message, a machine-readable type."""

    field: str
    message: str
    type: str = "invalid"

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "type": self.type}


@dataclass
class ApiError(Exception):
    """An error the API answers with a Status body of `code`."""

    code: int
    reason: str
    message: str
    details: Sequence[Detail] = field(default_factory=tuple)
    headers: dict[str, str] | None = None

    def __str__(self) -> str:
        return self.message

    def to_json(self) -> dict[str, Any]:
        """Return the Status body."""
        return status_body(self.code, self.reason, self.message, self.details)


def status_body(
    code: int, reason: str, message: str, details: Sequence[Detail] = ()
) -> dict[str, Any]:
    """Return a Status document."""
    return {
        "kind": "Status",
        "code": code,
        "reason": reason,
        "message": message,
        "details": [d.to_json() for d in details],
    }


def field_path(loc: Sequence[Any], prefix: str = "") -> str:
    """Return a pydantic location as a dotted path: ("spec", "disks", 1, "size") ->
    "spec.disks[1].size"."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif str(part).startswith(("function-", "model_")) or part in ("json-or-python",):
            continue
        else:
            path = f"{path}.{part}" if path else str(part)
    return path or "(body)"


def validation_details(exc: ValidationError, prefix: str = "") -> list[Detail]:
    """Return one Detail per pydantic error, keeping its location and type."""
    return [
        Detail(field_path(err["loc"], prefix), err["msg"], err["type"])
        for err in exc.errors(include_url=False)
    ]


def invalid(kind: str, name: str | None, exc: ValidationError) -> ApiError:
    """Return the 422 for an object that does not validate."""
    details = validation_details(exc)
    what = f"{kind}/{name}" if name else kind
    first = details[0] if details else None
    summary = f"{first.field}: {first.message}" if first else "invalid"
    message = f"{what} is invalid ({len(details)} errors); first: {summary}"
    return ApiError(422, INVALID, message, details)


def from_store_error(exc: Exception) -> ApiError:
    """Return the API error of a store error."""
    if isinstance(exc, NotFound):
        return ApiError(404, NOT_FOUND, f"{exc.kind}/{exc.name} not found")
    if isinstance(exc, Conflict):
        return ApiError(
            409, CONFLICT, str(exc), (Detail("metadata.resourceVersion", str(exc), "conflict"),)
        )
    if isinstance(exc, OwnedElsewhere):
        return owned_by_source(exc.kind, exc.name, exc.owner)
    if isinstance(exc, InvalidInput):
        return ApiError(400, BAD_REQUEST, str(exc), (Detail(exc.field, str(exc), "invalid"),))
    if isinstance(exc, StoreBusy):
        return ApiError(
            503, BUSY, f"the database is busy, retry: {exc}", headers={"Retry-After": "1"}
        )
    raise exc


def owned_by_source(kind: str, name: str, owner: str) -> ApiError:
    """Return the 409 for writing an object another source owns."""
    return ApiError(
        409,
        OWNED_BY_SOURCE,
        f"{kind}/{name} is owned by source {owner!r}: change it there, or pass ?force=true "
        "(admin) to take it over for the API",
        (Detail("metadata.annotations[corral.dev/source]", f"owned by {owner}", "owned"),),
    )


async def api_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse(exc.to_json(), status_code=exc.code, headers=exc.headers)


async def request_validation_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Query and path parameters that do not parse: 400 naming the parameter."""
    assert isinstance(exc, RequestValidationError)
    details = [Detail(field_path(e["loc"]), e["msg"], e["type"]) for e in exc.errors()]
    first = details[0] if details else Detail("(request)", "invalid")
    body = status_body(400, BAD_REQUEST, f"{first.field}: {first.message}", details)
    return JSONResponse(body, status_code=400)


async def http_error_handler(_request: Request, exc: Exception) -> JSONResponse:
    """Starlette's own 404/405 (unknown path, wrong method) in the Status shape."""
    assert isinstance(exc, StarletteHTTPException)
    reason = _REASON_BY_CODE.get(exc.status_code, BAD_REQUEST)
    body = status_body(exc.status_code, reason, str(exc.detail))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
