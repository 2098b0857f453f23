"""Builders shared by the scheduler, balancer and HA tests (no tests here)."""

from __future__ import annotations

from typing import Any

from controller.plan.model import PolicyContext
from controller.scheduler.model import HostView, VMRequest
from schemas.affinity import AffinityGroup
from schemas.meta import LabelSelector
from schemas.policy import SchedulingPolicySpec

GI = 2**30


def host(
    name: str,
    cpus: float = 8,
    mem_gi: float = 32,
    labels: dict[str, str] | None = None,
    used_cpus: float = 0,
    used_gi: float = 0,
    **kw: Any,
) -> HostView:
    """A HostView with sizes in CPUs and GiB."""
    return HostView(
        name=name,
        labels=labels or {},
        cpu_capacity_milli=int(cpus * 1000),
        memory_capacity=int(mem_gi * GI),
        cpu_allocated_milli=int(used_cpus * 1000),
        memory_allocated=int(used_gi * GI),
        **kw,
    )


def vm(
    name: str,
    cpus: float = 1,
    mem_gi: float = 1,
    labels: dict[str, str] | None = None,
    selector: dict[str, Any] | None = None,
    **kw: Any,
) -> VMRequest:
    """A VMRequest with sizes in CPUs and GiB; `selector` is a LabelSelector manifest dict."""
    return VMRequest(
        name=name,
        labels=labels or {},
        cpu_milli=int(cpus * 1000),
        memory=int(mem_gi * GI),
        host_selector=LabelSelector.model_validate(selector) if selector is not None else None,
        **kw,
    )


def policy(by_host: dict[str, dict[str, Any]] | None = None, **spec: Any) -> PolicyContext:
    """A PolicyContext whose default policy is built from camelCase or snake_case `spec`."""
    return PolicyContext(
        by_host={h: SchedulingPolicySpec.model_validate(s) for h, s in (by_host or {}).items()},
        default=SchedulingPolicySpec.model_validate(spec),
    )


def group(name: str, **spec: Any) -> AffinityGroup:
    """An AffinityGroup from a spec dict (camelCase keys as in a manifest)."""
    return AffinityGroup.model_validate({"metadata": {"name": name}, "spec": spec})


def anti(name: str, vms: list[str], enforcement: str = "hard") -> AffinityGroup:
    return group(name, vms=vms, vmRule={"polarity": "negative", "enforcement": enforcement})


def together(name: str, vms: list[str], enforcement: str = "hard") -> AffinityGroup:
    return group(name, vms=vms, vmRule={"polarity": "positive", "enforcement": enforcement})


def reasons(placement: Any) -> dict[str, str]:
    """Host -> "fits" or the verdict's reason, for compact expectations."""
    return {v.host: ("fits" if v.fits else v.reason) for v in placement.verdicts}


def with_allocations(
    hosts: list[HostView], vms: list[VMRequest], placements: dict[str, str]
) -> list[HostView]:
    """Return the hosts with allocations and VM sets recomputed from the placed VMs."""
    from dataclasses import replace

    sizes = {v.name: v for v in vms}
    out = []
    for h in hosts:
        mine = [sizes[n] for n, where in placements.items() if where == h.name and n in sizes]
        out.append(
            replace(
                h,
                cpu_allocated_milli=sum(v.cpu_milli for v in mine),
                memory_allocated=sum(v.memory for v in mine),
                vms=frozenset(v.name for v in mine),
            )
        )
    return out


def apply_moves(placements: dict[str, str], moves: Any) -> dict[str, str]:
    """Return the placements after every move completed (a working migration fake)."""
    after = dict(placements)
    for move in moves:
        assert after[move.vm] == move.source
        after[move.vm] = move.target
    return after
