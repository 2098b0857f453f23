"""VMs on their host: define when missing or drifted, start and stop per run strategy.

A running VM whose definition changed is re-defined; the agent applies what it can live
(memory within max memory, vCPUs within max vCPUs). What it cannot shows up on the next
pass as a difference between the definition and the running config: with restart
Allowed the VM is stopped gracefully and started again, with Never it is reported as
RestartRequired and the change waits for the next start.
"""

from __future__ import annotations

from dataclasses import dataclass

from agentapi import DomainSpec, DomainState, diff_domain_specs
from controller.plan import reasons
from controller.plan.builder import PlanBuilder
from controller.plan.diff import make_diff
from controller.plan.expand import DesiredVM
from controller.plan.memo import IdentityMemo
from controller.plan.model import Action, ActionType, ObjectVerdict
from controller.plan.observe import Copy
from controller.plan.payload import ModelPayload
from controller.plan.resolve import ResolveError, resolve_vm
from controller.plan.world import World
from schemas.vm import RestartPolicy, RunStrategy, VMPhase

_DRIFT: IdentityMemo[tuple[str, ...]] = IdentityMemo()
_ON_HOST: IdentityMemo[tuple[tuple[Action, ...], ObjectVerdict | None]] = IdentityMemo()


def spec_drift(desired: DomainSpec, observed: DomainSpec | None) -> tuple[str, ...]:
    """Return the fields where `observed` differs from `desired` ("*" when there is none)."""
    if observed is None:
        return ("*",)
    return _DRIFT.get(
        (desired, observed), None, lambda: tuple(diff_domain_specs(desired, observed))
    )


def comparable_dump(desired: DomainSpec, observed: DomainSpec) -> dict:
    """Return the observed dump without what the desired spec leaves to libvirt."""
    dump = observed.model_dump(mode="json")
    if desired.machine is None:
        dump["machine"] = None
    for want, have in zip(desired.nics, dump["nics"], strict=False):
        if want.mac is None:
            have["mac"] = None
    return dump


@dataclass(frozen=True)
class Target:
    """Where a VM is to be, and the copy of it already there (None: define it there)."""

    host: str
    copy: Copy | None
    reason: str = reasons.CREATING
    message: str = ""
    disruptive: bool = False


def wants_running(vm: DesiredVM, domain: DomainState | None, request: str | None) -> bool:
    """Return whether the VM should be running, from its run strategy and its current state.

    RerunOnFailure restarts a VM that stopped any way but a clean guest shutdown
    (libvirt reason "shutdown"); Manual keeps the current state unless asked.
    """
    strategy = vm.spec.run_strategy
    running = domain is not None and _active(domain)
    if strategy is RunStrategy.ALWAYS:
        return True
    if strategy is RunStrategy.HALTED:
        return False
    if strategy is RunStrategy.RERUN_ON_FAILURE:
        return (
            running
            or domain is None
            or not (domain.state == "shutoff" and domain.reason == "shutdown")
        )
    if request in ("start", "stop"):
        return request == "start"
    return running


def _active(domain: DomainState) -> bool:
    return domain.state in ("running", "paused", "blocked", "pmsuspended")


def missing_dependencies(world: World, out: PlanBuilder, vm: DesiredVM, host: str) -> list[str]:
    """Return what the VM needs on `host` that is neither there nor planned."""
    missing: list[str] = []
    for nic in vm.spec.nics:
        if (host, nic.network) not in out.networks_ready:
            if nic.network not in world.desired.networks:
                missing.append(f"Network {nic.network} is not defined")
            else:
                missing.append(f"Network {nic.network} is not active on {host}")
    for disk in vm.spec.disks:
        if not disk.volume:
            continue
        if disk.volume in out.volumes_waiting:
            missing.append(f"Volume {disk.volume}: {out.volumes_waiting[disk.volume]}")
        elif not out.volume_usable(host, disk.volume):
            missing.append(f"Volume {disk.volume} is not on {host}")
    return missing


def settled(world: World, vm: DesiredVM, target: Target) -> bool:
    """Return True when the VM runs on its host as defined and should keep running there."""
    domain = target.copy.domain if target.copy else None
    if domain is None or domain.state != "running":
        return False
    if not wants_running(vm, domain, world.requests.get(("VirtualMachine", vm.name))):
        return False
    try:
        desired = resolve_vm(vm, world.desired.hosts[target.host], world.desired.volumes)
    except ResolveError:
        return False
    return not spec_drift(desired, domain.spec)


