"""The synchronous client: `Client(url, token, ca=...)`, one typed resource client per kind.

with Client("https://corral:8480", token, ca="ca.crt") as client:
    vm = client.vms.create(VirtualMachine(...))
    client.vms.wait(vm.name, "Ready", timeout=300)
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic

import httpx

from corral_sdk import calls
from corral_sdk.calls import WAIT_TOPICS, Call, R, ResourceCalls, Wait
from corral_sdk.core import PREFIX, T, WatchEvent, body_of, decode, parse_sse, watch_event
from corral_sdk.errors import NotFound
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


def tls_verify(ca: str | Path | None) -> ssl.SSLContext | bool:
    """Return the TLS verification for a CA file (the fleet CA), or the system's by default."""
    return ssl.create_default_context(cafile=str(ca)) if ca else True


class Resources(Generic[T]):
    """list/get/create/replace/patch/delete/status/events/watch/wait for one kind."""

    def __init__(self, client: Client, kind: str) -> None:
        self._client = client
        self._info: ResourceCalls[T] = ResourceCalls(kind)

    def list(self, selector: str | None = None, page_size: int = 500) -> list[T]:
        """Return every object (matching the kubectl-style `selector`), following pages."""
        return list(self.iter(selector, page_size))

    def iter(self, selector: str | None = None, page_size: int = 500) -> Iterator[T]:
        """Yield objects page by page."""
        page = self._client.send(self._info.page(selector, page_size, None))
        yield from page.items
        while page.next_token:
            page = self._client.send(self._info.page(selector, page_size, page.next_token))
            yield from page.items

    def get(self, name: str) -> T:
        return self._client.send(self._info.get(name))

    def create(self, obj: T | dict[str, Any]) -> T:
        return self._client.send(self._info.create(obj))

    def replace(self, obj: T, force: bool = False) -> T:
        """Replace the object; its metadata.resourceVersion (if set) is the precondition."""
        return self._client.send(self._info.replace(obj, force))

    def patch(
        self,
        name: str,
        merge: dict[str, Any] | None = None,
        json_patch: list[dict[str, Any]] | None = None,
    ) -> T:
        """Patch with a merge patch (dict) or a JSON patch (list of operations)."""
        return self._client.send(self._info.patch(name, merge, json_patch))

    def delete(self, name: str, resource_version: int | None = None) -> None:
        self._client.send(self._info.delete(name, resource_version))

    def dry_run(self, obj: T | dict[str, Any]) -> dict[str, Any]:
        """Return the plan creating (or, if it exists, replacing) the object would cause."""
        doc = body_of(obj)
        try:
            self.get(doc["metadata"]["name"])
        except NotFound:
            return self._client.send(self._info.dry_run(doc, exists=False))
        return self._client.send(self._info.dry_run(doc, exists=True))

    def status(self, name: str) -> dict[str, Any] | None:
        return self._client.send(self._info.status(name))

    def events(self, name: str) -> list[dict[str, Any]]:
        return self._client.send(self._info.events(name))

    def release(self, name: str) -> T:
        """Hand an object the API took over back to its source."""
        return self._client.send(self._info.release(name))

    def watch(
        self, name: str | None = None, since: int | None = None, timeout_s: float = 300.0
    ) -> Iterator[WatchEvent]:
        """Yield changes of this kind (of one object with `name`) until `timeout_s`."""
        return self._client.watch(self._info.kind, name, since=since, timeout_s=timeout_s)

    def wait(
        self, name: str, condition: str = "Ready", status: str = "True", timeout: float = 300.0
    ) -> T:
        """Return the object once its `condition` has `status`; raise WaitTimeout otherwise.

        The watch is opened before the object is read, so no change between the two is missed.
        """
        kind = self._info.kind
        wait = Wait(kind, name, condition, status, timeout)
        while (remaining := wait.remaining_s()) is not None:
            with self._client.watch_stream(kind, name, None, remaining, WAIT_TOPICS) as events:
                if wait.holds(self.get(name)):
                    return wait.last  # type: ignore[return-value]
                for event in events:
                    if event.expired:
                        break
                    if wait.holds(event.object):
                        return wait.last  # type: ignore[return-value]
        raise wait.timed_out()


class VirtualMachines(Resources[VirtualMachine]):
    def migrate(self, name: str, host: str) -> VirtualMachine:
        """Move the VM to `host` (pins spec.placement.host)."""
        return self._client.send(calls.migrate(name, host))


class Hosts(Resources[Host]):
    def drain(self, name: str) -> Host:
        """Put the host in maintenance: its VMs move off."""
        return self._client.send(calls.host_action(name, "drain"))

    def undrain(self, name: str) -> Host:
        return self._client.send(calls.host_action(name, "undrain"))


class _WatchStream:
    """A watch stream as a context manager yielding WatchEvents."""

    def __init__(self, client: Client, params: dict[str, Any]) -> None:
        self._cm = client.http.stream("GET", f"{PREFIX}/watch", params=params)

    def __enter__(self) -> Iterator[WatchEvent]:
        response = self._cm.__enter__()
        if response.status_code >= 400:
            response.read()
            decode(response.status_code, response.json())
        return (watch_event(e, d) for e, d in parse_sse(response.iter_lines()))

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


class Client:
    """A synchronous Corral API client (httpx)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        ca: str | Path | None = None,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        options = calls.client_options(url, token, tls_verify(ca), timeout_s)
        self.http = httpx.Client(**options, transport=transport)
        self.vms = VirtualMachines(self, "VirtualMachine")
        self.hosts = Hosts(self, "Host")
        self.networks: Resources[Network] = Resources(self, "Network")
        self.pools: Resources[StoragePool] = Resources(self, "StoragePool")
        self.volumes: Resources[Volume] = Resources(self, "Volume")
        self.templates: Resources[Template] = Resources(self, "Template")
        self.affinity_groups: Resources[AffinityGroup] = Resources(self, "AffinityGroup")
        self.snapshots: Resources[Snapshot] = Resources(self, "Snapshot")
        self.policies: Resources[SchedulingPolicy] = Resources(self, "SchedulingPolicy")

    def request(self, method: str, path: str, **kw: Any) -> Any:
        """Send a request; return the decoded JSON answer or raise the SDK error."""
        response = self.http.request(method, path, **kw)
        body = response.json() if response.content else None
        return decode(response.status_code, body)

    def send(self, call: Call[R]) -> R:
        """Send `call`; return its parsed answer or raise the SDK error."""
        return call.parse(self.request(call.method, call.path, **call.options()))

    def whoami(self) -> dict[str, Any]:
        return self.send(calls.whoami())

    def reconcile(self) -> dict[str, Any]:
        """Ask the controller for a pass now."""
        return self.send(calls.reconcile())

    def events(
        self, kind: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return self.send(calls.events(kind, name, limit))

    def plans(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.send(calls.plans(limit))

    def watch_stream(
        self,
        kind: str | None,
        name: str | None,
        since: int | None,
        timeout_s: float,
        topics: str | None = None,
    ) -> _WatchStream:
        """Return a context manager over the watch stream."""
        return _WatchStream(self, calls.watch_params(kind, name, since, timeout_s, topics))

    def watch(
        self,
        kind: str | None = None,
        name: str | None = None,
        *,
        since: int | None = None,
        timeout_s: float = 300.0,
    ) -> Iterator[WatchEvent]:
        """Yield changes (all kinds, or one kind / object) until `timeout_s`."""
        with self.watch_stream(kind, name, since, timeout_s) as events:
            yield from events

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
