"""Verdicts and messages: why each host was or was not chosen, in words.

`VerdictTable` is the `Placement.verdicts` sequence: it keeps the columns of one
evaluation (already snapshotted, so later placements do not change it) and builds
the HostVerdict objects only when read. The messages are what a person needs:
"Placed on host-b (score 0.83; host-a 0.41)" or "No host has 2 CPUs and 16Gi memory
free matching zone=a (3 hosts filtered: host-a memory 2Gi free, host-b maintenance,
host-c label zone=b)".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np

from controller.scheduler.filters import FilterOutcome
from controller.scheduler.fleet import Fleet
from controller.scheduler.model import VMRequest
from controller.scheduler.text import cpus_phrase, human_bytes, plural
from controller.scheduler.weights import Scores, describe_score
from schemas.vm import HostVerdict

LIST_ALL_UP_TO = 6
"""A NoHostFits message names every filtered host up to this many, else groups them."""


class VerdictTable(Sequence[HostVerdict]):
    """A lazily built, immutable sequence of HostVerdict, one per host in name order."""

    def __init__(
        self,
        fleet: Fleet,
        fits: np.ndarray,
        outcomes: Sequence[FilterOutcome],
        scores: Scores,
    ) -> None:
        self._fleet = fleet
        self._fits = fits
        self._outcomes = tuple(outcomes)
        self._scores = scores
        self._built: tuple[HostVerdict, ...] | None = None

    def _build(self) -> tuple[HostVerdict, ...]:
        if self._built is None:
            self._built = tuple(self._verdict(i) for i in range(self._fleet.size))
        return self._built

    def _verdict(self, i: int) -> HostVerdict:
        name = self._fleet.names[i]
        if self._fits[i]:
            return HostVerdict(
                host=name,
                fits=True,
                reason=describe_score(self._fleet, self._scores, i),
                score=round(float(self._scores.total[i]), 4),
            )
        return HostVerdict(host=name, fits=False, reason=self.why_not(i))

    def why_not(self, i: int) -> str:
        """Return every failed filter's explanation for host i, "" when it fits."""
        return ", ".join(o.explain(i) for o in self._outcomes if not o.passes[i])

    @overload
    def __getitem__(self, index: int) -> HostVerdict: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[HostVerdict, ...]: ...

    def __getitem__(self, index: int | slice) -> HostVerdict | tuple[HostVerdict, ...]:
        return self._build()[index]

    def __len__(self) -> int:
        return self._fleet.size

    def __iter__(self) -> Iterator[HostVerdict]:
        return iter(self._build())

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Sequence):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"VerdictTable({list(self)!r})"


def needs_phrase(vm: VMRequest, has_hard_affinity: bool) -> str:
    """Return what the VM needs of a host: "2 CPUs and 16Gi memory free matching zone=a"."""
    memory = human_bytes(vm.memory)
    if vm.guaranteed_memory is not None and vm.guaranteed_memory < vm.memory:
        memory += f" ({human_bytes(vm.guaranteed_memory)} where memory is ballooned)"
    text = f"{cpus_phrase(vm.cpu_milli)} and {memory} memory free"
    selector = vm.host_selector
    if selector is not None and (selector.match_labels or selector.match_expressions):
        text += f" matching {selector.describe()}"
    if vm.pinned_host:
        text += f" on pinned host {vm.pinned_host}"
    if vm.networks:
        text += " with network " + ", ".join(sorted(vm.networks))
    if vm.pools:
        text += " with pool " + ", ".join(sorted(vm.pools))
    if has_hard_affinity:
        text += " allowed by its affinity groups"
    return text


def filtered_summary(
    fleet: Fleet, table: VerdictTable, fits: np.ndarray, outcomes: Sequence[FilterOutcome]
) -> str:
    """Return "3 hosts filtered: host-a memory 2Gi free, ..." (grouped by filter when many)."""
    rejected = np.flatnonzero(~fits)
    count = len(rejected)
    if count == 0:
        return "no host filtered"
    if count <= LIST_ALL_UP_TO:
        listed = ", ".join(f"{fleet.names[i]} {table.why_not(int(i))}" for i in rejected)
        return f"{plural(count, 'host')} filtered: {listed}"
    remaining = ~fits
    groups: list[str] = []
    for outcome in outcomes:
        first_failure = remaining & ~outcome.passes
        hits = np.flatnonzero(first_failure)
        if len(hits):
            example = int(hits[0])
            groups.append(
                f"{len(hits)} {outcome.name} (e.g. {fleet.names[example]} "
                f"{outcome.explain(example)})"
            )
        remaining = remaining & outcome.passes
    return f"{plural(count, 'host')} filtered: {', '.join(groups)}"


def placed_message(
    fleet: Fleet, best: int, candidates: np.ndarray, total: np.ndarray, filtered: int
) -> str:
    """Return "Placed on host-b (score 0.83; host-a 0.41, host-c 0.40; 2 hosts filtered)"."""
    parts = [f"score {total[best]:.2f}"]
    runners = candidates[candidates != best]
    if len(runners):
        values = total[runners].copy()
        shown = []
        for _ in range(min(2, len(runners))):
            k = int(np.argmax(values))
            shown.append(int(runners[k]))
            values[k] = -np.inf
        parts.append(", ".join(f"{fleet.names[j]} {total[j]:.2f}" for j in shown))
    if filtered:
        parts.append(f"{plural(filtered, 'host')} filtered")
    return f"Placed on {fleet.names[best]} ({'; '.join(parts)})"


def no_fit_message(
    fleet: Fleet,
    vm: VMRequest,
    table: VerdictTable,
    fits: np.ndarray,
    outcomes: Sequence[FilterOutcome],
    has_hard_affinity: bool,
) -> str:
    """Return "No host has <needs> (<which hosts were filtered and why>)"."""
    if fleet.size == 0:
        return f"No host has {needs_phrase(vm, has_hard_affinity)} (no hosts known)"
    summary = filtered_summary(fleet, table, fits, outcomes)
    return f"No host has {needs_phrase(vm, has_hard_affinity)} ({summary})"
