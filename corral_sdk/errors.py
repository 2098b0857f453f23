"""The SDK's errors: one class per API reason, carrying the Status body's fields."""

from __future__ import annotations

from typing import Any


class CorralError(Exception):
    """Base of every SDK error."""


class ApiError(CorralError):
    """The API answered with an error Status: `status`, `reason`, `message`, `details`."""

    def __init__(self, status: int, reason: str, message: str, details: list[dict[str, Any]]):
        self.status = status
        self.reason = reason
        self.message = message
        self.details = details
        fields = ", ".join(d.get("field", "") for d in details if d.get("field"))
        super().__init__(f"{status} {reason}: {message}" + (f" [{fields}]" if fields else ""))


class Unauthorized(ApiError):
    """401: no valid token."""


class Forbidden(ApiError):
    """403: the token's role or scope does not allow it."""


class NotFound(ApiError):
    """404: no such object (or outside the token's scope)."""


class Conflict(ApiError):
    """409 Conflict: the resourceVersion moved, or the object exists already."""


class OwnedBySource(Conflict):
    """409 OwnedBySource: a git, directory or Kubernetes source owns the object."""


class Invalid(ApiError):
    """422: the object does not validate; `details` name the fields."""


class WaitTimeout(CorralError):
    """wait() gave up: the condition did not hold in time. `last` is the last object seen."""

    def __init__(self, message: str, last: Any) -> None:
        self.last = last
        super().__init__(message)


_BY_STATUS: dict[int, type[ApiError]] = {
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
}


def error_from(status: int, body: Any) -> ApiError:
    """Return the SDK error of an error response."""
    if not isinstance(body, dict):
        body = {"reason": "Unknown", "message": str(body)[:200], "details": []}
    reason = str(body.get("reason", "Unknown"))
    cls = OwnedBySource if reason == "OwnedBySource" else _BY_STATUS.get(status, ApiError)
    return cls(status, reason, str(body.get("message", "")), list(body.get("details") or []))
