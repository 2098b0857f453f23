"""What the sync and async clients share: the routes they call and how answers decode.

`ROUTES` lists every (method, path) the SDK uses; a test checks each against the
API's committed OpenAPI document, so SDK and server cannot drift apart silently.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from corral_sdk.errors import error_from
from schemas.kinds import KINDS, PLURALS, AnyResource

T = TypeVar("T", bound=AnyResource)

PREFIX = "/api/v1"
MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"

ROUTES: tuple[tuple[str, str], ...] = (
    *(
        (method, f"{PREFIX}/{plural}{suffix}")
        for plural in PLURALS.values()
        for method, suffix in (
            ("get", ""),
            ("post", ""),
            ("get", "/{name}"),
            ("put", "/{name}"),
            ("patch", "/{name}"),
            ("delete", "/{name}"),
            ("get", "/{name}/status"),
            ("get", "/{name}/events"),
        )
    ),
    ("post", f"{PREFIX}/virtualmachines/{{name}}/migrate"),
    ("post", f"{PREFIX}/hosts/{{name}}/drain"),
    ("post", f"{PREFIX}/hosts/{{name}}/undrain"),
    ("post", f"{PREFIX}/{{plural}}/{{name}}/release"),
    ("post", f"{PREFIX}/reconcile"),
    ("get", f"{PREFIX}/watch"),
    ("get", f"{PREFIX}/events"),
    ("get", f"{PREFIX}/plans"),
    ("get", f"{PREFIX}/plans/{{plan_id}}"),
    ("get", f"{PREFIX}/whoami"),
    ("get", "/healthz"),
)


@dataclass(frozen=True)
class WatchEvent:
    """One change from the watch stream; `object` is set for object and status changes."""

    seq: int
    topic: str
    op: str
    kind: str
    name: str
    resource_version: int | None
    object: AnyResource | None = None
    expired: bool = False


def decode(response_status: int, body: Any) -> Any:
    """Return the body of a successful answer; raise the SDK error of a failed one."""
    if response_status >= 400:
        raise error_from(response_status, body)
    return body


def body_of(obj: AnyResource | dict[str, Any]) -> dict[str, Any]:
    """Return the JSON an object is sent as."""
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    return dict(obj)


def to_model(kind: str, doc: dict[str, Any]) -> AnyResource:
    """Return the schema model of an object the API returned."""
    return KINDS[kind].model_validate(doc)


class SseParser:
    """Reads a server-sent event stream line by line; comments are skipped."""

    def __init__(self) -> None:
        self.event: str | None = None
        self.data: dict[str, Any] | None = None

    def feed(self, line: str) -> tuple[str, dict[str, Any]] | None:
        """Take one line; return (event, data) when it ends a message, else None."""
        if line.startswith(":"):
            return None
        if line.startswith("event: "):
            self.event = line[7:]
        elif line.startswith("data: "):
            self.data = json.loads(line[6:])
        elif line == "" and self.event is not None:
            message = (self.event, self.data or {})
            self.event, self.data = None, None
            return message
        return None


def parse_sse(lines: Iterable[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (event, data) of a server-sent event stream, skipping comments."""
    parser = SseParser()
    for line in lines:
        if message := parser.feed(line):
            yield message


def watch_event(event: str, data: dict[str, Any]) -> WatchEvent:
    """Return the WatchEvent of one SSE message."""
    if event == "expired":
        return WatchEvent(int(data.get("since", 0)), "expired", "expired", "", "", None, None, True)
    obj = data.get("object")
    model = to_model(data["kind"], obj) if obj and data["kind"] in KINDS else None
    return WatchEvent(
        data["seq"],
        data["topic"],
        data["op"],
        data["kind"],
        data["name"],
        data.get("resourceVersion"),
        model,
    )


def condition_holds(obj: AnyResource | None, condition: str, status: str) -> bool:
    """Return whether the object's status has `condition` with `status`."""
    if obj is None or obj.status is None:
        return False
    found = obj.status.condition(condition)
    return found is not None and found.status.value == status


def patch_request(merge: dict[str, Any] | None, json_patch: list[Any] | None) -> tuple[Any, str]:
    """Return (body, content type) of a patch; exactly one of the two must be given."""
    if (merge is None) == (json_patch is None):
        raise ValueError("give exactly one of merge= (a merge patch) or json_patch= (RFC 6902)")
    return (merge, MERGE_PATCH) if merge is not None else (json_patch, JSON_PATCH)


class KindInfo(Generic[T]):
    """A kind's name, plural and model for a typed resource client."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.plural = PLURALS[kind]
        self.path = f"{PREFIX}/{self.plural}"

    def model(self, doc: dict[str, Any]) -> T:
        return to_model(self.kind, doc)  # type: ignore[return-value]
