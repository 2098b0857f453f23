"""Memory overcommit by ballooning, as oVirt's MOM: a pure policy over one host's stats.

Input: the host's memory counters and, per running ballooned VM, its balloon (current
size), its guaranteed memory and its full memory, all in MiB. Output: the balloon
adjustments that move host free memory back between the policy's marks:

- free below `lowFreePercent` of host memory: shrink balloons towards guaranteed memory,
  the VM with the largest headroom (current - guaranteed) first, each by at most
  `stepPercent` of its memory, until the shortfall is covered;
- free above `highFreePercent`: grow balloons back towards full memory, the most
  squeezed VM (lowest current/memory) first, each by at most a step, within the surplus;
- in between: nothing (the hysteresis keeps balloons from flapping).
A VM below its guaranteed memory (its guarantee was raised) is grown to it whatever the
host's free memory says: the guarantee is a promise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from agentapi import HostState, HostStats
from schemas.policy import MemoryBalloon
from schemas.vm import VirtualMachineSpec

MIB = 2**20

BALLOON_SHRUNK = "BalloonShrunk"
"""The host ran low on free memory; the VM's balloon target was lowered (MOM)."""
BALLOON_GROWN = "BalloonGrown"
"""The host has memory to spare (or the VM was below its guarantee); its balloon grew."""


@dataclass(frozen=True)
class BalloonVM:
    """One running VM whose balloon may move: sizes in MiB."""

    name: str
    current_mib: int
    guaranteed_mib: int
    memory_mib: int


@dataclass(frozen=True)
class BalloonAdjustment:
    """A new balloon target for one VM on one host, with its reason and message."""

    host: str
    vm: str
    from_mib: int
    to_mib: int
    reason: str
    message: str


def balloon_vms(
    state: HostState, stats: HostStats, specs: Mapping[str, VirtualMachineSpec]
) -> list[BalloonVM]:
    """Return the host's running VMs that have a balloon device and guaranteedMemory below
    memory, sized from the stats' current balloon (by name)."""
    ballooned = {
        d.name
        for d in state.domains
        if d.state == "running" and d.live is not None and d.live.max_memory_mib is not None
    }
    out: list[BalloonVM] = []
    for dom in stats.domains:
        spec = specs.get(dom.name)
        if dom.name not in ballooned or spec is None or dom.balloon_current_kib is None:
            continue
        if not spec.memory or not spec.guaranteed_memory or spec.guaranteed_memory >= spec.memory:
            continue
        out.append(
            BalloonVM(
                name=dom.name,
                current_mib=dom.balloon_current_kib // 1024,
                guaranteed_mib=math.ceil(spec.guaranteed_memory / MIB),
                memory_mib=math.ceil(spec.memory / MIB),
            )
        )
    return sorted(out, key=lambda v: v.name)


def plan_balloons(
    host: str,
    total_kib: int | None,
    free_kib: int | None,
    vms: list[BalloonVM],
    policy: MemoryBalloon,
) -> list[BalloonAdjustment]:
    """Return the balloon adjustments for one host (empty: nothing to do or policy off)."""
    if not policy.enabled or not total_kib or free_kib is None:
        return []
    total, free = total_kib // 1024, free_kib // 1024
    low = total * policy.low_free_percent // 100
    high = total * policy.high_free_percent // 100
    out = [
        _adjust(host, vm, vm.guaranteed_mib, BALLOON_GROWN, f"its guarantee is {vm.guaranteed_mib}")
        for vm in vms
        if vm.current_mib < vm.guaranteed_mib
    ]
    below = {a.vm for a in out}
    rest = [vm for vm in vms if vm.name not in below]
    why = f"host {host} has {free} MiB free of {total} MiB"
    if free < low:
        need = low - free
        for vm in sorted(rest, key=lambda v: (-(v.current_mib - v.guaranteed_mib), v.name)):
            if need <= 0:
                break
            shrink = min(vm.current_mib - vm.guaranteed_mib, _step(vm, policy), need)
            if shrink > 0:
                out.append(
                    _adjust(
                        host,
                        vm,
                        vm.current_mib - shrink,
                        BALLOON_SHRUNK,
                        f"{why}, below the low mark of {low} MiB ({policy.low_free_percent}%)",
                    )
                )
                need -= shrink
    elif free > high:
        surplus = free - high
        for vm in sorted(rest, key=lambda v: (v.current_mib / v.memory_mib, v.name)):
            if surplus <= 0:
                break
            grow = min(vm.memory_mib - vm.current_mib, _step(vm, policy), surplus)
            if grow > 0:
                out.append(
                    _adjust(
                        host,
                        vm,
                        vm.current_mib + grow,
                        BALLOON_GROWN,
                        f"{why}, above the high mark of {high} MiB ({policy.high_free_percent}%)",
                    )
                )
                surplus -= grow
    return out


def _step(vm: BalloonVM, policy: MemoryBalloon) -> int:
    """Return the largest change of one adjustment: stepPercent of the VM's memory (>= 1)."""
    return max(1, vm.memory_mib * policy.step_percent // 100)


def _adjust(host: str, vm: BalloonVM, to_mib: int, reason: str, why: str) -> BalloonAdjustment:
    return BalloonAdjustment(
        host=host,
        vm=vm.name,
        from_mib=vm.current_mib,
        to_mib=to_mib,
        reason=reason,
        message=(
            f"Balloon of VirtualMachine {vm.name} on {host}: {vm.current_mib} -> {to_mib} MiB "
            f"(guaranteed {vm.guaranteed_mib} MiB, memory {vm.memory_mib} MiB): {why}"
        ),
    )
