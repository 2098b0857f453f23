"""What the scheduler sees: HostViews from Host specs and states, VMRequests from VM specs."""

from __future__ import annotations

from collections.abc import Mapping

from controller.plan.expand import DesiredVM
from controller.plan.memo import IdentityMemo
from controller.plan.storage import pool_spec
from controller.plan.world import World
from controller.scheduler.model import HostView, VMRequest, counted_memory
from schemas.volume import VolumeSpec

MIB = 2**20

_REQUESTS: IdentityMemo[VMRequest] = IdentityMemo()


def vm_request(vm: DesiredVM, volumes: Mapping[str, VolumeSpec]) -> VMRequest:
    """Return what the VM needs from a host (memoised by the identity of its specs)."""
    used = tuple(volumes.get(d.volume) for d in vm.spec.disks if d.volume)
    return _REQUESTS.get(
        (vm.resource, vm.spec, *used), len(used), lambda: _build_request(vm, volumes)
    )


def _build_request(vm: DesiredVM, volumes: Mapping[str, VolumeSpec]) -> VMRequest:
    spec = vm.spec
    placement = spec.placement
    selector = placement.host_selector if placement else None
    if selector is not None and not (selector.match_labels or selector.match_expressions):
        selector = None
    pools = frozenset(
        volumes[d.volume].pool for d in spec.disks if d.volume and d.volume in volumes
    )
    ha = bool(spec.ha and spec.ha.enabled)
    return VMRequest(
        name=vm.name,
        labels=dict(vm.labels),
        cpu_milli=(spec.cpus or 1) * 1000,
        memory=spec.memory or 0,
        guaranteed_memory=spec.guaranteed_memory,
        networks=frozenset(nic.network for nic in spec.nics),
        pools=pools,
        host_selector=selector,
        pinned_host=placement.host if placement else None,
        ha_priority=spec.ha.priority if ha and spec.ha else 0,
        ha=ha,
        migratable=spec.migration.allowed if spec.migration else True,
    )


def host_views(
    world: World,
    placements: Mapping[str, str],
    requests: Mapping[str, VMRequest],
    migrations: Mapping[str, int],
) -> list[HostView]:
    """Return a HostView per desired host, with the VMs `placements` puts on it allocated.

    A host's networks and pools are those whose selectors pick it (they are defined
    there by this plan if missing); capacity comes from the agent's last report.
    """
    cpu: dict[str, int] = {}
    memory: dict[str, int] = {}
    vms: dict[str, set[str]] = {}
    for vm, host in placements.items():
        request = requests.get(vm)
        if request is None:
            continue
        cpu[host] = cpu.get(host, 0) + request.cpu_milli
        ballooned = world.policy.for_host(host).memory_balloon.enabled
        memory[host] = memory.get(host, 0) + counted_memory(request, ballooned)
        vms.setdefault(host, set()).add(vm)
    views = []
    for name, host in world.desired.hosts.items():
        labels = host.metadata.labels
        state = world.observed.states.get(name)
        health = world.health[name]
        networks = frozenset(
            n for n, net in world.desired.networks.items() if net.spec.host_selector.matches(labels)
        )
        pools = frozenset(
            p
            for p, pool in world.desired.pools.items()
            if pool.spec.host_selector.matches(labels) and not isinstance(pool_spec(pool), str)
        )
        views.append(
            HostView(
                name=name,
                labels=labels,
                cpu_capacity_milli=state.cpus * 1000 if state else 0,
                memory_capacity=state.memory_mib * MIB if state else 0,
                reserved_cpu_milli=host.spec.reserved.cpu,
                reserved_memory=host.spec.reserved.memory,
                cpu_allocated_milli=cpu.get(name, 0),
                memory_allocated=memory.get(name, 0),
                maintenance=host.spec.maintenance,
                healthy=world.actionable(name),
                health_reason="" if world.actionable(name) else health.message,
                networks=networks,
                pools=pools,
                vms=frozenset(vms.get(name, ())),
                migrations_in_flight=migrations.get(name, 0),
            )
        )
    return views
