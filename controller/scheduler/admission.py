"""HA admission control (N+1): could every HA VM restart if any one host were lost? (pure)

As with vSphere HA's admission control, the loss of each host that is up is simulated:
its HA VMs are restarted through the scheduler the way controller.ha.plan_ha_restarts
restarts them after a real failure (HA priority, then name; the lost host excluded;
within the capacity the other hosts have left), and the outcome says which would
restart where and which would find no host, with the scheduler's reason.
`what_if_down` does the same for any set of hosts lost at once.

Hosts in maintenance or not up are never restart targets, even under a policy that
does not list the Maintenance or HostHealth filter: capacity that is being emptied or
is not answering cannot be promised to a failover.

Why one SchedulingPass for every simulated loss: building the host columns costs
O(hosts), and with one loss per host a pass per loss would cost O(hosts²) before any
placement. Each loss commits its restarts to the shared pass and then commits them back
to their lost host, which restores the allocation tally and the affinity counts exactly;
a loss then costs only the placements of its own HA VMs.

Even so, one placement is O(hosts) of vectorised work, and every HA VM of the fleet is
placed once: 12,500 HA VMs on 5,000 hosts take seconds. When only the verdict is asked
(`targets=False`, as the planner asks every pass), a loss is first checked by counting:
the j-th HA VM of a host (in placement order) certainly finds a host when at least j
hosts pass the scheduler's filters for it before any restart, because each earlier
restart changes the columns of one host only. The filter columns are computed once per
kind of VM (size, networks, pools, selector, pin, hard affinity groups), not per VM.
A host whose loss the count cannot clear is simulated in full, so the verdict and the
VMs left without a host are the same either way; only restart targets are left out.
VMs in a hard positive affinity group are always simulated: one restart can narrow the
whole group to a single host.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from controller.ha import HA_RESTART, NO_HOST_FOR_RESTART, HADecision
from controller.scheduler.fleet import selector_key
from controller.scheduler.model import HostView, VMRequest
from controller.scheduler.schedule import Affinity, SchedulingPass, placement_order
from controller.scheduler.text import join_names, plural
from schemas.affinity import AffinityEnforcement, AffinityPolarity
from schemas.policy import FilterName

if TYPE_CHECKING:
    from controller.plan.model import PolicyContext

TOLERATES_HOST_LOSS = "ToleratesHostLoss"
"""Every HA VM of the lost host(s) would restart on another host."""
HOST_LOSS_STRANDS_VMS = "HostLossStrandsVMs"
"""Losing the host(s) would leave HA VMs with no host to restart on."""
CANNOT_RESTART_ELSEWHERE = "CannotRestartElsewhere"
"""The HA VM could not run on any other host whatever the capacity (disks on host-local pools)."""

LOST = "lost"
"""How a lost host reads in a restart's verdicts ("host-b lost")."""
STRANDED_NAMES_SHOWN = 5
"""A message names this many HA VMs left without a host, then says how many more."""

_HARD = AffinityEnforcement.HARD
_POS = AffinityPolarity.POSITIVE
_NEG = AffinityPolarity.NEGATIVE


@dataclass(frozen=True)
class HostLossOutcome:
    """What losing `hosts_down` at once would do to the VMs on them.

    `restarts` (reason HARestart) and `stranded` (NoHostForRestart or
    CannotRestartElsewhere, no target) are HADecisions in placement order: HA priority
    high to low, then name. A restart has its target, except where only the verdict was
    asked and counting proved that enough hosts fit (target and placement None). `lost`
    names the VMs without HA: they stay down with their host, as after a real failure.
    """

    hosts_down: tuple[str, ...]
    restarts: tuple[HADecision, ...]
    stranded: tuple[HADecision, ...]
    lost: tuple[str, ...]

    @property
    def tolerated(self) -> bool:
        """True when every HA VM on the lost hosts would restart elsewhere."""
        return not self.stranded

    @property
    def reason(self) -> str:
        return TOLERATES_HOST_LOSS if self.tolerated else HOST_LOSS_STRANDS_VMS

    @property
    def message(self) -> str:
        """Return "Losing host-b would leave web-3, db-1 without a host; web-3: No host has ..."."""
        losing = f"Losing {', '.join(self.hosts_down)}"
        if self.stranded:
            names = join_names([d.vm for d in self.stranded], STRANDED_NAMES_SHOWN)
            first = self.stranded[0]
            return f"{losing} would leave {names} without a host; {first.vm}: {_why(first)}"
        if not self.restarts:
            return f"{losing} would restart no HA VM (none runs there)"
        return f"{losing} would restart {plural(len(self.restarts), 'HA VM')} on other hosts"


