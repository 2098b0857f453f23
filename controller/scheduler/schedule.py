"""Placing VMs on hosts: filters, then weights, with every verdict kept.

`schedule_vm` answers for one VM; `schedule_many` places a batch in HA-priority
order; `check_placement` lists the hard rules a current placement breaks. All three
are thin wrappers over `SchedulingPass`, which a caller placing many VMs in one
planning pass can keep and reuse: it builds the host columns and resolves affinity
once, then each placement costs O(hosts) vectorised work plus O(the VM's groups).

Rules the pass applies (and `check_placement` checks) for affinity:
- hard VM-VM positive: a VM must join the host holding most of the other members
  (ties: the first host by name). A placed member violates the rule when another
  host holds more members than its own, counting itself (ties: first by name), so
  exactly one side of a split moves and the group converges without swapping;
- hard VM-VM negative: no other member on the host. Of two members sharing a host,
  the one whose name sorts later violates (moves); the other stays;
- hard VM-host positive / negative: the host must / must not be one of the group's hosts;
- soft rules are the SoftAffinity weight (see `_affinity_rules`).
Each hard rule is enforced only on hosts whose policy lists the filter that owns it
(Affinity, HostSelector); maintenance always requires a running VM to leave.

Allocations: a HostView's allocation counts every VM `placements` puts on it. A VM
that already has a host gives its own allocation back there while it is evaluated,
and it never counts as its own affinity partner.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from controller.scheduler.affinity import AffinityIndex, as_index
from controller.scheduler.filters import FilterOutcome, HardRule, run_filters
from controller.scheduler.fleet import Fleet
from controller.scheduler.model import HostView, Placement, VMRequest
from controller.scheduler.text import plural
from controller.scheduler.verdicts import VerdictTable, no_fit_message, placed_message
from controller.scheduler.weights import Scores, score_hosts
from schemas.affinity import AffinityEnforcement, AffinityGroup, AffinityPolarity
from schemas.policy import FilterName

if TYPE_CHECKING:
    from controller.plan.model import PolicyContext

SCHEDULED = "Scheduled"
"""A host was chosen for the VM."""
NO_HOST_FITS = "NoHostFits"
"""Every host failed at least one filter; the message says which and why."""

EXCLUDED = "Excluded"
"""Pseudo-filter name for hosts the caller ruled out (e.g. the host being drained)."""

Affinity = Sequence[AffinityGroup] | AffinityIndex

_HARD = AffinityEnforcement.HARD
_SOFT = AffinityEnforcement.SOFT
_POS = AffinityPolarity.POSITIVE
_NEG = AffinityPolarity.NEGATIVE


def placement_order(vms: Sequence[VMRequest]) -> list[VMRequest]:
    """Return VMs in the order they are placed: HA priority high to low, then by name."""
    return sorted(vms, key=lambda v: (-v.ha_priority, v.name))


@dataclass(frozen=True)
class Evaluation:
    """One VM evaluated on every host: filter outcomes, the fits column and the scores.

    `cpu_used` / `mem_used` are the allocations with the VM's own given back on its
    current host.
    """

    fits: np.ndarray
    outcomes: list[FilterOutcome]
    scores: Scores
    cpu_used: np.ndarray
    mem_used: np.ndarray
    has_hard_rules: bool


class SchedulingPass:
    """The scheduler's state for one planning pass: host columns, affinity, placements.

    `placements` (VM name -> host) is never modified; commits go to an overlay. The
    HostViews are never modified; commits go to the fleet's running tally.
    """

    def __init__(
        self,
        hosts: Sequence[HostView],
        policy: PolicyContext,
        affinity: Affinity = (),
        placements: Mapping[str, str] | None = None,
        vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.fleet = Fleet(hosts, policy)
        self.index = as_index(affinity, vm_labels)
        self._base: Mapping[str, str] = placements if placements is not None else {}
        self._overlay: dict[str, str | None] = {}
        self._counts: dict[int, dict[int, int]] = {}
        self._host_masks: dict[int, np.ndarray] = {}

    # --- state -------------------------------------------------------------------------

    def host_of(self, vm: str) -> str | None:
        """Return the VM's host in this pass (after commits), None when unplaced."""
        if vm in self._overlay:
            return self._overlay[vm]
        return self._base.get(vm)

    def _group_ids(self, vm: VMRequest) -> tuple[int, ...]:
        known = self.index.knows(vm.name)
        ids = self.index.group_ids_of(vm.name, vm.labels)
        if not known:
            for gid in ids:
                self._counts.pop(gid, None)
        return ids

    def _member_counts(self, gid: int) -> dict[int, int]:
        """Return host index -> how many members of the group are placed there."""
        counts = self._counts.get(gid)
        if counts is None:
            counts = {}
            index = self.fleet.index
            for member in self.index.members(gid):
                host = self.host_of(member)
                hi = index.get(host) if host is not None else None
                if hi is not None:
                    counts[hi] = counts.get(hi, 0) + 1
            self._counts[gid] = counts
        return counts

    def _group_host_mask(self, gid: int) -> np.ndarray:
        mask = self._host_masks.get(gid)
        if mask is None:
            group = self.index.groups[gid]
            mask = np.array([group.has_host(h.name, h.labels) for h in self.fleet.hosts], bool)
            self._host_masks[gid] = mask
        return mask

    def commit(self, vm: VMRequest, host: str | None) -> None:
        """Record the VM on `host` (None: nowhere) in the tally, affinity counts and overlay."""
        previous = self.host_of(vm.name)
        if previous == host:
            return
        index = self.fleet.index
        if host is not None and host not in index:
            raise ValueError(f"host: {host!r} is not one of the scheduler's hosts")
        old = index.get(previous) if previous is not None else None
        new = index.get(host) if host is not None else None
        gids = self._group_ids(vm)
        if old is not None:
            self.fleet.remove(old, vm.cpu_milli, self.fleet.counted_memory(old, vm))
        if new is not None:
            self.fleet.add(new, vm.cpu_milli, self.fleet.counted_memory(new, vm))
        self._overlay[vm.name] = host
        for gid in gids:
            counts = self._counts.get(gid)
            if counts is None:
                continue
            if old is not None:
                counts[old] -= 1
                if not counts[old]:
                    del counts[old]
            if new is not None:
                counts[new] = counts.get(new, 0) + 1

    # --- evaluation ----------------------------------------------------------------------

    def _others(self, gid: int, current: int | None) -> dict[int, int]:
        counts = self._member_counts(gid)
        if current is None or current not in counts:
            return counts
        others = dict(counts)
        others[current] -= 1
        if not others[current]:
            del others[current]
        return others

    def _affinity_rules(
        self, vm: VMRequest, current: int | None
    ) -> tuple[list[HardRule], list[np.ndarray]]:
        """Return the VM's hard rules (allowed hosts) and soft rule scores (0..1 per host).

        Soft VM-VM positive scores a host by the share of the other placed members it
        holds; soft negative by one minus that share; soft VM-host rules score 1 on
        the preferred side, 0 on the other. A VM-VM rule with no other member placed
        expresses no preference and is left out.
        """
        hard: list[HardRule] = []
        soft: list[np.ndarray] = []
        names = self.fleet.names
        size = self.fleet.size
        for gid in self._group_ids(vm):
            group = self.index.groups[gid]
            rule = group.vm_rule
            if rule is not None:
                others = self._others(gid, current)
                if others and rule.enforcement is _HARD and rule.polarity is _POS:
                    target = min(others, key=lambda i: (-others[i], i))
                    allowed = np.zeros(size, dtype=bool)
                    allowed[target] = True
                    hard.append(
                        HardRule(
                            group.name,
                            allowed,
                            lambda i, g=group.name, t=names[target]: (
                                f"affinity group {g}: its members run on {t}"
                            ),
                        )
                    )
                elif others and rule.enforcement is _HARD:
                    allowed = np.ones(size, dtype=bool)
                    allowed[list(others)] = False
                    snapshot = dict(others)
                    hard.append(
                        HardRule(
                            group.name,
                            allowed,
                            lambda i, g=group.name, c=snapshot: (
                                f"anti-affinity group {g}: {plural(c.get(i, 0), 'member')} there"
                            ),
                        )
                    )
                elif others:
                    total = sum(others.values())
                    share = np.zeros(size, dtype=np.float64)
                    share[list(others)] = np.fromiter(others.values(), float, len(others)) / total
                    soft.append(share if rule.polarity is _POS else 1.0 - share)
            host_rule = group.host_rule
            if host_rule is not None:
                mask = self._group_host_mask(gid)
                positive = host_rule.polarity is _POS
                if host_rule.enforcement is _HARD:
                    hard.append(
                        HardRule(
                            group.name,
                            mask if positive else ~mask,
                            (
                                lambda i, g=group.name: (
                                    f"host affinity group {g}: not one of its hosts"
                                )
                            )
                            if positive
                            else (
                                lambda i, g=group.name: (
                                    f"host anti-affinity group {g}: one of its hosts"
                                )
                            ),
                        )
                    )
                else:
                    soft.append(mask.astype(np.float64) if positive else (~mask).astype(np.float64))
        return hard, soft

    def columns(self, vm: VMRequest, exclude: Mapping[str, str] | None = None) -> Evaluation:
        """Return the raw evaluation of the VM on every host (filters, fits, scores)."""
        fleet = self.fleet
        current_host = self.host_of(vm.name)
        current = fleet.index.get(current_host) if current_host is not None else None
        cpu_used = fleet.cpu_alloc
        mem_used = fleet.mem_alloc
        if current is not None:
            cpu_used = cpu_used.copy()
            mem_used = mem_used.copy()
            cpu_used[current] -= vm.cpu_milli
            mem_used[current] -= fleet.counted_memory(current, vm)
        hard, soft = self._affinity_rules(vm, current)
        outcomes = run_filters(
            fleet, vm, fleet.cpu_allocatable - cpu_used, fleet.mem_allocatable - mem_used, hard
        )
        if exclude:
            outcomes.append(_exclusion(fleet, exclude))
        fits = outcomes[0].passes
        for outcome in outcomes[1:]:
            fits = fits & outcome.passes
        scores = score_hosts(fleet, vm, cpu_used, mem_used, soft)
        return Evaluation(fits, outcomes, scores, cpu_used, mem_used, bool(hard))

    def evaluate(self, vm: VMRequest, exclude: Mapping[str, str] | None = None) -> Placement:
        """Return the best host for the VM and a verdict for every host; commits nothing.

        `exclude` maps host names to a reason they are ruled out for this VM (a
        drain's source host: "being drained"). Ties go to the first host by name.
        """
        fleet = self.fleet
        ev = self.columns(vm, exclude)
        table = VerdictTable(fleet, ev.fits, ev.outcomes, ev.scores)
        candidates = np.flatnonzero(ev.fits)
        if not len(candidates):
            message = no_fit_message(fleet, vm, table, ev.fits, ev.outcomes, ev.has_hard_rules)
            return Placement(vm.name, None, table, message, NO_HOST_FITS)
        total = ev.scores.total
        best = int(candidates[int(np.argmax(total[candidates]))])
        message = placed_message(fleet, best, candidates, total, fleet.size - len(candidates))
        return Placement(
            vm.name, fleet.names[best], table, message, SCHEDULED, round(float(total[best]), 4)
        )

    def verdicts(self, vm: VMRequest, ev: Evaluation) -> VerdictTable:
        """Return the verdict sequence of an evaluation."""
        return VerdictTable(self.fleet, ev.fits, ev.outcomes, ev.scores)

    def place(self, vm: VMRequest, exclude: Mapping[str, str] | None = None) -> Placement:
        """Evaluate the VM and, when a host fits, commit it there; return the Placement."""
        placement = self.evaluate(vm, exclude)
        if placement.host is not None:
            self.commit(vm, placement.host)
        return placement

    # --- checking a current placement ------------------------------------------------

    def violations(self, vm: VMRequest, host: str) -> list[str]:
        """Return the hard rules the VM breaks by running on `host` ([] when none)."""
        fleet = self.fleet
        hi = fleet.index.get(host)
        if hi is None:
            return [f"host {host} is not a known host"]
        view = fleet.hosts[hi]
        found: list[str] = []
        if view.maintenance:
            found.append(f"host {host} is in maintenance")
        if fleet.filter_on[FilterName.HOST_SELECTOR][hi]:
            if vm.pinned_host is not None and vm.pinned_host != host:
                found.append(f"pinned to {vm.pinned_host}, runs on {host}")
            selector = vm.host_selector
            if selector is not None and not selector.matches(view.labels):
                found.append(f"host {host} does not match selector {selector.describe()}")
        if fleet.filter_on[FilterName.AFFINITY][hi]:
            found.extend(self._affinity_violations(vm, host, hi))
        return found

    def _affinity_violations(self, vm: VMRequest, host: str, hi: int) -> list[str]:
        found: list[str] = []
        current_host = self.host_of(vm.name)
        current = self.fleet.index.get(current_host) if current_host is not None else None
        for gid in self._group_ids(vm):
            group = self.index.groups[gid]
            if group.vm_rule_is(_POS, _HARD):
                counts = dict(self._others(gid, current))
                counts[hi] = counts.get(hi, 0) + 1
                majority = min(counts, key=lambda i: (-counts[i], i))
                if majority != hi:
                    found.append(
                        f"affinity group {group.name}: its members run on "
                        f"{self.fleet.names[majority]}"
                    )
            elif group.vm_rule_is(_NEG, _HARD):
                senior = sorted(
                    m for m in self.index.members(gid) if m < vm.name and self.host_of(m) == host
                )
                if senior:
                    found.append(f"anti-affinity group {group.name}: {senior[0]} runs on {host}")
            if group.host_rule_is(_POS, _HARD) and not self._group_host_mask(gid)[hi]:
                found.append(f"host affinity group {group.name}: {host} is not one of its hosts")
            elif group.host_rule_is(_NEG, _HARD) and self._group_host_mask(gid)[hi]:
                found.append(f"host anti-affinity group {group.name}: {host} is one of its hosts")
        return found


