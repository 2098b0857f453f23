"""The synchronous client: `Client(url, token, ca=...)`, one typed resource client per kind.

with Client("https://corral:8480", token, ca="ca.crt") as client:
    vm = client.vms.create(VirtualMachine(...))
    client.vms.wait(vm.name, "Ready", timeout=300)
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Generic

import httpx

from corral_sdk.core import (
    PREFIX,
    KindInfo,
    T,
    WatchEvent,
    body_of,
    condition_holds,
    decode,
    parse_sse,
    patch_request,
    watch_event,
)
from corral_sdk.errors import NotFound, WaitTimeout
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
        self._info: KindInfo[T] = KindInfo(kind)

    def list(self, selector: str | None = None, page_size: int = 500) -> list[T]:
        """Return every object (matching the kubectl-style `selector`), following pages."""
        return list(self.iter(selector, page_size))

    def iter(self, selector: str | None = None, page_size: int = 500) -> Iterator[T]:
        """Yield objects page by page."""
        token = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if selector:
                params["labelSelector"] = selector
            if token:
                params["continue"] = token
            page = self._client.request("GET", self._info.path, params=params)
            for doc in page["items"]:
                yield self._info.model(doc)
            token = page["metadata"].get("continue")
            if not token:
                return

    def get(self, name: str) -> T:
        return self._info.model(self._client.request("GET", f"{self._info.path}/{name}"))

    def create(self, obj: T | dict[str, Any]) -> T:
        return self._info.model(self._client.request("POST", self._info.path, json=body_of(obj)))

    def replace(self, obj: T, force: bool = False) -> T:
        """Replace the object; its metadata.resourceVersion (if set) is the precondition."""
        params = {"force": "true"} if force else None
        doc = self._client.request(
            "PUT", f"{self._info.path}/{obj.metadata.name}", json=body_of(obj), params=params
        )
        return self._info.model(doc)

    def patch(
        self,
        name: str,
        merge: dict[str, Any] | None = None,
        json_patch: list[dict[str, Any]] | None = None,
    ) -> T:
        """Patch with a merge patch (dict) or a JSON patch (list of operations)."""
        body, content_type = patch_request(merge, json_patch)
        doc = self._client.request(
            "PATCH", f"{self._info.path}/{name}", json=body, headers={"content-type": content_type}
        )
        return self._info.model(doc)

    def delete(self, name: str, resource_version: int | None = None) -> None:
        params = {"resourceVersion": resource_version} if resource_version else None
        self._client.request("DELETE", f"{self._info.path}/{name}", params=params)

    def dry_run(self, obj: T | dict[str, Any]) -> dict[str, Any]:
        """Return the plan creating (or, if it exists, replacing) the object would cause."""
        doc = body_of(obj)
        name = doc["metadata"]["name"]
        try:
            self.get(name)
        except NotFound:
            return self._client.request(
                "POST", self._info.path, json=doc, params={"dryRun": "true"}
            )
        return self._client.request(
            "PUT", f"{self._info.path}/{name}", json=doc, params={"dryRun": "true"}
        )

    def status(self, name: str) -> dict[str, Any] | None:
        return self._client.request("GET", f"{self._info.path}/{name}/status")

    def events(self, name: str) -> list[dict[str, Any]]:
        return self._client.request("GET", f"{self._info.path}/{name}/events")["items"]

    def release(self, name: str) -> T:
        """Hand an object the API took over back to its source."""
        path = f"{PREFIX}/{self._info.plural}/{name}/release"
        return self._info.model(self._client.request("POST", path))

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
        deadline = time.monotonic() + timeout
        last: T | None = None
        while time.monotonic() < deadline:
            remaining = max(0.5, deadline - time.monotonic())
            with self._client.watch_stream(
                self._info.kind, name, None, remaining, topics="object,status"
            ) as events:
                last = self.get(name)
                if condition_holds(last, condition, status):
                    return last
                for event in events:
                    if event.expired:
                        break
                    if event.object is not None:
                        last = event.object  # type: ignore[assignment]
                        if condition_holds(last, condition, status):
                            return last  # type: ignore[return-value]
        raise WaitTimeout(
            f"{self._info.kind}/{name}: {condition} is not {status} after {timeout:.0f}s", last
        )


class VirtualMachines(Resources[VirtualMachine]):
    def migrate(self, name: str, host: str) -> VirtualMachine:
        """Move the VM to `host` (pins spec.placement.host)."""
        path = f"{PREFIX}/virtualmachines/{name}/migrate"
        return VirtualMachine.model_validate(
            self._client.request("POST", path, json={"host": host})
        )


class Hosts(Resources[Host]):
    def drain(self, name: str) -> Host:
        """Put the host in maintenance: its VMs move off."""
        return Host.model_validate(self._client.request("POST", f"{PREFIX}/hosts/{name}/drain"))

    def undrain(self, name: str) -> Host:
        return Host.model_validate(self._client.request("POST", f"{PREFIX}/hosts/{name}/undrain"))


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
        self.http = httpx.Client(
            base_url=url,
            headers={"Authorization": f"Bearer {token}"},
            verify=tls_verify(ca),
            timeout=timeout_s,
            transport=transport,
        )
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

    def whoami(self) -> dict[str, Any]:
        return self.request("GET", f"{PREFIX}/whoami")

    def reconcile(self) -> dict[str, Any]:
        """Ask the controller for a pass now."""
        return self.request("POST", f"{PREFIX}/reconcile")

    def events(
        self, kind: str | None = None, name: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        params = {k: v for k, v in {"kind": kind, "name": name, "limit": limit}.items() if v}
        return self.request("GET", f"{PREFIX}/events", params=params)["items"]

    def plans(self, limit: int = 20) -> list[dict[str, Any]]:
        return self.request("GET", f"{PREFIX}/plans", params={"limit": limit})["items"]

    def watch_stream(
        self,
        kind: str | None,
        name: str | None,
        since: int | None,
        timeout_s: float,
        topics: str | None = None,
    ) -> _WatchStream:
        """Return a context manager over the watch stream."""
        params: dict[str, Any] = {"timeoutSeconds": min(timeout_s, 3600)}
        for key, value in (("kind", kind), ("name", name), ("since", since), ("topics", topics)):
            if value is not None:
                params[key] = value
        return _WatchStream(self, params)

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
