"""plan(desired, observed, policy) -> Plan: the one pure decision of a reconcile pass.

Steps, each in its own module: expand templates (expand), index observed state
(observe), assess host health (health, via controller.ha), place VMs (placement, via
controller.scheduler), find moves (migration), then networks and pools (networks,
storage), volumes (storage), VMs on their hosts (vms), live moves and migrations in
flight (migration), deletions (delete), snapshots (snapshots), verdicts (verdicts),
and the order (order).
No I/O, no clock but `observed.now`, no randomness: equal inputs give an equal plan.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from controller.plan.admission import assess_admission, host_admissions, what_if
from controller.plan.builder import PlanBuilder
from controller.plan.delete import plan_deletions
from controller.plan.expand import expand
from controller.plan.health import HostHealthView, assess_hosts
from controller.plan.memo import new_generation
from controller.plan.migration import (
    find_moves,
    plan_cold_moves,
    plan_live_moves,
    watch_migrations,
)
from controller.plan.model import Desired, Observed, Plan, PolicyContext
from controller.plan.networks import plan_networks
from controller.plan.observe import index_observed
from controller.plan.order import order_actions
from controller.plan.placement import Decisions, decide_placements
from controller.plan.snapshots import plan_snapshots
from controller.plan.storage import plan_pools, plan_volumes, volume_needs
from controller.plan.templates import record_templates
from controller.plan.verdicts import host_verdicts, passive_verdicts
from controller.plan.vms import plan_vm_on_host
from controller.plan.world import World
from controller.scheduler.admission import HostLossOutcome
from schemas.policy import BalancerType


def plan(desired: Desired, observed: Observed, policy: PolicyContext) -> Plan:
    """Return the ordered actions that move `observed` towards `desired`, and every verdict.

    Empty actions mean converged (or blocked: the verdicts say which and why).
    """
    return _plan(desired, observed, policy)[0]


def plan_what_if(
    desired: Desired, observed: Observed, policy: PolicyContext, hosts_down: Collection[str]
) -> HostLossOutcome:
    """Return what losing `hosts_down` at once would do to the placements the plan for
    these inputs leaves: HA restarts with their targets, HA VMs left without a host and
    why, VMs lost with their host. Raises ValueError naming a host that is not desired.
    """
    _, world, dec = _plan(desired, observed, policy)
    return what_if(world, dec, hosts_down)


def _plan(
    desired: Desired, observed: Observed, policy: PolicyContext
) -> tuple[Plan, World, Decisions]:
    """Return the plan, and the world and placement decisions it was made from."""
    new_generation()
    expanded = expand(desired)
    shared = frozenset(name for name, p in expanded.pools.items() if p.spec.shared)
    index = index_observed(observed, list(expanded.hosts), shared)
    health = assess_hosts(expanded.hosts, index.obs, policy, observed.now)
    world = World(expanded, index, health, policy, observed.now, dict(desired.requests))
    out = PlanBuilder()
    plan_networks(world, out)
    plan_pools(world, out)
    dec = decide_placements(world, out)
    moves = find_moves(world, dec)
    plan_cold_moves(world, out, dec, moves)
    needs = volume_needs(world)
    plan_live_moves(world, out, dec, moves, needs)
    plan_volumes(world, out, needs, dec.hosts)
    for name, target in dec.targets.items():
        if name not in dec.move_verdicts:
            plan_vm_on_host(world, out, expanded.vms[name], target)
    watch_migrations(world, out, dec)
    plan_deletions(world, out, needs)
    plan_snapshots(world, out)
    passive_verdicts(world, out)
    host_verdicts(world, out, dec, host_admissions(assess_admission(world, dec)))
    record_templates(expanded, out)
    result = Plan(
        actions=order_actions(out.actions),
        verdicts=dict(sorted(out.verdicts.items())),
        revision=desired.revision,
        clock_bound=clock_bound(health.values(), bool(dec.migrating), policy),
    )
    return result, world, dec


def clock_bound(health: Iterable[HostHealthView], migrating: bool, policy: PolicyContext) -> bool:
    """Return True when the plan depends on `now`, not on its inputs alone (Plan.clock_bound)."""
    windows = any(
        spec.balancer.type is BalancerType.POWER_SAVING and spec.balancer.power_saving_hours
        for spec in (policy.default, *policy.by_host.values())
    )
    return migrating or windows or any(not h.up for h in health)
