"""The asynchronous client: the same resources as `Client`, with `await` and `async for`."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Generic

import httpx

from corral_sdk.client import tls_verify
from corral_sdk.core import (
    PREFIX,
    KindInfo,
    T,
    WatchEvent,
    body_of,
    condition_holds,
    decode,
    patch_request,
    watch_event,
)
from corral_sdk.errors import WaitTimeout
from schemas import (
    AffinityGroup,
    Host,
    Network,
    SchedulingPolicy,
    Snapshot,
    StoragePool,
    Template,
    VirtualMachine,
    Volume,
)


async def _aparse_sse(lines: AsyncIterator[str]) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """Yield (event, data) of a server-sent event stream, skipping comments."""
    event, data = None, None
    async for line in lines:
        if line.startswith(":"):
            continue
        if line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and event is not None:
            yield event, data or {}
            event, data = None, None


class AsyncResources(Generic[T]):
    """The async twin of `Resources`."""

    def __init__(self, client: AsyncClient, kind: str) -> None:
        self._client = client
        self._info: KindInfo[T] = KindInfo(kind)

    async def list(self, selector: str | None = None, page_size: int = 500) -> list[T]:
        """Return every object (matching `selector`), following pages."""
        items: list[T] = []
        token = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if selector:
                params["labelSelector"] = selector
            if token:
                params["continue"] = token
            page = await self._client.request("GET", self._info.path, params=params)
            items += [self._info.model(doc) for doc in page["items"]]
            token = page["metadata"].get("continue")
            if not token:
                return items

    async def get(self, name: str) -> T:
        return self._info.model(await self._client.request("GET", f"{self._info.path}/{name}"))

    async def create(self, obj: T | dict[str, Any]) -> T:
        doc = await self._client.request("POST", self._info.path, json=body_of(obj))
        return self._info.model(doc)

    async def replace(self, obj: T, force: bool = False) -> T:
        params = {"force": "true"} if force else None
        doc = await self._client.request(
            "PUT", f"{self._info.path}/{obj.metadata.name}", json=body_of(obj), params=params
        )
        return self._info.model(doc)

    async def patch(
        self,
        name: str,
        merge: dict[str, Any] | None = None,
        json_patch: list[dict[str, Any]] | None = None,
    ) -> T:
        body, content_type = patch_request(merge, json_patch)
        doc = await self._client.request(
            "PATCH", f"{self._info.path}/{name}", json=body, headers={"content-type": content_type}
        )
        return self._info.model(doc)

    async def delete(self, name: str, resource_version: int | None = None) -> None:
        params = {"resourceVersion": resource_version} if resource_version else None
        await self._client.request("DELETE", f"{self._info.path}/{name}", params=params)

    async def status(self, name: str) -> dict[str, Any] | None:
        return await self._client.request("GET", f"{self._info.path}/{name}/status")

    def watch(
        self, name: str | None = None, since: int | None = None, timeout_s: float = 300.0
    ) -> AsyncIterator[WatchEvent]:
        return self._client.watch(self._info.kind, name, since=since, timeout_s=timeout_s)

    async def wait(
        self, name: str, condition: str = "Ready", status: str = "True", timeout: float = 300.0
    ) -> T:
        """Return the object once its `condition` has `status`; raise WaitTimeout otherwise."""
        deadline = time.monotonic() + timeout
        last: T | None = None
        while time.monotonic() < deadline:
            remaining = max(0.5, deadline - time.monotonic())
            async with self._client.watch_stream(
                self._info.kind, name, None, remaining, topics="object,status"
            ) as events:
                last = await self.get(name)
                if condition_holds(last, condition, status):
                    return last
                async for event in events:
                    if event.expired:
                        break
                    if event.object is not None:
                        last = event.object  # type: ignore[assignment]
                        if condition_holds(last, condition, status):
                            return last  # type: ignore[return-value]
        raise WaitTimeout(
            f"{self._info.kind}/{name}: {condition} is not {status} after {timeout:.0f}s", last
        )


class AsyncVirtualMachines(AsyncResources[VirtualMachine]):
    async def migrate(self, name: str, host: str) -> VirtualMachine:
        path = f"{PREFIX}/virtualmachines/{name}/migrate"
        doc = await self._client.request("POST", path, json={"host": host})
        return VirtualMachine.model_validate(doc)


class AsyncHosts(AsyncResources[Host]):
    async def drain(self, name: str) -> Host:
        doc = await self._client.request("POST", f"{PREFIX}/hosts/{name}/drain")
        return Host.model_validate(doc)

    async def undrain(self, name: str) -> Host:
        doc = await self._client.request("POST", f"{PREFIX}/hosts/{name}/undrain")
        return Host.model_validate(doc)


class AsyncClient:
    """An asynchronous Corral API client (httpx.AsyncClient)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca: str | Path | None = None,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.http = httpx.AsyncClient(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            verify=tls_verify(ca),
            timeout=timeout_s,
            transport=transport,
        )
        self.vms = AsyncVirtualMachines(self, "VirtualMachine")
        self.hosts = AsyncHosts(self, "Host")
        self.networks: AsyncResources[Network] = AsyncResources(self, "Network")
        self.pools: AsyncResources[StoragePool] = AsyncResources(self, "StoragePool")
        self.volumes: AsyncResources[Volume] = AsyncResources(self, "Volume")
        self.templates: AsyncResources[Template] = AsyncResources(self, "Template")
        self.affinity_groups: AsyncResources[AffinityGroup] = AsyncResources(self, "AffinityGroup")
        self.snapshots: AsyncResources[Snapshot] = AsyncResources(self, "Snapshot")
        self.policies: AsyncResources[SchedulingPolicy] = AsyncResources(self, "SchedulingPolicy")

    async def request(self, method: str, path: str, **kw: Any) -> Any:
        response = await self.http.request(method, path, **kw)
        body = response.json() if response.content else None
        return decode(response.status_code, body)

    async def whoami(self) -> dict[str, Any]:
        return await self.request("GET", f"{PREFIX}/whoami")

    async def reconcile(self) -> dict[str, Any]:
        return await self.request("POST", f"{PREFIX}/reconcile")

    @contextlib.asynccontextmanager
    async def watch_stream(
        self,
        kind: str | None,
        name: str | None,
        since: int | None,
        timeout_s: float,
        topics: str | None = None,
    ) -> AsyncIterator[AsyncIterator[WatchEvent]]:
        """Open the watch stream; yield an async iterator of WatchEvents."""
        params: dict[str, Any] = {"timeoutSeconds": min(timeout_s, 3600)}
        for key, value in (("kind", kind), ("name", name), ("since", since), ("topics", topics)):
            if value is not None:
                params[key] = value
        async with self.http.stream("GET", f"{PREFIX}/watch", params=params) as response:
            if response.status_code >= 400:
                await response.aread()
                decode(response.status_code, response.json())

            async def events() -> AsyncIterator[WatchEvent]:
                async for event, data in _aparse_sse(response.aiter_lines()):
                    yield watch_event(event, data)

            yield events()

    async def watch(
        self,
        kind: str | None = None,
        name: str | None = None,
        *,
        since: int | None = None,
        timeout_s: float = 300.0,
    ) -> AsyncIterator[WatchEvent]:
        async with self.watch_stream(kind, name, since, timeout_s) as events:
            async for event in events:
                yield event

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
