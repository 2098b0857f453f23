"""Balancing and draining: which running VMs to live-migrate where, within a budget.

`plan_rebalance` follows each SchedulingPolicy's balancer over the hosts it governs:

- EvenDistribution: utilisation is a host's dominant-resource allocation (the larger
  of its CPU and memory fractions of allocatable). A move of VM v from host s to
  host t is worth `benefit = (u_s - u_t) - |u_s' - u_t'|`, the percentage points by
  which it closes the gap between the two hosts (primes: after the move). A move is
  made only when it closes the gap at all and by at least `minimumBenefitPercent`,
  or by any amount when s is above `highUtilizationPercent`; and never when t
  would end above `highUtilizationPercent`. Every move shrinks a gap, so moving the
  VM back has a negative benefit: a balanced fleet yields no moves, and planning
  again on the result of a plan yields no moves (no flapping).
- PowerSaving, inside `powerSavingHours` (UTC, may wrap midnight; unset: always):
  hosts below `lowUtilizationPercent` are emptied, least utilised first, onto the
  fullest other hosts that stay at or below `highUtilizationPercent`; a host is
  emptied only if all its VMs can go. Empty hosts are reported: they could be
  powered off. Outside the hours it balances like EvenDistribution.

Both respect every hard filter (affinity, selectors, pins, maintenance) through the
scheduler, move each VM at most once per pass, never move a non-migratable VM, and
stay within the disruption budget: `maxMigrationsPerHost` (as source or target) and
`maxMigrationsFleet`, both counting the migrations already in flight, and a per-pass
move cap. `plan_drain` empties a host in maintenance within the same budget.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import TYPE_CHECKING

import numpy as np

from controller.scheduler.schedule import Affinity, SchedulingPass, placement_order
from controller.scheduler.text import plural
from controller.scheduler.weights import utilisation_after
from schemas.policy import BalancerType, SchedulingPolicySpec

if TYPE_CHECKING:
    from controller.plan.model import PolicyContext
    from controller.scheduler.model import HostView, VMRequest

REBALANCE = "Rebalance"
"""A VM moves to even out utilisation (EvenDistribution)."""
POWER_SAVING = "PowerSaving"
"""A VM moves off an underused host so that the host can be powered off."""
DRAIN = "Drain"
"""A VM moves off a host in maintenance."""
NO_HOST_FITS = "NoHostFits"
"""A VM to drain fits on no other host; it keeps running where it is."""
MIGRATION_NOT_ALLOWED = "MigrationNotAllowed"
"""A VM to drain forbids live migration; it keeps running where it is."""
WAITING_FOR_BUDGET = "WaitingForBudget"
"""A VM to drain waits: the disruption budget allows no more migrations now."""

DEFAULT_MAX_MOVES = 16
"""Moves planned per pass at most, whatever the budget: later passes continue the work."""


@dataclass(frozen=True)
class Move:
    """One live migration to plan: the VM, from where, to where, and why."""

    vm: str
    source: str
    target: str
    reason: str
    message: str


@dataclass(frozen=True)
class RebalancePlan:
    """The moves of one balancing pass and the hosts left empty (could be powered off)."""

    moves: tuple[Move, ...] = ()
    empty_hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class DrainVerdict:
    """Why a VM on a draining host does not move in this pass (it keeps running)."""

    vm: str
    reason: str
    message: str


@dataclass(frozen=True)
class DrainPlan:
    """The moves that drain a host in this pass, the VMs that cannot move yet, and why."""

    host: str
    moves: tuple[Move, ...]
    blocked: tuple[DrainVerdict, ...]

    @property
    def done(self) -> bool:
        """True when nothing is left on the host to move."""
        return not self.moves and not self.blocked


def in_hours(hours: str | None, now: datetime) -> bool:
    """Return True when `now` (UTC) is inside "HH:MM-HH:MM"; None means always.

    The start is inclusive and the end exclusive; a window whose end is not after
    its start wraps midnight ("22:00-06:00"); equal ends mean the whole day.
    """
    if hours is None:
        return True
    start_text, end_text = hours.split("-")
    start = time.fromisoformat(start_text)
    end = time.fromisoformat(end_text)
    moment = now.astimezone(UTC).time() if now.tzinfo else now.time()
    if start == end:
        return True
    if start < end:
        return start <= moment < end
    return moment >= start or moment < end


class _Budget:
    """Migrations left per host and in the fleet, counting those in flight."""

    def __init__(self, session: SchedulingPass, max_moves: int) -> None:
        fleet = session.fleet
        self.per_host = (
            np.array(
                [p.disruption_budget.max_migrations_per_host for p in fleet.policies],
                dtype=np.int64,
            )
            - fleet.in_flight
        )
        caps = {p.disruption_budget.max_migrations_fleet for p in fleet.policies}
        fleet_cap = min(caps) if caps else 0
        self.fleet_left = min(fleet_cap - int(fleet.in_flight.sum()), max_moves)

    def exhausted(self) -> bool:
        return self.fleet_left <= 0

    def host_ok(self) -> np.ndarray:
        return self.per_host > 0

    def spend(self, source: int, target: int) -> None:
        self.per_host[source] -= 1
        self.per_host[target] -= 1
        self.fleet_left -= 1


def _policy_groups(session: SchedulingPass) -> list[tuple[SchedulingPolicySpec, np.ndarray]]:
    """Return each distinct policy in force with the mask of the hosts it governs."""
    seen: dict[int, tuple[SchedulingPolicySpec, list[int]]] = {}
    for i, p in enumerate(session.fleet.policies):
        seen.setdefault(id(p), (p, []))[1].append(i)
    groups = []
    for p, members in seen.values():
        mask = np.zeros(session.fleet.size, dtype=bool)
        mask[members] = True
        groups.append((p, mask))
    return sorted(groups, key=lambda g: int(np.flatnonzero(g[1])[0]))


class _Balancer:
    """The state of one balancing pass: the scheduler session, VMs per host, budget, moves."""

    def __init__(
        self,
        session: SchedulingPass,
        vms: Sequence[VMRequest],
        budget: _Budget,
    ) -> None:
        self.session = session
        self.fleet = session.fleet
        self.budget = budget
        self.on_host: list[list[VMRequest]] = [[] for _ in range(self.fleet.size)]
        for vm in sorted(vms, key=lambda v: v.name):
            where = session.host_of(vm.name)
            hi = self.fleet.index.get(where) if where is not None else None
            if hi is not None:
                self.on_host[hi].append(vm)
        self.moved: set[str] = set()
        self.moves: list[Move] = []
        usable = ~self.fleet.maintenance & self.fleet.healthy
        self.usable = usable

    def _exclusions(self, domain: np.ndarray, source: int) -> dict[str, str]:
        names = self.fleet.names
        out = {names[i]: "outside the policy's hosts" for i in np.flatnonzero(~domain)}
        for i in np.flatnonzero(~self.budget.host_ok()):
            out[names[int(i)]] = "migration budget reached"
        out[names[source]] = "source host"
        return out

    def _move(self, vm: VMRequest, source: int, target: int, reason: str, message: str) -> None:
        """Commit one step; a VM stepping again in the same pass keeps one Move, origin to end.

        Letting a VM step twice lets a pass run until no step helps, which is what
        makes planning again on its result come back empty.
        """
        names = self.fleet.names
        self.session.commit(vm, names[target])
        self.on_host[source].remove(vm)
        self.on_host[target].append(vm)
        self.moved.add(vm.name)
        self.budget.spend(source, target)
        origin = names[source]
        for k, earlier in enumerate(self.moves):
            if earlier.vm == vm.name:
                origin = earlier.source
                del self.moves[k]
                break
        if origin != names[target]:
            text = f"Moving {vm.name} from {origin} to {names[target]}: {message}"
            self.moves.append(Move(vm.name, origin, names[target], reason, text))

    # --- even distribution ---------------------------------------------------------------

    def even(self, policy: SchedulingPolicySpec, domain: np.ndarray) -> None:
        balancer = policy.balancer
        high = balancer.high_utilization_percent / 100
        minimum = balancer.minimum_benefit_percent / 100
        eligible = domain & self.usable
        while not self.budget.exhausted():
            if not self._even_step(eligible, high, minimum):
                return

    def _even_step(self, eligible: np.ndarray, high: float, minimum: float) -> bool:
        util = self.fleet.utilisation()
        targets = eligible & self.budget.host_ok()
        if not targets.any():
            return False
        floor = float(util[targets].min())
        sources = [
            int(i)
            for i in np.flatnonzero(eligible & self.budget.host_ok())
            if self.on_host[i] and (util[i] - floor >= minimum or util[i] > high)
        ]
        sources.sort(key=lambda i: (-util[i], i))
        for source in sources:
            best = self._best_even_move(source, util, eligible, high, minimum)
            if best is not None:
                vm, target, benefit = best
                self._move(
                    vm,
                    source,
                    target,
                    REBALANCE,
                    f"{self.fleet.names[source]} is {util[source]:.0%} used, "
                    f"{self.fleet.names[target]} {util[target]:.0%}: the move closes the gap "
                    f"by {benefit:.0%}",
                )
                return True
        return False

    def _best_even_move(
        self, source: int, util: np.ndarray, eligible: np.ndarray, high: float, minimum: float
    ) -> tuple[VMRequest, int, float] | None:
        fleet = self.fleet
        u_source = float(util[source])
        best: tuple[VMRequest, int, float] | None = None
        exclude = self._exclusions(eligible, source)
        for vm in self.on_host[source]:
            if not vm.migratable:
                continue
            ev = self.session.columns(vm, exclude)
            if not ev.fits.any():
                continue
            after_target = utilisation_after(fleet, ev.cpu_used, ev.mem_used, vm)
            after_source = fleet.host_utilisation(source, ev.cpu_used, ev.mem_used)
            benefit = (u_source - util) - np.abs(after_source - after_target)
            allowed = ev.fits & (after_target <= high) & (benefit > 1e-9)
            if u_source <= high:
                allowed &= benefit >= minimum - 1e-9
            if not allowed.any():
                continue
            candidates = np.flatnonzero(allowed)
            top = float(benefit[candidates].max())
            # Among equally good moves, the emptiest target closes the fleet's spread most.
            tied = candidates[benefit[candidates] >= top - 1e-9]
            target = int(tied[int(np.argmin(after_target[tied]))])
            gain = float(benefit[target])
            if best is None or gain > best[2] + 1e-12:
                best = (vm, target, gain)
        return best

    # --- power saving --------------------------------------------------------------------

    def pack(self, policy: SchedulingPolicySpec, domain: np.ndarray) -> None:
        balancer = policy.balancer
        high = balancer.high_utilization_percent / 100
        low = balancer.low_utilization_percent / 100
        eligible = domain & self.usable
        util = self.fleet.utilisation()
        candidates = [int(i) for i in np.flatnonzero(eligible) if self.on_host[i] and util[i] < low]
        candidates.sort(key=lambda i: (util[i], i))
        receivers: set[int] = set()
        emptied: set[int] = set()
        for source in candidates:
            if self.budget.exhausted():
                return
            if source in receivers or self.fleet.utilisation()[source] >= low:
                continue
            plan = self._plan_evacuation(source, eligible, emptied, high)
            if plan is None:
                continue
            emptied.add(source)
            for vm, target in plan:
                if self.budget.exhausted() or not (
                    self.budget.per_host[source] > 0 and self.budget.per_host[target] > 0
                ):
                    return
                receivers.add(target)
                self._move(
                    vm,
                    source,
                    target,
                    POWER_SAVING,
                    f"{self.fleet.names[source]} is underused and can then be powered off",
                )

    def _plan_evacuation(
        self, source: int, eligible: np.ndarray, emptied: set[int], high: float
    ) -> list[tuple[VMRequest, int]] | None:
        """Return where every VM of `source` goes (fullest host first), or None if one can't.

        Tried on the session and undone, so the caller commits only a complete plan.
        """
        fleet = self.fleet
        names = fleet.names
        exclude = {names[i]: "outside the policy's hosts" for i in np.flatnonzero(~eligible)}
        exclude.update({names[i]: "being emptied" for i in emptied})
        exclude.update({names[i]: "empty" for i in range(fleet.size) if not self.on_host[i]})
        exclude.update(
            {
                names[int(i)]: "migration budget reached"
                for i in np.flatnonzero(~self.budget.host_ok())
            }
        )
        exclude[names[source]] = "source host"
        vms = sorted(self.on_host[source], key=lambda v: (-v.memory, -v.cpu_milli, v.name))
        plan: list[tuple[VMRequest, int]] = []
        for vm in vms:
            if vm.name in self.moved or not vm.migratable:
                break
            ev = self.session.columns(vm, exclude)
            after = utilisation_after(fleet, ev.cpu_used, ev.mem_used, vm)
            allowed = ev.fits & (after <= high)
            if not allowed.any():
                break
            options = np.flatnonzero(allowed)
            target = int(options[int(np.argmax(after[options]))])
            self.session.commit(vm, names[target])
            plan.append((vm, target))
        for vm, _ in plan:
            self.session.commit(vm, names[source])
        return plan if len(plan) == len(vms) else None


def plan_rebalance(
    hosts: Sequence[HostView],
    vms: Sequence[VMRequest],
    placements: Mapping[str, str],
    policy: PolicyContext,
    now: datetime,
    affinity: Affinity = (),
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    max_moves: int = DEFAULT_MAX_MOVES,
) -> RebalancePlan:
    """Return the migrations each host's balancer wants now, and the hosts left empty.

    `vms` are the running VMs that may be moved, `placements` where they (and every
    other placed VM) run. Hosts are balanced within their own policy's hosts; a
    host whose policy has balancer None is neither source nor target. Empty hosts
    are reported for policies that are in their power-saving hours.
    """
    session = SchedulingPass(hosts, policy, affinity, placements, vm_labels)
    session.index.add_vms((v.name, v.labels) for v in vms)
    balancer = _Balancer(session, vms, _Budget(session, max_moves))
    empty_domains = np.zeros(session.fleet.size, dtype=bool)
    for spec, domain in _policy_groups(session):
        kind = spec.balancer.type
        if kind is BalancerType.EVEN_DISTRIBUTION:
            balancer.even(spec, domain)
        elif kind is BalancerType.POWER_SAVING and in_hours(spec.balancer.power_saving_hours, now):
            balancer.pack(spec, domain)
            empty_domains |= domain
        elif kind is BalancerType.POWER_SAVING:
            balancer.even(spec, domain)
    empty = [
        session.fleet.names[i]
        for i in np.flatnonzero(empty_domains & balancer.usable)
        if not balancer.on_host[int(i)]
    ]
    return RebalancePlan(tuple(balancer.moves), tuple(empty))


def plan_drain(
    host: str,
    hosts: Sequence[HostView],
    vms: Sequence[VMRequest],
    placements: Mapping[str, str],
    policy: PolicyContext,
    affinity: Affinity = (),
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    max_moves: int = DEFAULT_MAX_MOVES,
) -> DrainPlan:
    """Return the moves that empty `host` now, in HA priority order, within the budget.

    Each target is chosen by the scheduler (all filters and weights), with the
    drained host and hosts at their migration budget ruled out. A VM that cannot
    move now keeps running and gets a verdict: it fits nowhere (the scheduler's
    message), forbids migration, or waits for the budget.
    """
    session = SchedulingPass(hosts, policy, affinity, placements, vm_labels)
    fleet = session.fleet
    if host not in fleet.index:
        raise ValueError(f"host: {host!r} is not one of the scheduler's hosts")
    source = fleet.index[host]
    mine = [v for v in vms if session.host_of(v.name) == host]
    session.index.add_vms((v.name, v.labels) for v in mine)
    budget = _Budget(session, max_moves)
    moves: list[Move] = []
    blocked: list[DrainVerdict] = []
    for vm in placement_order(mine):
        if not vm.migratable:
            blocked.append(
                DrainVerdict(
                    vm.name,
                    MIGRATION_NOT_ALLOWED,
                    f"{vm.name} stays on {host}: its migration policy forbids live migration",
                )
            )
            continue
        if budget.exhausted() or budget.per_host[source] <= 0:
            in_flight = int(fleet.in_flight.sum()) + len(moves)
            blocked.append(
                DrainVerdict(
                    vm.name,
                    WAITING_FOR_BUDGET,
                    f"{vm.name} waits to leave {host}: the disruption budget allows no more "
                    f"migrations now ({plural(in_flight, 'migration')} in flight or planned)",
                )
            )
            continue
        exclude = {
            fleet.names[int(i)]: "migration budget reached"
            for i in np.flatnonzero(~budget.host_ok())
        }
        exclude[host] = "being drained"
        placement = session.evaluate(vm, exclude)
        if placement.host is None:
            blocked.append(
                DrainVerdict(
                    vm.name,
                    NO_HOST_FITS,
                    f"{vm.name} cannot leave {host} and keeps running there: {placement.message}",
                )
            )
            continue
        target = fleet.index[placement.host]
        session.commit(vm, placement.host)
        budget.spend(source, target)
        moves.append(
            Move(
                vm.name,
                host,
                placement.host,
                DRAIN,
                f"Moving {vm.name} off {host} (maintenance): {placement.message}",
            )
        )
    return DrainPlan(host, tuple(moves), tuple(blocked))