@dataclass(frozen=True)
class HAAdmission:
    """Whether the fleet tolerates the loss of any one host (N+1), and each loss's outcome.

    `per_host` holds one outcome per host that is up, in name order. `worst_host` is
    the host whose loss leaves the most HA VMs without a host (ties: first by name),
    None when every loss is tolerated.
    """

    tolerates_one_host_loss: bool
    worst_host: str | None
    per_host: tuple[HostLossOutcome, ...]

    def outcome(self, host: str) -> HostLossOutcome | None:
        """Return the outcome of losing `host`, None when its loss was not simulated."""
        return next((o for o in self.per_host if o.hosts_down == (host,)), None)

    @property
    def reason(self) -> str:
        return TOLERATES_HOST_LOSS if self.tolerates_one_host_loss else HOST_LOSS_STRANDS_VMS

    @property
    def message(self) -> str:
        """Return the verdict in one sentence (see admission_message)."""
        return admission_message(
            len(self.per_host),
            [(o.hosts_down[0], len(o.stranded), o.message) for o in self.per_host],
        )


def admission_message(hosts_up: int, losses: Iterable[tuple[str, int, str]]) -> str:
    """Return the fleet's verdict from each simulated loss as (host, HA VMs stranded, message).

    "Tolerates the loss of any one host (12 hosts up)", or the worst loss's message and
    how many other losses would strand VMs too. Shared by HAAdmission and the status
    readers, which rebuild it from the hosts' stored statuses.
    """
    failing = {host: (stranded, message) for host, stranded, message in losses if stranded}
    worst = _worst((host, stranded) for host, (stranded, _) in failing.items())
    if worst is None:
        return f"Tolerates the loss of any one host ({plural(hosts_up, 'host')} up)"
    more = len(failing) - 1
    also = f"; losing {plural(more, 'other host')} would strand HA VMs too" if more else ""
    return failing[worst][1] + also


def _worst(losses: Iterable[tuple[str, int]]) -> str | None:
    """Return the host whose loss strands the most HA VMs (ties: first by name), None if none."""
    failing = [loss for loss in losses if loss[1] > 0]
    return min(failing, key=lambda loss: (-loss[1], loss[0]))[0] if failing else None


def assess_ha_admission(
    hosts: Sequence[HostView],
    vms_by_host: Mapping[str, Sequence[VMRequest]],
    policy: PolicyContext,
    affinity: Affinity = (),
    placements: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    unrestartable: Mapping[str, str] | None = None,
    *,
    targets: bool = True,
) -> HAAdmission:
    """Return whether every HA VM could restart after the loss of any one host that is up.

    Takes what plan_ha_restarts takes: the HostViews (allocations counting every placed
    VM), the VMs on each host, the policy, affinity, and optionally every VM's host and
    labels (default: from `vms_by_host`). `unrestartable` maps HA VMs that can run on no
    other host to why (their disks are on host-local pools); they count as stranded.
    With `targets=False` restarts proved by counting carry no target (module docstring):
    the same verdict, much faster at fleet scale.
    """
    sim = _Simulation(hosts, vms_by_host, policy, affinity, placements, vm_labels, unrestartable)
    per_host = []
    for host in sim.session.fleet.hosts:
        if not host.healthy:
            continue
        down = (host.name,)
        counted = None if targets else sim.counted(down)
        per_host.append(counted if counted is not None else sim.lose(down))
    worst = _worst((o.hosts_down[0], len(o.stranded)) for o in per_host)
    return HAAdmission(worst is None, worst, tuple(per_host))


