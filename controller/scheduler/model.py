"""The scheduler's inputs and outputs: HostView, VMRequest, Placement.

Built by the planner from desired and observed state; the scheduler functions are
pure over them. Sizes are bytes, CPU is millicores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from schemas.meta import LabelSelector
from schemas.vm import HostVerdict


@dataclass(frozen=True)
class HostView:
    """One host as the scheduler sees it, with what is already placed on it."""

    name: str
    labels: dict[str, str] = field(hash=False)
    cpu_capacity_milli: int
    memory_capacity: int
    reserved_cpu_milli: int = 0
    reserved_memory: int = 0
    cpu_allocated_milli: int = 0
    memory_allocated: int = 0
    maintenance: bool = False
    healthy: bool = True
    health_reason: str = ""
    networks: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()
    vms: frozenset[str] = frozenset()
    migrations_in_flight: int = 0


@dataclass(frozen=True)
class VMRequest:
    """What a VM needs from a host: CPU, memory, networks, pools, label constraints."""

    name: str
    labels: dict[str, str] = field(hash=False)
    cpu_milli: int
    memory: int
    networks: frozenset[str] = frozenset()
    pools: frozenset[str] = frozenset()
    guaranteed_memory: int | None = None
    """Counted instead of `memory` on hosts whose policy balloons memory (memoryBalloon)."""
    host_selector: LabelSelector | None = None
    pinned_host: str | None = None
    ha_priority: int = 0
    ha: bool = False
    """HA on: restarted elsewhere when its host fails (controller.ha)."""
    migratable: bool = True
    """False when the VM's migration policy forbids live migration: never moved by a balancer."""


def counted_memory(vm: VMRequest, ballooned: bool) -> int:
    """Return the memory (bytes) the VM counts for on a host: its guaranteedMemory where
    the host's policy balloons memory (MOM overcommit) and that is below its memory, else
    its memory."""
    guaranteed = vm.guaranteed_memory
    if ballooned and guaranteed is not None and guaranteed < vm.memory:
        return guaranteed
    return vm.memory


@dataclass(frozen=True)
class Placement:
    """The chosen host (None: fits nowhere) and a verdict for every host considered.

    `verdicts` is a sequence of HostVerdict in host-name order; the scheduler hands a
    lazy sequence that builds the verdicts on first access, so that placing thousands
    of VMs does not build millions of verdict objects nobody reads. `reason` is
    "Scheduled" or "NoHostFits"; `score` the chosen host's normalised score (0..1).
    """

    vm: str
    host: str | None
    verdicts: Sequence[HostVerdict]
    message: str
    reason: str = ""
    score: float | None = None
