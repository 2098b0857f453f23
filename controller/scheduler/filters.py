"""Filters: hard constraints evaluated for all hosts at once, each with its reasons.

A filter yields a boolean column (True: the host passes, or the host's policy does
not list that filter) and a function that says, for one failing host, why — in
words with the numbers, e.g. "memory 2Gi free". Explanations are computed only when
someone reads a verdict or a NoHostFits message, never for every placement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from controller.scheduler.fleet import Fleet
from controller.scheduler.model import VMRequest
from controller.scheduler.text import human_bytes, human_cpu
from schemas.meta import LabelSelector
from schemas.policy import FilterName

Explain = Callable[[int], str]


@dataclass(frozen=True)
class FilterOutcome:
    """One filter's verdict on every host and how to explain a failure on host i.

    `name` is a FilterName, or "Excluded" for hosts the caller ruled out (a drain's source).
    """

    name: str
    passes: np.ndarray
    explain: Explain


@dataclass(frozen=True)
class HardRule:
    """One hard affinity rule that applies to the VM: the hosts it allows, and why not."""

    group: str
    allowed: np.ndarray
    explain: Explain


def _effective(fleet: Fleet, name: FilterName, mask: np.ndarray) -> np.ndarray:
    return mask | fleet.filter_off[name]


def _label_phrase(labels: dict[str, str], selector: LabelSelector) -> str:
    keys = [*selector.match_labels, *(r.key for r in selector.match_expressions)]
    keys = list(dict.fromkeys(keys))
    parts = [f"{k}={labels[k]}" if k in labels else f"no {k}" for k in keys]
    return "label " + ", ".join(parts) if parts else "labels do not match"


def _maintenance(fleet: Fleet, vm: VMRequest) -> FilterOutcome:
    return FilterOutcome(
        FilterName.MAINTENANCE,
        _effective(fleet, FilterName.MAINTENANCE, ~fleet.maintenance),
        lambda i: "maintenance",
    )


def _health(fleet: Fleet, vm: VMRequest) -> FilterOutcome:
    hosts = fleet.hosts

    def explain(i: int) -> str:
        reason = hosts[i].health_reason
        return f"unhealthy ({reason})" if reason else "unhealthy"

    return FilterOutcome(
        FilterName.HOST_HEALTH, _effective(fleet, FilterName.HOST_HEALTH, fleet.healthy), explain
    )


def _host_selector(fleet: Fleet, vm: VMRequest) -> FilterOutcome:
    mask = fleet.all_true
    selector = vm.host_selector
    if selector is not None and (selector.match_labels or selector.match_expressions):
        mask = fleet.selector_mask(selector)
    pinned = vm.pinned_host
    if pinned is not None:
        pin_mask = np.zeros(fleet.size, dtype=bool)
        if pinned in fleet.index:
            pin_mask[fleet.index[pinned]] = True
        mask = mask & pin_mask
    hosts = fleet.hosts

    def explain(i: int) -> str:
        if pinned is not None and hosts[i].name != pinned:
            return f"not the pinned host {pinned}"
        assert selector is not None
        return _label_phrase(hosts[i].labels, selector)

    return FilterOutcome(
        FilterName.HOST_SELECTOR, _effective(fleet, FilterName.HOST_SELECTOR, mask), explain
    )


def _cpu(fleet: Fleet, vm: VMRequest, cpu_free: np.ndarray) -> FilterOutcome:
    def explain(i: int) -> str:
        free = cpu_free[i]
        return f"CPU {human_cpu(free)} free" if free > 0 else "CPU full"

    return FilterOutcome(
        FilterName.CPU, _effective(fleet, FilterName.CPU, cpu_free >= vm.cpu_milli), explain
    )


def _memory(fleet: Fleet, vm: VMRequest, mem_free: np.ndarray) -> FilterOutcome:
    def explain(i: int) -> str:
        free = mem_free[i]
        return f"memory {human_bytes(free)} free" if free > 0 else "memory full"

    return FilterOutcome(
        FilterName.MEMORY,
        _effective(fleet, FilterName.MEMORY, mem_free >= fleet.memory_need(vm)),
        explain,
    )


def _network(fleet: Fleet, vm: VMRequest) -> FilterOutcome:
    hosts = fleet.hosts
    mask = fleet.network_mask(vm.networks) if vm.networks else fleet.all_true
    return FilterOutcome(
        FilterName.NETWORK,
        _effective(fleet, FilterName.NETWORK, mask),
        lambda i: "no network " + ", ".join(sorted(vm.networks - hosts[i].networks)),
    )


def _storage(fleet: Fleet, vm: VMRequest) -> FilterOutcome:
    hosts = fleet.hosts
    mask = fleet.pool_mask(vm.pools) if vm.pools else fleet.all_true
    return FilterOutcome(
        FilterName.STORAGE,
        _effective(fleet, FilterName.STORAGE, mask),
        lambda i: "no pool " + ", ".join(sorted(vm.pools - hosts[i].pools)),
    )


def _affinity(fleet: Fleet, rules: Sequence[HardRule]) -> FilterOutcome:
    mask = fleet.all_true
    for rule in rules:
        mask = mask & rule.allowed

    def explain(i: int) -> str:
        return "; ".join(r.explain(i) for r in rules if not r.allowed[i])

    return FilterOutcome(FilterName.AFFINITY, _effective(fleet, FilterName.AFFINITY, mask), explain)


def run_filters(
    fleet: Fleet,
    vm: VMRequest,
    cpu_free: np.ndarray,
    mem_free: np.ndarray,
    hard_rules: Sequence[HardRule],
) -> list[FilterOutcome]:
    """Return every filter's outcome for the VM, in FilterName order.

    `cpu_free` / `mem_free` are allocatable minus allocated per host, with the VM's
    own allocation already given back on the host it currently runs on.
    """
    return [
        _maintenance(fleet, vm),
        _health(fleet, vm),
        _host_selector(fleet, vm),
        _cpu(fleet, vm, cpu_free),
        _memory(fleet, vm, mem_free),
        _network(fleet, vm),
        _storage(fleet, vm),
        _affinity(fleet, hard_rules),
    ]