def what_if_down(
    hosts_down: Collection[str],
    hosts: Sequence[HostView],
    vms_by_host: Mapping[str, Sequence[VMRequest]],
    policy: PolicyContext,
    affinity: Affinity = (),
    placements: Mapping[str, str] | None = None,
    vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    unrestartable: Mapping[str, str] | None = None,
) -> HostLossOutcome:
    """Return what losing every host in `hosts_down` at once would do (see assess_ha_admission).

    The HA VMs of all of them compete for the remaining capacity in one placement
    order, as after a real failure of several hosts. Raises ValueError naming a host
    that is not among `hosts`.
    """
    sim = _Simulation(hosts, vms_by_host, policy, affinity, placements, vm_labels, unrestartable)
    known = sim.session.fleet.index
    for name in sorted(hosts_down):
        if name not in known:
            raise ValueError(f"hosts_down: {name!r} is not one of the scheduler's hosts")
    return sim.lose(tuple(sorted(hosts_down)))


class _Simulation:
    """One SchedulingPass shared by every simulated loss (see the module docstring)."""

    def __init__(
        self,
        hosts: Sequence[HostView],
        vms_by_host: Mapping[str, Sequence[VMRequest]],
        policy: PolicyContext,
        affinity: Affinity,
        placements: Mapping[str, str] | None,
        vm_labels: Mapping[str, Mapping[str, str]] | None,
        unrestartable: Mapping[str, str] | None,
    ) -> None:
        if placements is None:
            placements = {vm.name: host for host, vms in vms_by_host.items() for vm in vms}
        if vm_labels is None:
            vm_labels = {vm.name: vm.labels for vms in vms_by_host.values() for vm in vms}
        self.vms_by_host = vms_by_host
        self.unrestartable = unrestartable or {}
        self.session = SchedulingPass(hosts, policy, affinity, placements, vm_labels)
        self.session.index.add_vms(
            (vm.name, vm.labels) for vms in vms_by_host.values() for vm in vms if vm.ha
        )
        self.unavailable = _unavailable(self.session)
        self._fits: dict[tuple, tuple[np.ndarray, int | None, int]] = {}

    def lose(self, down: tuple[str, ...]) -> HostLossOutcome:
        """Return the outcome of losing `down`; the pass is left as it was found."""
        session = self.session
        exclude = {**self.unavailable, **dict.fromkeys(down, LOST)}
        origin: dict[str, str] = {}
        to_place: list[VMRequest] = []
        stranded: list[HADecision] = []
        lost: list[str] = []
        priority: dict[str, int] = {}
        for host in down:
            for vm in self.vms_by_host.get(host, ()):
                priority[vm.name] = vm.ha_priority
                if not vm.ha:
                    lost.append(vm.name)
                elif vm.name in self.unrestartable:
                    stranded.append(
                        HADecision(
                            vm.name,
                            host,
                            CANNOT_RESTART_ELSEWHERE,
                            f"HA VirtualMachine {vm.name} of {host} cannot restart elsewhere: "
                            f"{self.unrestartable[vm.name]}",
                        )
                    )
                else:
                    origin[vm.name] = host
                    to_place.append(vm)
        restarts: list[HADecision] = []
        committed: list[tuple[VMRequest, str | None]] = []
        try:
            for vm in placement_order(to_place):
                before = session.host_of(vm.name)
                placement = session.place(vm, exclude)
                source = origin[vm.name]
                if placement.host is None:
                    stranded.append(
                        HADecision(
                            vm.name,
                            source,
                            NO_HOST_FOR_RESTART,
                            f"HA VirtualMachine {vm.name} of {source} would find no host: "
                            f"{placement.message}",
                            placement=placement,
                        )
                    )
                    continue
                committed.append((vm, before))
                restarts.append(
                    HADecision(
                        vm.name,
                        source,
                        HA_RESTART,
                        f"Would restart HA VirtualMachine {vm.name} (priority {vm.ha_priority}) "
                        f"from {source} on {placement.host}: {placement.message}",
                        target=placement.host,
                        placement=placement,
                    )
                )
        finally:
            for vm, before in reversed(committed):
                session.commit(vm, before)
        stranded.sort(key=lambda d: (-priority[d.vm], d.vm))
        return HostLossOutcome(down, tuple(restarts), tuple(stranded), tuple(sorted(lost)))

    def counted(self, down: tuple[str, ...]) -> HostLossOutcome | None:
        """Return the outcome of losing `down` when counting proves every HA VM would find
        a host (restarts without targets), None when it must be simulated."""
        vms = [vm for host in down for vm in self.vms_by_host.get(host, ())]
        if any(vm.name in self.unrestartable for vm in vms if vm.ha):
            return None
        index = self.session.fleet.index
        lost = [index[host] for host in down]
        origin = {vm.name: host for host in down for vm in self.vms_by_host.get(host, ())}
        restarts = []
        for position, vm in enumerate(placement_order([vm for vm in vms if vm.ha]), 1):
            fit = self._fit_count(vm, lost)
            if fit is None or fit < position:
                return None
            source = origin[vm.name]
            restarts.append(
                HADecision(
                    vm.name,
                    source,
                    HA_RESTART,
                    f"Would restart HA VirtualMachine {vm.name} (priority {vm.ha_priority}) "
                    f"from {source}: {plural(fit, 'other host')} fit it",
                )
            )
        lost_vms = tuple(sorted(vm.name for vm in vms if not vm.ha))
        return HostLossOutcome(down, tuple(restarts), (), lost_vms)

    def _fit_count(self, vm: VMRequest, lost: list[int]) -> int | None:
        """Return how many hosts other than `lost` pass every filter for the VM before any
        restart, None when a count proves nothing (hard positive affinity).

        The columns are shared by VMs of one kind; they were computed for a
        representative with its own allocation given back on its host and its own
        place in its groups' counts, so that host is not counted for the others.
        """
        key = self._fit_key(vm)
        if key is None:
            return None
        hit = self._fits.get(key)
        if hit is None:
            fits = self.session.columns(vm, self.unavailable).fits
            home = self.session.host_of(vm.name)
            hit = (fits, self.session.fleet.index.get(home) if home else None, int(fits.sum()))
            self._fits[key] = hit
        fits, home, total = hit
        uncounted = set(lost)
        if home is not None:
            uncounted.add(home)
        return total - sum(int(fits[i]) for i in uncounted)

    def _fit_key(self, vm: VMRequest) -> tuple | None:
        """Return what the VM's filter columns depend on; None with a hard positive VM rule."""
        index = self.session.index
        hard: list[int] = []
        for gid in index.group_ids_of(vm.name, vm.labels):
            group = index.groups[gid]
            if group.vm_rule_is(_POS, _HARD):
                return None
            if group.vm_rule_is(_NEG, _HARD) or (
                group.host_rule is not None and group.host_rule.enforcement is _HARD
            ):
                hard.append(gid)
        selector = vm.host_selector
        return (
            vm.cpu_milli,
            vm.memory,
            vm.guaranteed_memory,
            vm.networks,
            vm.pools,
            selector_key(selector) if selector is not None else None,
            vm.pinned_host,
            tuple(hard),
        )


def _unavailable(session: SchedulingPass) -> dict[str, str]:
    """Return the hosts no restart may target that the policy's own filters let through."""
    fleet = session.fleet
    maintenance_on = fleet.filter_on[FilterName.MAINTENANCE]
    health_on = fleet.filter_on[FilterName.HOST_HEALTH]
    out: dict[str, str] = {}
    for i, host in enumerate(fleet.hosts):
        if host.maintenance and not maintenance_on[i]:
            out[host.name] = "maintenance"
        elif not host.healthy and not health_on[i]:
            out[host.name] = f"not up ({host.health_reason})" if host.health_reason else "not up"
    return out


def _why(decision: HADecision) -> str:
    """Return the scheduler's message (or the reason it could not be asked) for a stranded VM."""
    if decision.placement is not None:
        return decision.placement.message
    return decision.message.split(": ", 1)[-1]
