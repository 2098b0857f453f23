"""The whole picture one planning pass works from: expanded desired, indexed observed, health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from controller.plan.expand import Expanded
from controller.plan.health import HostHealthView
from controller.plan.model import PolicyContext
from controller.plan.observe import ObservedIndex
from schemas.meta import LabelSelector

if TYPE_CHECKING:  # requests.py builds on World; World only holds its Allocation
    from controller.plan.requests import Allocation


@dataclass
class World:
    """Desired (expanded), observed (indexed) and host health at `now`."""

    desired: Expanded
    observed: ObservedIndex
    health: dict[str, HostHealthView]
    policy: PolicyContext
    now: datetime
    requests: dict[tuple[str, str], str]
    _matches: dict[int, tuple[LabelSelector, list[str]]] = field(default_factory=dict)
    _reach: dict[str, tuple[frozenset[str], frozenset[str]]] = field(default_factory=dict)
    _vm_labels: dict[str, dict[str, str]] | None = None
    _allocation: Allocation | None = None
    """The allocation of the last host_views call (per pass)."""

    @property
    def host_names(self) -> list[str]:
        """Return the desired hosts' names, sorted."""
        return list(self.desired.hosts)

    def actionable(self, host: str) -> bool:
        """Return True when actions can be sent to the host: it answers and is not failed."""
        return self.health[host].up and self.observed.reachable(host)

    def local_volumes(self, disks: list) -> list[str]:
        """Return the volumes among `disks` on host-local pools (they stay with their host)."""
        out = []
        for disk in disks:
            spec = self.desired.volumes.get(disk.volume or "")
            if spec is None:
                continue
            pool = self.desired.pools.get(spec.pool)
            if pool is not None and not pool.spec.shared:
                out.append(disk.volume)
        return out

    def matching_hosts(self, selector: LabelSelector) -> list[str]:
        """Return the desired hosts (sorted) whose labels match `selector` (cached per pass)."""
        hit = self._matches.get(id(selector))
        if hit is not None and hit[0] is selector:
            return hit[1]
        names = [
            name
            for name, host in self.desired.hosts.items()
            if selector.matches(host.metadata.labels)
        ]
        self._matches[id(selector)] = (selector, names)
        return names

    def reach(self, host: str) -> tuple[frozenset[str], frozenset[str]]:
        """Return the (networks, pools) whose selectors pick `host` (cached per pass: a
        drain builds the hosts' views once per drained host)."""
        hit = self._reach.get(host)
        if hit is None:
            from controller.plan.storage import pool_spec

            labels = self.desired.hosts[host].metadata.labels
            networks = frozenset(
                n
                for n, net in self.desired.networks.items()
                if net.spec.host_selector.matches(labels)
            )
            pools = frozenset(
                p
                for p, pool in self.desired.pools.items()
                if pool.spec.host_selector.matches(labels) and not isinstance(pool_spec(pool), str)
            )
            hit = self._reach[host] = (networks, pools)
        return hit

    def vm_labels(self) -> dict[str, dict[str, str]]:
        """Return every desired VM's labels, by name (cached per pass)."""
        if self._vm_labels is None:
            self._vm_labels = {name: vm.labels for name, vm in self.desired.vms.items()}
        return self._vm_labels
