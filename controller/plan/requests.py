"""What the scheduler sees: HostViews from Host specs and states, VMRequests from VM specs."""

from __future__ import annotations

from collections.abc import Mapping

from controller.plan.expand import DesiredVM
from controller.plan.memo import IdentityMemo
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


class Allocation:
    """What the placed VMs take on each host, kept up to date between calls: a drain asks
    for the hosts' views once per drained host, and summing 10,000 VMs each time made
    draining 100 hosts cost seconds; only the VMs whose placement moved are counted again,
    and only the hosts they moved on get a new view."""

    def __init__(self) -> None:
        self.placed: dict[str, tuple[str, VMRequest, int]] = {}
        self.cpu: dict[str, int] = {}
        self.memory: dict[str, int] = {}
        self.vms: dict[str, set[str]] = {}
        self.views: dict[str, HostView] = {}
        self.dirty: set[str] = set()
        """Hosts whose totals moved since their view was last built."""

    def update(
        self, world: World, placements: Mapping[str, str], requests: Mapping[str, VMRequest]
    ) -> None:
        """Bring the totals to `placements` (VM -> host) with `requests` (VM -> needs)."""
        for vm in self.placed.keys() - placements.keys():
            self._remove(vm)
        for vm, host in placements.items():
            request = requests.get(vm)
            held = self.placed.get(vm)
            if held is not None and held[0] == host and held[1] is request:
                continue
            if held is not None:
                self._remove(vm)
            if request is None:
                continue
            ballooned = world.policy.for_host(host).memory_balloon.enabled
            counted = counted_memory(request, ballooned)
            self.placed[vm] = (host, request, counted)
            self.cpu[host] = self.cpu.get(host, 0) + request.cpu_milli
            self.memory[host] = self.memory.get(host, 0) + counted
            self.vms.setdefault(host, set()).add(vm)
            self.dirty.add(host)

    def _remove(self, vm: str) -> None:
        host, request, counted = self.placed.pop(vm)
        self.cpu[host] -= request.cpu_milli
        self.memory[host] -= counted
        self.vms[host].discard(vm)
        self.dirty.add(host)


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
    alloc = world._allocation
    if alloc is None:
        alloc = world._allocation = Allocation()
    alloc.update(world, placements, requests)
    views = []
    for name, host in world.desired.hosts.items():
        in_flight = migrations.get(name, 0)
        view = alloc.views.get(name)
        if view is None or name in alloc.dirty or view.migrations_in_flight != in_flight:
            view = alloc.views[name] = _view(world, name, host, alloc, in_flight)
        views.append(view)
    alloc.dirty.clear()
    return views


def _view(world: World, name: str, host, alloc: Allocation, in_flight: int) -> HostView:
    state = world.observed.states.get(name)
    networks, pools = world.reach(name)
    actionable = world.actionable(name)
    return HostView(
        name=name,
        labels=host.metadata.labels,
        cpu_capacity_milli=state.cpus * 1000 if state else 0,
        memory_capacity=state.memory_mib * MIB if state else 0,
        reserved_cpu_milli=host.spec.reserved.cpu,
        reserved_memory=host.spec.reserved.memory,
        cpu_allocated_milli=alloc.cpu.get(name, 0),
        memory_allocated=alloc.memory.get(name, 0),
        maintenance=host.spec.maintenance,
        healthy=actionable,
        health_reason="" if actionable else world.health[name].message,
        networks=networks,
        pools=pools,
        vms=frozenset(alloc.vms.get(name, ())),
        migrations_in_flight=in_flight,
    )