def _exclusion(fleet: Fleet, exclude: Mapping[str, str]) -> FilterOutcome:
    mask = np.ones(fleet.size, dtype=bool)
    for name in exclude:
        i = fleet.index.get(name)
        if i is not None:
            mask[i] = False
    names = fleet.names
    return FilterOutcome(EXCLUDED, mask, lambda i: exclude[names[i]])


def schedule_vm(
    vm: VMRequest,
    hosts: Sequence[HostView],
    policy: PolicyContext,
    affinity: Affinity = (),
    placements: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    exclude: Mapping[str, str] | None = None,
) -> Placement:
    """Return where the VM should run (host None: nowhere fits) with every host's verdict.

    `placements` maps already-placed VM names to hosts (including VMs placed earlier
    in the same planning pass); `vm_labels` gives every VM's labels so that affinity
    `vmSelector`s resolve (or pass a prebuilt AffinityIndex as `affinity`).
    """
    return SchedulingPass(hosts, policy, affinity, placements, vm_labels).evaluate(vm, exclude)


def schedule_many(
    vms: Sequence[VMRequest],
    hosts: Sequence[HostView],
    policy: PolicyContext,
    affinity: Affinity = (),
    placements: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Placement]:
    """Return a Placement per VM, placed in HA priority (high first) then name order.

    Each placement sees the allocations and affinity of those placed before it. The
    list is in placement order; a VM that fits nowhere gets host None and does not
    stop the others.
    """
    session = SchedulingPass(hosts, policy, affinity, placements, vm_labels)
    session.index.add_vms((v.name, v.labels) for v in vms)
    return [session.place(vm) for vm in placement_order(vms)]


def check_placement(
    vm: VMRequest,
    host: str,
    hosts: Sequence[HostView],
    policy: PolicyContext,
    affinity: Affinity = (),
    placements: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """Return the hard rules the VM breaks by running on `host`; [] when it may stay.

    Checked: maintenance, pinned host, host selector, hard affinity (VM-VM and
    VM-host). Not checked: capacity and health — a running VM is not moved for those.
    """
    return SchedulingPass(hosts, policy, affinity, placements, vm_labels).violations(vm, host)