def plan_vm_on_host(world: World, out: PlanBuilder, vm: DesiredVM, target: Target) -> None:
    """Add the define/start/stop/restart actions of one VM on its host, and its verdict.

    The outcome is reused while its inputs are the same objects (memo.IdentityMemo): the
    VM's desired object and spec, its observed domain, its host's desired object, the
    volumes of its disks; and equal in value: where and why it is placed there, the
    operator's request, and what it still misses on that host (networks, volumes, read
    from this pass's plan so far). Over a converged fleet whose objects are kept between
    passes, that turns the per-VM work of a no-op pass into a lookup.
    """
    key = ("VirtualMachine", vm.name)
    domain = target.copy.domain if target.copy else None
    host_object = world.desired.hosts.get(target.host)
    missing = tuple(missing_dependencies(world, out, vm, target.host))
    request = world.requests.get(key)
    used = tuple(world.desired.volumes.get(d.volume) for d in vm.spec.disks if d.volume)
    extra = (vm.name, target.host, target.reason, target.message, target.disruptive, request)
    actions, verdict = _ON_HOST.get(
        (vm.resource, vm.spec, domain, host_object, *used),
        (*extra, missing, len(used)),
        lambda: _planned_alone(world, vm, target, missing),
    )
    out.actions.extend(actions)
    if verdict is not None:
        out.verdicts[key] = verdict


def _planned_alone(
    world: World, vm: DesiredVM, target: Target, missing: tuple[str, ...]
) -> tuple[tuple[Action, ...], ObjectVerdict | None]:
    """Return the actions and verdict of one VM on its host, planned on a builder of its own."""
    alone = PlanBuilder()
    _plan_vm_on_host(world, alone, vm, target, list(missing))
    return tuple(alone.actions), alone.verdicts.get(("VirtualMachine", vm.name))


def _plan_vm_on_host(
    world: World, out: PlanBuilder, vm: DesiredVM, target: Target, missing: list[str]
) -> None:
    key = ("VirtualMachine", vm.name)
    host = target.host
    domain = target.copy.domain if target.copy else None
    try:
        desired = resolve_vm(vm, world.desired.hosts[host], world.desired.volumes)
    except ResolveError as exc:
        out.verdict(
            key,
            False,
            reasons.INVALID_SPEC,
            f"VirtualMachine {vm.name} cannot be defined: {exc}",
            stalled=True,
            phase=VMPhase.PENDING.value if domain is None else _phase(domain),
            host=host,
        )
        return
    request = world.requests.get(key)
    want_run = wants_running(vm, domain, request)
    running = domain is not None and _active(domain)
    if missing:
        if running and not want_run:
            _stop(out, vm, host, reasons.STOPPING, "its run strategy keeps it stopped")
        out.verdict(
            key,
            False,
            reasons.DEPENDENCY_NOT_READY,
            f"VirtualMachine {vm.name} waits on {host}: {'; '.join(missing)}",
            phase=_phase(domain) if domain else VMPhase.SCHEDULED.value,
            host=host,
        )
        return
    drift = spec_drift(desired, domain.spec if domain else None)
    if drift:
        _define(out, vm, desired, domain, host, drift, target)
    if want_run and not running:
        start_reason = reasons.REQUESTED if request == "start" else target.reason
        if start_reason == reasons.CREATING:
            start_reason = reasons.STARTING
        out.add(
            ActionType.START_VM,
            key,
            host,
            start_reason,
            f"Starting VirtualMachine {vm.name} on {host}"
            + (f" ({target.message})" if target.message else ""),
            disruptive=target.disruptive,
        )
        out.verdict(
            key,
            False,
            reasons.HA_RESTARTING if start_reason == reasons.HA_RESTART else start_reason,
            f"Starting VirtualMachine {vm.name} on {host}"
            + (f" ({target.message})" if target.message else ""),
            phase=VMPhase.STARTING.value,
            host=host,
        )
        return
    if running and not want_run:
        why = "requested stop" if request == "stop" else "its run strategy keeps it stopped"
        _stop(out, vm, host, reasons.REQUESTED if request == "stop" else reasons.STOPPING, why)
        out.verdict(
            key,
            False,
            reasons.STOPPING,
            f"Stopping VirtualMachine {vm.name} on {host}: {why}",
            phase=VMPhase.STOPPING.value,
            host=host,
        )
        return
    if drift:
        out.verdict(
            key,
            False,
            reasons.CREATING if domain is None else reasons.UPDATING,
            f"{'Defining' if domain is None else 'Updating'} VirtualMachine {vm.name} on {host}"
            + ("" if domain is None else f": {', '.join(drift)} changed"),
            phase=_phase(domain) if domain else VMPhase.SCHEDULED.value,
            host=host,
        )
        return
    assert domain is not None
    if running:
        _running(out, vm, desired, domain, host)
    else:
        _stopped(out, vm, domain, host)


