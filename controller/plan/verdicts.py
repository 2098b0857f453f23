"""Verdicts of hosts and of the kinds that act through other objects.

Host phase: Pending (never reached), NonResponsive / Fenced (not answering),
PreparingForMaintenance (maintenance with VMs still on it) then Maintenance, else Up.
Corral-labelled domains of no known VM (orphans) are reported on their host, never
touched: Corral may not own them any more.
"""

from __future__ import annotations

from collections.abc import Mapping

from agentapi import HostState
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.model import ActionType, HostObservation
from controller.plan.observe import VM_LABEL
from controller.plan.placement import Decisions
from controller.plan.world import World
from schemas.host import Host, HostHAAdmission, HostPhase

NOTHING_STOPPED = "; nothing is stopped for it"


def host_verdicts(
    world: World,
    out: PlanBuilder,
    dec: Decisions,
    admission: Mapping[str, HostHAAdmission] | None = None,
) -> None:
    """Set the verdict of every desired host, with what losing it would do (`admission`,
    by host: plan.admission) for the hosts that are up."""
    admission = admission or {}
    on_host: dict[str, list[str]] = {}
    for vm in world.desired.vms:
        for copy in world.observed.copies.get(vm, ()):
            on_host.setdefault(copy.host, []).append(vm)
    leaving = {
        a.target[1]
        for a in out.actions
        if a.type in (ActionType.MIGRATE_VM, ActionType.UNDEFINE_VM)
    }
    known = set(world.desired.vms) | set(world.desired.deleted.get("VirtualMachine", {}))
    for name, host in world.desired.hosts.items():
        key = ("Host", name)
        health = world.health[name]
        state = world.observed.states.get(name)
        orphans = sorted(
            d.name
            for d in (state.domains if state else [])
            if d.metadata.get(VM_LABEL) and d.name not in known
        )
        extra = {
            "orphans": orphans,
            "vms": len(on_host.get(name, [])),
            "hooks": dict(state.hooks) if state else {},
            # None clears the entry of a host that went down: its loss is no longer simulated.
            "ha_admission": admission.get(name),
        }
        note = (
            f"; Corral-labelled domains of no known VM left alone: {', '.join(orphans)}"
            if orphans
            else ""
        ) + _lease_note(host, state, world.observed.obs.get(name))
        if state is None:
            out.verdict(
                key,
                False,
                reasons.HOST_PENDING,
                f"Host {name} has not been reached yet ({health.message})",
                phase=HostPhase.PENDING.value,
                **extra,
            )
        elif not world.actionable(name):
            phase = HostPhase.FENCED if health.fenced else HostPhase.NON_RESPONSIVE
            out.verdict(
                key,
                False,
                # Not failed: the health says why (LeaseHeld: it runs, cut off from us only).
                reasons.HOST_FAILED if health.failed else health.reason,
                health.message,
                phase=phase.value,
                **extra,
            )
        elif host.spec.maintenance:
            staying = sorted(set(on_host.get(name, [])) - leaving)
            moving = sorted(set(on_host.get(name, [])) & leaving)
            if not on_host.get(name):
                out.verdict(
                    key,
                    True,
                    reasons.IN_MAINTENANCE,
                    f"Host {name} is in maintenance and holds no VM{note}",
                    phase=HostPhase.MAINTENANCE.value,
                    **extra,
                )
            elif staying and not moving and _blocked(out, staying):
                out.verdict(
                    key,
                    False,
                    reasons.DRAIN_BLOCKED,
                    f"Host {name} is in maintenance but {', '.join(staying[:5])} cannot "
                    "leave: " + _first_reason(out, staying) + NOTHING_STOPPED,
                    stalled=True,
                    phase=HostPhase.PREPARING_FOR_MAINTENANCE.value,
                    **extra,
                )
            else:
                out.verdict(
                    key,
                    False,
                    reasons.DRAINING,
                    f"Host {name} is draining for maintenance: {len(on_host[name])} VM(s) "
                    f"left, {len(moving)} moving now",
                    phase=HostPhase.PREPARING_FOR_MAINTENANCE.value,
                    **extra,
                )
        else:
            out.verdict(
                key,
                True,
                reasons.HOST_UP,
                f"Host {name} is up with {len(on_host.get(name, []))} VM(s){note}",
                phase=HostPhase.UP.value,
                **extra,
            )


def _lease_note(host: Host, state: HostState | None, obs: HostObservation | None) -> str:
    """Return what an operator must know of the host's fencing lease ("" when all is well):
    an agent without etcd under a controller with it, a lease not held, another TTL."""
    if state is None or obs is None:
        return ""
    lease = state.lease
    if lease.arbiter == "none":
        if obs.lease is None:
            return ""
        return (
            "; its agent runs without etcd: its HA VMs are never restarted elsewhere (give it "
            "--etcd-endpoints)"
        )
    if not lease.held:
        why = lease.error or "not granted yet"
        return f"; its agent does not hold its etcd lease ({why}): HA VMs cannot start there"
    wanted = host.spec.fencing.lease_ttl_s
    if lease.ttl_s != wanted:
        return f"; its agent keeps a lease of {lease.ttl_s:g} s, the Host asks for {wanted} s"
    return ""


def _blocked(out: PlanBuilder, vms: list[str]) -> bool:
    """Return True when every VM still on a draining host is stalled (cannot move)."""
    return all(
        (v := out.verdicts.get(("VirtualMachine", vm))) is not None and v.stalled for vm in vms
    )


def _first_reason(out: PlanBuilder, vms: list[str]) -> str:
    """Returns why the first VM cannot leave, without its own "nothing is stopped" ending
    (the host's message says it once)."""
    verdict = out.verdicts.get(("VirtualMachine", vms[0]))
    return verdict.message.removesuffix(NOTHING_STOPPED) if verdict else "no host fits"


def passive_verdicts(world: World, out: PlanBuilder) -> None:
    """Set verdicts of Templates, AffinityGroups and SchedulingPolicies (Snapshots: snapshots)."""
    for name in world.desired.templates:
        users = sum(1 for vm in world.desired.vms.values() if vm.spec.template == name)
        out.verdict(
            ("Template", name),
            True,
            reasons.ACCEPTED,
            f"Template {name} is used by {users} VM(s)",
        )
    for group in world.desired.affinity:
        out.verdict(
            ("AffinityGroup", group.name),
            True,
            reasons.ACCEPTED,
            f"AffinityGroup {group.name} is enforced at placement and by moves",
        )
    for name, policy in world.desired.policies.items():
        hosts = world.matching_hosts(policy.spec.host_selector)
        out.verdict(
            ("SchedulingPolicy", name),
            True,
            reasons.ACCEPTED,
            f"SchedulingPolicy {name} governs {len(hosts)} host(s)",
            hosts=hosts,
        )
    for key, (reason, message) in world.desired.problems.items():
        out.verdict(key, False, reason, message, stalled=True)
