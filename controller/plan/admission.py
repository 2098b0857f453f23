"""HA admission control in the plan: what losing each host would do, carried on its verdict.

The scheduler's admission check (controller.scheduler.admission) runs on the placements
this plan leaves: every desired VM on the host it will be on, HA only for VMs that
should be running (a stopped VM is not restarted after a failure either), and HA VMs
whose disks are on host-local pools reported as unable to restart elsewhere, as the HA
step (placement._lost) treats them. Each host that is up gets a HostHAAdmission in its
status; `fleet_admission` rebuilds the fleet's one-line verdict from those statuses for
`corral status`, `corral plan` and the dashboard.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, replace

from controller.ha import POWER_FENCE_METHODS
from controller.plan.placement import Decisions
from controller.plan.requests import host_views
from controller.plan.vms import wants_running
from controller.plan.world import World
from controller.scheduler.admission import (
    HAAdmission,
    HostLossOutcome,
    admission_message,
    assess_ha_admission,
    what_if_down,
)
from controller.scheduler.model import HostView, VMRequest
from controller.scheduler.schedule import Affinity
from schemas.host import HostHAAdmission

ADMISSION_PREFIX = "HA admission: "
"""How the verdict's line starts wherever it is printed."""


@dataclass(frozen=True)
class AdmissionInputs:
    """The scheduler's view of the placements a plan leaves, as the admission check takes it."""

    hosts: list[HostView]
    vms_by_host: dict[str, list[VMRequest]]
    unrestartable: dict[str, str]


def admission_inputs(world: World, dec: Decisions) -> AdmissionInputs:
    """Return the hosts, the VMs on each (HA only where they should run) and the HA VMs
    that cannot run elsewhere, from the placements `dec` leaves."""
    vms_by_host: dict[str, list[VMRequest]] = {}
    unrestartable: dict[str, str] = {}
    for name, host in dec.hosts.items():
        request = dec.requests.get(name)
        if request is None:
            continue
        if request.ha:
            vm = world.desired.vms[name]
            target = dec.targets.get(name)
            copy = target.copy if target is not None else dec.migrating.get(name)
            domain = copy.domain if copy is not None else None
            if not wants_running(vm, domain, world.requests.get(("VirtualMachine", name))):
                request = replace(request, ha=False)
            elif not _restartable_from(world, host):
                unrestartable[name] = (
                    f"HA restarts from {host} are off: the controller has no etcd to prove "
                    "a lost host stopped, and the host has no power fence (NoArbiter)"
                )
            else:
                local = world.local_volumes(vm.spec.disks)
                if local:
                    unrestartable[name] = (
                        f"its volumes {', '.join(local)} are on host-local pools of {host}"
                    )
        vms_by_host.setdefault(host, []).append(request)
    views = host_views(world, dec.hosts, dec.requests, {})
    return AdmissionInputs(views, vms_by_host, unrestartable)


def _restartable_from(world: World, host: str) -> bool:
    """Return whether the HA VMs of `host` could restart elsewhere if it were lost: some
    proof of its death can come (its etcd lease, watched by the controller, or a power
    fence). Without either (the single-host default) nothing is restarted elsewhere."""
    obs = world.observed.obs.get(host)
    if obs is not None and obs.lease is not None:
        return True
    spec = world.desired.hosts.get(host)
    return spec is not None and spec.spec.fencing.method in POWER_FENCE_METHODS


def assess_admission(world: World, dec: Decisions) -> HAAdmission:
    """Return the verdict of the placements `dec` leaves (no restart targets: see
    assess_ha_admission's `targets`)."""
    inputs = admission_inputs(world, dec)
    return assess_ha_admission(
        inputs.hosts,
        inputs.vms_by_host,
        world.policy,
        _affinity(world, dec),
        dec.hosts,
        world.vm_labels(),
        inputs.unrestartable,
        targets=False,
    )


def what_if(world: World, dec: Decisions, hosts_down: Collection[str]) -> HostLossOutcome:
    """Return what losing `hosts_down` at once would do to the placements `dec` leaves."""
    inputs = admission_inputs(world, dec)
    return what_if_down(
        hosts_down,
        inputs.hosts,
        inputs.vms_by_host,
        world.policy,
        _affinity(world, dec),
        dec.hosts,
        world.vm_labels(),
        inputs.unrestartable,
    )


def _affinity(world: World, dec: Decisions) -> Affinity:
    """Return the pass's resolved affinity index when there is one (resolving the groups'
    selectors again over every VM would cost as much as the check)."""
    return dec.session.index if dec.session is not None else world.desired.affinity


def host_admissions(admission: HAAdmission) -> dict[str, HostHAAdmission]:
    """Return each simulated host's status entry, by host name."""
    return {
        outcome.hosts_down[0]: HostHAAdmission(
            tolerated=outcome.tolerated,
            restarts=len(outcome.restarts),
            stranded=[d.vm for d in outcome.stranded],
            lost=len(outcome.lost),
            message=outcome.message,
        )
        for outcome in admission.per_host
    }


@dataclass(frozen=True)
class FleetAdmission:
    """The fleet's verdict as operators read it: "HA admission: ..." and whether it holds."""

    line: str
    tolerated: bool


def fleet_admission(hosts: Iterable[tuple[str, HostHAAdmission | None]]) -> FleetAdmission | None:
    """Return the fleet's verdict from the hosts' status entries (name, entry), None when no
    host has one yet (no pass since they came up, or none is up).

    "HA admission: tolerates the loss of any one host (3 hosts up)", or the loss that
    strands the most HA VMs and how many other losses strand some too.
    """
    entries = [(name, entry) for name, entry in hosts if entry is not None]
    if not entries:
        return None
    verdict = admission_message(
        len(entries), [(name, len(e.stranded), e.message) for name, e in entries]
    )
    return FleetAdmission(
        ADMISSION_PREFIX + verdict[0].lower() + verdict[1:],
        all(entry.tolerated for _, entry in entries),
    )
