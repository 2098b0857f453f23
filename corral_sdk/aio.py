"""The asynchronous client: the same resources as `Client`, with `await` and `async for`."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Generic

import httpx

from corral_sdk import calls
from corral_sdk.calls import WAIT_TOPICS, Call, R, ResourceCalls, Wait
from corral_sdk.client import tls_verify
from corral_sdk.core import PREFIX, SseParser, T, WatchEvent, decode, watch_event
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
    parser = SseParser()
    async for line in lines:
        if message := parser.feed(line):
            yield message


class AsyncResources(Generic[T]):
    """The async twin of `Resources`."""

    def __init__(self, client: AsyncClient, kind: str) -> None:
        self._client = client
        self._info: ResourceCalls[T] = ResourceCalls(kind)

    async def list(self, selector: str | None = None, page_size: int = 500) -> list[T]:
        """Return every object (matching `selector`), following pages."""
        page = await self._client.send(self._info.page(selector, page_size, None))
        items = list(page.items)
        while page.next_token:
            page = await self._client.send(self._info.page(selector, page_size, page.next_token))
            items += page.items
        return items

    async def get(self, name: str) -> T:
        return await self._client.send(self._info.get(name))

    async def create(self, obj: T | dict[str, Any]) -> T:
        return await self._client.send(self._info.create(obj))

    async def replace(self, obj: T, force: bool = False) -> T:
        return await self._client.send(self._info.replace(obj, force))

    async def patch(
        self,
        name: str,
        merge: dict[str, Any] | None = None,
        json_patch: list[dict[str, Any]] | None = None,
    ) -> T:
        return await self._client.send(self._info.patch(name, merge, json_patch))

    async def delete(self, name: str, resource_version: int | None = None) -> None:
        await self._client.send(self._info.delete(name, resource_version))

    async def status(self, name: str) -> dict[str, Any] | None:
        return await self._client.send(self._info.status(name))

    def watch(
        self, name: str | None = None, since: int | None = None, timeout_s: float = 300.0
    ) -> AsyncIterator[WatchEvent]:
        return self._client.watch(self._info.kind, name, since=since, timeout_s=timeout_s)

    async def wait(
        self, name: str, condition: str = "Ready", status: str = "True", timeout: float = 300.0
    ) -> T:
        """Return the object once its `condition` has `status`; raise WaitTimeout otherwise."""
        kind = self._info.kind
        wait = Wait(kind, name, condition, status, timeout)
        while (remaining := wait.remaining_s()) is not None:
            async with self._client.watch_stream(
                kind, name, None, remaining, WAIT_TOPICS
            ) as events:
                if wait.holds(await self.get(name)):
                    return wait.last  # type: ignore[return-value]
                async for event in events:
                    if event.expired:
                        break
                    if wait.holds(event.object):
                        return wait.last  # type: ignore[return-value]
        raise wait.timed_out()


class AsyncVirtualMachines(AsyncResources[VirtualMachine]):
    async def migrate(self, name: str, host: str) -> VirtualMachine:
        return await self._client.send(calls.migrate(name, host))


class AsyncHosts(AsyncResources[Host]):
    async def drain(self, name: str) -> Host:
        return await self._client.send(calls.host_action(name, "drain"))

    async def undrain(self, name: str) -> Host:
        return await self._client.send(calls.host_action(name, "undrain"))


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
        options = calls.client_options(url, token, tls_verify(ca), timeout_s)
        self.http = httpx.AsyncClient(**options, transport=transport)
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

    async def send(self, call: Call[R]) -> R:
        """Send `call`; return its parsed answer or raise the SDK error."""
        return call.parse(await self.request(call.method, call.path, **call.options()))

    async def whoami(self) -> dict[str, Any]:
        return await self.send(calls.whoami())

    async def reconcile(self) -> dict[str, Any]:
        return await self.send(calls.reconcile())

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
        params = calls.watch_params(kind, name, since, timeout_s, topics)
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
