"""Objects, host states and HTTP helpers shared by the API tests."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from agentapi import HostState, LeaseState
from schemas import Host, VirtualMachine

TOKEN_ROLES = ("viewer", "operator", "admin")


def vm_doc(name: str, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    """Return a VirtualMachine manifest as a client sends it."""
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": metadata,
        "spec": {"cpus": 1, "memory": "256Mi", **spec},
    }


def vm(name: str, labels: dict[str, str] | None = None, **spec: Any) -> VirtualMachine:
    return VirtualMachine.model_validate(vm_doc(name, labels, **spec))


def host(name: str, labels: dict[str, str] | None = None, **spec: Any) -> Host:
    return Host.model_validate(
        {
            "kind": "Host",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"address": "https://127.0.0.1:9", "virtualization": "qemu", **spec},
        }
    )


def host_state(name: str, cpus: int = 8, memory_mib: int = 16384) -> dict[str, Any]:
    """Return an agent's HostState (as stored) of an empty host."""
    return HostState(
        hostname=name,
        agent_version="test",
        libvirt_uri="qemu:///system",
        libvirt_version="9.0.0",
        arch="x86_64",
        cpus=cpus,
        memory_mib=memory_mib,
        free_memory_mib=memory_mib,
        domains=[],
        networks=[],
        pools=[],
        hooks={},
        lease=LeaseState(held=True, granted=True, ttl_s=10, expires_in_s=10),
        events_seq=0,
    ).model_dump(mode="json")


MERGE = {"content-type": "application/merge-patch+json"}
JSON_PATCH = {"content-type": "application/json-patch+json"}


@dataclass(frozen=True)
class Tokens:
    """One token per role, and an operator scoped to team=a."""

    viewer: str
    operator: str
    admin: str
    scoped: str

    def of(self, role: str) -> str:
        return getattr(self, role)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class LiveApi:
    """A running API over HTTPS: its base URL and the CA that verifies it."""

    url: str
    ca: Path

    def client(self, token: str | None = None, **kw: object) -> httpx.Client:
        headers = bearer(token) if token else {}
        context = ssl.create_default_context(cafile=str(self.ca))
        return httpx.Client(base_url=self.url, verify=context, headers=headers, **kw)  # type: ignore[arg-type]
