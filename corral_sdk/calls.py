"""Every SDK request as data: method, path, params, body, headers and how to parse the answer.

The sync and async clients send the same `Call`s and differ only in how they wait
for the answer, so a resource method is one line in each flavour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from corral_sdk.core import PREFIX, KindInfo, T, body_of, condition_holds, patch_request
from corral_sdk.errors import WaitTimeout
from schemas import Host, VirtualMachine
from schemas.kinds import AnyResource

R = TypeVar("R")

WAIT_TOPICS = "object,status"
"""What a wait watches: changes of the object and of its status."""


def _same(doc: Any) -> Any:
    return doc


def _items(doc: Any) -> Any:
    return doc["items"]


def _nothing(_doc: Any) -> None:
    return None


@dataclass(frozen=True)
class Call(Generic[R]):
    """One request and the parser of its decoded JSON answer."""

    method: str
    path: str
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None
    parse: Callable[[Any], R] = field(default=_same)

    def options(self) -> dict[str, Any]:
        """Return the httpx request keywords this call sets."""
        found = {"params": self.params, "json": self.json, "headers": self.headers}
        return {key: value for key, value in found.items() if value is not None}


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: its objects and the token of the next page (None at the end)."""

    items: list[T]
    next_token: str | None


class ResourceCalls(KindInfo[T]):
    """The calls of one kind's resource client."""

    def page(self, selector: str | None, page_size: int, token: str | None) -> Call[Page[T]]:
        params: dict[str, Any] = {"limit": page_size}
        if selector:
            params["labelSelector"] = selector
        if token:
            params["continue"] = token
        return Call("GET", self.path, params=params, parse=self._page)

    def _page(self, doc: dict[str, Any]) -> Page[T]:
        items = [self.model(item) for item in doc["items"]]
        return Page(items, doc["metadata"].get("continue"))

    def get(self, name: str) -> Call[T]:
        return Call("GET", f"{self.path}/{name}", parse=self.model)

    def create(self, obj: T | dict[str, Any]) -> Call[T]:
        return Call("POST", self.path, json=body_of(obj), parse=self.model)

    def replace(self, obj: T, force: bool) -> Call[T]:
        params = {"force": "true"} if force else None
        path = f"{self.path}/{obj.metadata.name}"
        return Call("PUT", path, params=params, json=body_of(obj), parse=self.model)

    def patch(
        self, name: str, merge: dict[str, Any] | None, json_patch: list[dict[str, Any]] | None
    ) -> Call[T]:
        body, content_type = patch_request(merge, json_patch)
        headers = {"content-type": content_type}
        return Call("PATCH", f"{self.path}/{name}", json=body, headers=headers, parse=self.model)

    def delete(self, name: str, resource_version: int | None) -> Call[None]:
        params = {"resourceVersion": resource_version} if resource_version else None
        return Call("DELETE", f"{self.path}/{name}", params=params, parse=_nothing)

    def dry_run(self, doc: dict[str, Any], exists: bool) -> Call[dict[str, Any]]:
        """Return the dry run of replacing (`exists`) or creating the object `doc`."""
        params = {"dryRun": "true"}
        if exists:
            return Call("PUT", f"{self.path}/{doc['metadata']['name']}", params=params, json=doc)
        return Call("POST", self.path, params=params, json=doc)

    def status(self, name: str) -> Call[dict[str, Any] | None]:
        return Call("GET", f"{self.path}/{name}/status")

    def events(self, name: str) -> Call[list[dict[str, Any]]]:
        return Call("GET", f"{self.path}/{name}/events", parse=_items)

    def release(self, name: str) -> Call[T]:
        return Call("POST", f"{PREFIX}/{self.plural}/{name}/release", parse=self.model)


def migrate(name: str, host: str) -> Call[VirtualMachine]:
    path = f"{PREFIX}/virtualmachines/{name}/migrate"
    return Call("POST", path, json={"host": host}, parse=VirtualMachine.model_validate)


def host_action(name: str, action: str) -> Call[Host]:
    """Return the call of a host action: `drain` or `undrain`."""
    return Call("POST", f"{PREFIX}/hosts/{name}/{action}", parse=Host.model_validate)


def whoami() -> Call[dict[str, Any]]:
    return Call("GET", f"{PREFIX}/whoami")


def reconcile() -> Call[dict[str, Any]]:
    return Call("POST", f"{PREFIX}/reconcile")


def events(kind: str | None, name: str | None, limit: int) -> Call[list[dict[str, Any]]]:
    params = {k: v for k, v in {"kind": kind, "name": name, "limit": limit}.items() if v}
    return Call("GET", f"{PREFIX}/events", params=params, parse=_items)


def plans(limit: int) -> Call[list[dict[str, Any]]]:
    return Call("GET", f"{PREFIX}/plans", params={"limit": limit}, parse=_items)


def watch_params(
    kind: str | None, name: str | None, since: int | None, timeout_s: float, topics: str | None
) -> dict[str, Any]:
    """Return the query of a watch stream (the server ends it after at most an hour)."""
    params: dict[str, Any] = {"timeoutSeconds": min(timeout_s, 3600)}
    for key, value in (("kind", kind), ("name", name), ("since", since), ("topics", topics)):
        if value is not None:
            params[key] = value
    return params


def client_options(url: str, token: str, verify: Any, timeout_s: float) -> dict[str, Any]:
    """Return the httpx client keywords both flavours use."""
    headers = {"Authorization": f"Bearer {token}"}
    return {"base_url": url, "headers": headers, "verify": verify, "timeout": timeout_s}


class Wait:
    """The bookkeeping of `wait`: the deadline, the last object seen, the timeout error."""

    def __init__(self, kind: str, name: str, condition: str, status: str, timeout: float) -> None:
        self.kind, self.name = kind, name
        self.condition, self.status, self.timeout = condition, status, timeout
        self.deadline = time.monotonic() + timeout
        self.last: AnyResource | None = None

    def remaining_s(self) -> float | None:
        """Return how long the next watch may last (at least 0.5 s); None once past due."""
        if time.monotonic() >= self.deadline:
            return None
        return max(0.5, self.deadline - time.monotonic())

    def holds(self, obj: AnyResource | None) -> bool:
        """Record `obj` (when set) as the last seen; return whether it meets the condition."""
        if obj is None:
            return False
        self.last = obj
        return condition_holds(obj, self.condition, self.status)

    def timed_out(self) -> WaitTimeout:
        message = f"{self.kind}/{self.name}: {self.condition} is not {self.status}"
        return WaitTimeout(f"{message} after {self.timeout:.0f}s", self.last)
