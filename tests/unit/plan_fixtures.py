"""Small desired fleets for the planner's table tests: hosts, a network, pools, VMs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fleet_sim import FleetSim, converge, desired_of, manifest

from controller.plan import Plan, PolicyContext, plan
from schemas.kinds import AnyResource

POLICY = PolicyContext(by_host={})


def host(name: str, **spec: Any) -> AnyResource:
    labels = spec.pop("labels", {})
    return manifest(
        "Host", name, {"address": f"https://{name}:8443", "virtualization": "qemu", **spec}, labels
    )


def network(name: str = "lan", **spec: Any) -> AnyResource:
    body = {"mode": "nat", "ipv4": {"cidr": "10.10.0.0/24"}, **spec}
    return manifest("Network", name, body)


def pool(name: str = "local", **spec: Any) -> AnyResource:
    return manifest("StoragePool", name, {"type": "dir", "path": f"/var/lib/corral/{name}", **spec})


def shared_pool(name: str = "shared") -> AnyResource:
    return pool(name, type="netfs", shared=True, source={"host": "nfs", "path": "/export"})


def volume(name: str, pool_name: str = "local", size: str = "1Gi", **spec: Any) -> AnyResource:
    return manifest("Volume", name, {"pool": pool_name, "size": size, **spec})


def vm(
    name: str, disk_pool: str | None = "local", labels: dict[str, str] | None = None, **spec: Any
) -> list[AnyResource]:
    """Return a VM (1 CPU, 256Mi, NIC on lan, a root volume in `disk_pool`) and its volume."""
    body: dict[str, Any] = {
        "cpus": 1,
        "memory": "256Mi",
        "nics": [{"name": "eth0", "network": "lan"}],
        **spec,
    }
    objects: list[AnyResource] = []
    if disk_pool is not None:
        body.setdefault("disks", [{"name": "root", "volume": f"{name}-root"}])
        objects.append(volume(f"{name}-root", disk_pool))
    objects.insert(0, manifest("VirtualMachine", name, body, labels))
    return objects


def fleet(*extra: AnyResource | list[AnyResource], hosts: tuple[str, ...] = ("host-a",)) -> list:
    """Return hosts, network lan, pool local and the extra objects (lists are flattened)."""
    out: list[AnyResource] = [host(h) for h in hosts] + [network(), pool()]
    for item in extra:
        out.extend(item if isinstance(item, list) else [item])
    return out


def converged(objects: list[AnyResource], *hosts: str, **sim_kw: Any) -> FleetSim:
    """Return a fleet where `objects` were applied until the plan was empty."""
    sim = FleetSim.of(*(hosts or ("host-a",)), **sim_kw)
    plans = converge(sim, desired_of(*objects), POLICY)
    assert plans[-1].empty, [a.message for a in plans[-1].actions]
    assert not sim.errors, sim.errors
    return sim


def plan_after(
    before: list[AnyResource],
    after: list[AnyResource] | None = None,
    mutate: Callable[[FleetSim], None] | None = None,
    hosts: tuple[str, ...] = ("host-a",),
    requests: dict[tuple[str, str], str] | None = None,
    policy: PolicyContext = POLICY,
) -> tuple[FleetSim, Plan]:
    """Converge `before`, change the fleet with `mutate`, and plan `after` (default: before)."""
    sim = converged(before, *hosts)
    if mutate is not None:
        mutate(sim)
    desired = desired_of(*(after if after is not None else before), requests=requests)
    return sim, plan(desired, sim.observed(), policy)


def verdict(p: Plan, kind: str, name: str) -> tuple[bool, str, bool]:
    """Return (ready, reason, stalled) of one object's verdict."""
    v = p.verdicts[(kind, name)]
    return (v.ready, v.reason, v.stalled)