def _define(
    out: PlanBuilder,
    vm: DesiredVM,
    desired: DomainSpec,
    domain: DomainState | None,
    host: str,
    drift: tuple[str, ...],
    target: Target,
) -> None:
    payload = ModelPayload(desired)
    if domain is None or domain.spec is None:
        reason = reasons.CREATING if target.reason == reasons.CREATING else target.reason
        message = f"Defining VirtualMachine {vm.name} on {host}" + (
            f" ({target.message})" if target.message else ""
        )
        diff = make_diff(None, payload)
    else:
        reason = reasons.UPDATING
        message = f"VirtualMachine {vm.name} differs on {host} in {', '.join(drift)}; redefining"
        diff = make_diff(comparable_dump(desired, domain.spec), payload.dump())
    out.add(
        ActionType.DEFINE_VM,
        ("VirtualMachine", vm.name),
        host,
        reason,
        message,
        payload=payload,
        diff=diff,
    )


def ballooned(vm: DesiredVM, domain: DomainState) -> bool:
    """Return True when the running domain's memory is a balloon between the VM's guaranteed
    memory and its memory (set by the MOM policy, controller.mom): not a change to undo."""
    live, spec = domain.live, vm.spec
    if live is None or live.max_memory_mib is None or not spec.guaranteed_memory:
        return False
    return spec.guaranteed_memory <= live.memory_mib * 2**20 <= (spec.memory or 0)


def _stop(out: PlanBuilder, vm: DesiredVM, host: str, reason: str, why: str) -> None:
    out.add(
        ActionType.STOP_VM,
        ("VirtualMachine", vm.name),
        host,
        reason,
        f"Stopping VirtualMachine {vm.name} on {host} gracefully: {why}",
        payload={"timeout_s": 60.0},
    )


def _running(
    out: PlanBuilder, vm: DesiredVM, desired: DomainSpec, domain: DomainState, host: str
) -> None:
    key = ("VirtualMachine", vm.name)
    cold = list(spec_drift(desired, domain.live)) if domain.live is not None else []
    if "memory_mib" in cold and ballooned(vm, domain):
        cold.remove("memory_mib")
    if cold:
        policy = vm.spec.update_policy.restart if vm.spec.update_policy else RestartPolicy.NEVER
        fields = ", ".join(cold)
        if policy is RestartPolicy.ALLOWED:
            _stop(out, vm, host, reasons.RESTART_FOR_UPDATE, f"{fields} need a restart")
            out.add(
                ActionType.START_VM,
                key,
                host,
                reasons.RESTART_FOR_UPDATE,
                f"Starting VirtualMachine {vm.name} on {host} again to apply {fields}",
                disruptive=True,
            )
            out.verdict(
                key,
                False,
                reasons.RESTART_FOR_UPDATE,
                f"Restarting VirtualMachine {vm.name} on {host} to apply {fields} "
                "(update policy: restart Allowed)",
                phase=VMPhase.STOPPING.value,
                host=host,
                restartRequired=cold,
            )
            return
        out.verdict(
            key,
            True,
            reasons.RESTART_REQUIRED,
            f"VirtualMachine {vm.name} runs on {host}; the change to {fields} waits for the "
            "next restart (update policy: restart Never)",
            phase=VMPhase.RUNNING.value,
            host=host,
            ips=list(domain.ips),
            restartRequired=cold,
        )
        return
    if domain.state == "paused":
        out.verdict(
            key,
            False,
            reasons.PAUSED,
            f"VirtualMachine {vm.name} is paused on {host} ({domain.reason}); resume it with "
            "virsh resume or stop and start it",
            phase=VMPhase.RUNNING.value,
            host=host,
            ips=list(domain.ips),
        )
        return
    out.verdict(
        key,
        True,
        reasons.CONVERGED,
        f"VirtualMachine {vm.name} runs on {host}",
        phase=VMPhase.RUNNING.value,
        host=host,
        ips=list(domain.ips),
    )


def _stopped(out: PlanBuilder, vm: DesiredVM, domain: DomainState, host: str) -> None:
    key = ("VirtualMachine", vm.name)
    if vm.spec.run_strategy is RunStrategy.RERUN_ON_FAILURE:
        out.verdict(
            key,
            True,
            reasons.GUEST_SHUTDOWN,
            f"VirtualMachine {vm.name} shut down cleanly on {host}; RerunOnFailure leaves it "
            "stopped (start it by request or with runStrategy Always)",
            phase=VMPhase.STOPPED.value,
            host=host,
        )
        return
    out.verdict(
        key,
        True,
        reasons.STOPPED,
        f"VirtualMachine {vm.name} is defined on {host} and stopped "
        f"(runStrategy {vm.spec.run_strategy.value})",
        phase=VMPhase.STOPPED.value,
        host=host,
    )


def _phase(domain: DomainState) -> str:
    """Return the VM phase an observed domain state shows."""
    if domain.state in ("running", "paused", "blocked", "pmsuspended"):
        return VMPhase.RUNNING.value
    if domain.state == "shutdown":
        return VMPhase.STOPPING.value
    if domain.state == "crashed":
        return VMPhase.FAILED.value
    return VMPhase.STOPPED.value
