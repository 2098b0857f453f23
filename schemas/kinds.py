"""The registry of kinds: name -> model, in the order objects are applied."""

from __future__ import annotations

from typing import Any

from schemas.affinity import AffinityGroup
from schemas.host import Host
from schemas.meta import Resource
from schemas.network import Network
from schemas.policy import SchedulingPolicy
from schemas.snapshot import Snapshot
from schemas.storagepool import StoragePool
from schemas.template import Template
from schemas.vm import VirtualMachine
from schemas.volume import Volume

AnyResource = Resource[Any, Any]

KINDS: dict[str, type[AnyResource]] = {
    "SchedulingPolicy": SchedulingPolicy,
    "Host": Host,
    "Network": Network,
    "StoragePool": StoragePool,
    "Volume": Volume,
    "Template": Template,
    "AffinityGroup": AffinityGroup,
    "VirtualMachine": VirtualMachine,
    "Snapshot": Snapshot,
}
"""Every kind, in dependency order: a kind is applied after the kinds it refers to."""

PLURALS: dict[str, str] = {
    "SchedulingPolicy": "schedulingpolicies",
    "Host": "hosts",
    "Network": "networks",
    "StoragePool": "storagepools",
    "Volume": "volumes",
    "Template": "templates",
    "AffinityGroup": "affinitygroups",
    "VirtualMachine": "virtualmachines",
    "Snapshot": "snapshots",
}

SHORT_NAMES: dict[str, list[str]] = {
    "SchedulingPolicy": ["policy", "sp"],
    "Host": ["host"],
    "Network": ["net"],
    "StoragePool": ["pool"],
    "Volume": ["vol"],
    "Template": ["tpl"],
    "AffinityGroup": ["ag", "affinity"],
    "VirtualMachine": ["vm", "vms"],
    "Snapshot": ["snap"],
}


def resolve_kind(word: str) -> str | None:
    """Return the kind a user means by `word` ("vm", "vms", "VirtualMachine"), or None."""
    lowered = word.lower()
    for kind in KINDS:
        if lowered in (kind.lower(), PLURALS[kind], *SHORT_NAMES[kind]):
            return kind
    return None
