"""Affinity groups resolved once per planning pass: which groups each VM belongs to.

A group's members are its listed `vms` plus every VM whose labels match its
`vmSelector`. Resolving selectors against 10,000 VMs for every placement would make
each call O(all VMs); the index resolves them once, through an inverted label index
for `matchLabels`, and answers `groups_of(vm)` in O(groups of that VM).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from schemas.affinity import AffinityEnforcement, AffinityGroup, AffinityPolarity, AffinityRule
from schemas.meta import LabelSelector


@dataclass(frozen=True)
class ResolvedGroup:
    """One affinity group with its rules and the host side resolved to names/selector."""

    name: str
    vm_rule: AffinityRule | None
    host_rule: AffinityRule | None
    host_names: frozenset[str]
    host_selector: LabelSelector | None
    listed_vms: frozenset[str]
    vm_selector: LabelSelector | None

    def has_vm(self, name: str, labels: Mapping[str, str]) -> bool:
        """Return True when the VM is a member: listed by name or matched by the selector."""
        if name in self.listed_vms:
            return True
        return self.vm_selector is not None and self.vm_selector.matches(dict(labels))

    def has_host(self, name: str, labels: Mapping[str, str]) -> bool:
        """Return True when the host belongs to the group's host side."""
        if name in self.host_names:
            return True
        return self.host_selector is not None and self.host_selector.matches(dict(labels))

    def vm_rule_is(self, polarity: AffinityPolarity, enforcement: AffinityEnforcement) -> bool:
        rule = self.vm_rule
        return rule is not None and rule.polarity is polarity and rule.enforcement is enforcement

    def host_rule_is(self, polarity: AffinityPolarity, enforcement: AffinityEnforcement) -> bool:
        rule = self.host_rule
        return rule is not None and rule.polarity is polarity and rule.enforcement is enforcement


def _resolve(group: AffinityGroup) -> ResolvedGroup:
    spec = group.spec
    return ResolvedGroup(
        name=group.name,
        vm_rule=spec.vm_rule,
        host_rule=spec.host_rule,
        host_names=frozenset(spec.hosts),
        host_selector=spec.host_selector,
        listed_vms=frozenset(spec.vms),
        vm_selector=spec.vm_selector,
    )


class AffinityIndex:
    """Groups by VM and members by group, resolved once; extended as new VMs are seen.

    Build it once per planning pass with the labels of every desired VM. A VM the
    index has not seen (`groups_of` with a name not in `vm_labels`) is resolved on
    first use and remembered, which keeps every answer identical for equal inputs.
    """

    def __init__(
        self,
        groups: Sequence[AffinityGroup] = (),
        vm_labels: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        ordered = sorted(groups, key=lambda g: g.name)
        self.groups: tuple[ResolvedGroup, ...] = tuple(_resolve(g) for g in ordered)
        self._members: list[set[str]] = [set(g.listed_vms) for g in self.groups]
        self._by_vm: dict[str, tuple[int, ...]] = {}
        labels = vm_labels or {}
        self._resolve_selectors(labels)
        by_vm: dict[str, list[int]] = {}
        for gi, members in enumerate(self._members):
            for vm in members:
                by_vm.setdefault(vm, []).append(gi)
        self._by_vm = {vm: tuple(gis) for vm, gis in by_vm.items()}
        for vm in labels:
            self._by_vm.setdefault(vm, ())

    def _resolve_selectors(self, vm_labels: Mapping[str, Mapping[str, str]]) -> None:
        if not any(g.vm_selector is not None for g in self.groups):
            return
        inverted: dict[tuple[str, str], set[str]] = {}
        for vm, labels in vm_labels.items():
            for item in labels.items():
                inverted.setdefault(item, set()).add(vm)
        everyone = set(vm_labels)
        for gi, group in enumerate(self.groups):
            selector = group.vm_selector
            if selector is None:
                continue
            candidates = everyone
            for item in selector.match_labels.items():
                candidates = candidates & inverted.get(item, set())
            if selector.match_expressions:
                candidates = {vm for vm in candidates if selector.matches(dict(vm_labels[vm]))}
            self._members[gi] |= candidates

    def knows(self, vm: str) -> bool:
        """Return True when the VM's groups are already resolved."""
        return vm in self._by_vm

    def groups_of(self, vm: str, labels: Mapping[str, str]) -> tuple[ResolvedGroup, ...]:
        """Return the groups the VM belongs to, in group-name order."""
        found = self._by_vm.get(vm)
        if found is None:
            found = tuple(gi for gi, g in enumerate(self.groups) if g.has_vm(vm, labels))
            self._by_vm[vm] = found
            for gi in found:
                self._members[gi].add(vm)
        return tuple(self.groups[gi] for gi in found)

    def group_ids_of(self, vm: str, labels: Mapping[str, str]) -> tuple[int, ...]:
        """Return the indices (into `groups`) of the VM's groups."""
        found = self._by_vm.get(vm)
        if found is None:
            self.groups_of(vm, labels)
            found = self._by_vm[vm]
        return found

    def members(self, group_id: int) -> frozenset[str]:
        """Return the member VM names of one group."""
        return frozenset(self._members[group_id])

    def add_vms(self, vms: Iterable[tuple[str, Mapping[str, str]]]) -> None:
        """Resolve the groups of VMs not seen yet (name, labels)."""
        for name, labels in vms:
            self.groups_of(name, labels)


def as_index(
    affinity: Sequence[AffinityGroup] | AffinityIndex,
    vm_labels: Mapping[str, Mapping[str, str]] | None,
) -> AffinityIndex:
    """Return `affinity` itself when it is an index, else an index built from the groups."""
    if isinstance(affinity, AffinityIndex):
        return affinity
    return AffinityIndex(affinity, vm_labels)
