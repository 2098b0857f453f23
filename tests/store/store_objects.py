"""Small, valid manifest objects for the store tests."""

from __future__ import annotations

from typing import Any

from schemas import Host, Network, VirtualMachine
from schemas.meta import PROTECT_ANNOTATION


def vm(
    name: str,
    memory: str = "1Gi",
    cpus: int = 1,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> VirtualMachine:
    """Return a VirtualMachine with the given size, labels and annotations."""
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    if annotations is not None:
        metadata["annotations"] = annotations
    return VirtualMachine.model_validate(
        {
            "kind": "VirtualMachine",
            "metadata": metadata,
            "spec": {"cpus": cpus, "memory": memory, **spec},
        }
    )


def protected_vm(name: str) -> VirtualMachine:
    """Return a VM annotated corral.dev/protect: "true"."""
    return vm(name, annotations={PROTECT_ANNOTATION: "true"})


def host(name: str, address: str = "https://10.0.0.1:8443") -> Host:
    """Return a Host whose agent listens at `address`."""
    return Host.model_validate(
        {"kind": "Host", "metadata": {"name": name}, "spec": {"address": address}}
    )


def network(name: str) -> Network:
    """Return an isolated network."""
    return Network.model_validate(
        {"kind": "Network", "metadata": {"name": name}, "spec": {"mode": "isolated"}}
    )
