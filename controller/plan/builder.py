"""The plan under construction: actions, verdicts and what earlier steps made ready.

Each planning step adds actions and verdicts here and records what will exist once
the plan ran (a network active on a host, a pool, a volume), so that later steps may
plan on it within the same plan (a later wave) instead of waiting a pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controller.plan.model import Action, ActionType, ObjectKey, ObjectVerdict
from controller.plan.order import WAVES


@dataclass
class PlanBuilder:
    """Collects actions and verdicts; `*_ready` sets hold what exists or is planned."""

    actions: list[Action] = field(default_factory=list)
    verdicts: dict[ObjectKey, ObjectVerdict] = field(default_factory=dict)
    networks_ready: set[tuple[str, str]] = field(default_factory=set)
    """(host, network) active now or once the plan ran."""
    pools_ready: set[tuple[str, str]] = field(default_factory=set)
    """(host, pool) active now or once the plan ran."""
    volumes_ready: set[tuple[str, str]] = field(default_factory=set)
    """(host, volume) present now (where the VM on that host can use it) or planned."""
    shared_volumes_ready: dict[str, str] = field(default_factory=dict)
    """Volume of a shared pool -> its pool: usable on every host where the pool is ready."""
    first_pool_host: dict[str, list[str]] = field(default_factory=dict)
    """Pool -> [first healthy host where it is ready] (a cache of the volume step)."""
    volumes_waiting: dict[str, str] = field(default_factory=dict)
    """Volume -> why it cannot be made yet (a VM using it waits too)."""

    def add(
        self,
        type_: ActionType,
        target: ObjectKey,
        host: str | None,
        reason: str,
        message: str,
        *,
        payload: Mapping[str, Any] | None = None,
        diff: tuple[dict[str, Any], ...] = (),
        disruptive: bool = False,
        params: dict[str, str] | None = None,
    ) -> Action:
        """Add one action in its wave and return it."""
        action = Action(
            type=type_,
            target=target,
            host=host,
            reason=reason,
            message=message,
            wave=WAVES[type_],
            payload=payload or {},
            diff=diff,
            disruptive=disruptive,
            params=params or {},
        )
        self.actions.append(action)
        return action

    def verdict(
        self,
        key: ObjectKey,
        ready: bool,
        reason: str,
        message: str,
        *,
        stalled: bool = False,
        **fields: Any,
    ) -> ObjectVerdict:
        """Set the verdict of one object (a later call for the same object replaces it).

        A VM verdict that describes no migration clears the one in its status: status keeps
        fields a verdict leaves out, and a finished migration must not look in flight.
        """
        if key[0] == "VirtualMachine":
            fields.setdefault("migration", None)
        verdict = ObjectVerdict(key, ready, reason, message, stalled, fields)
        self.verdicts[key] = verdict
        return verdict

    def volume_usable(self, host: str, volume: str) -> bool:
        """Return True when a VM on `host` can use `volume` (present or planned there)."""
        if (host, volume) in self.volumes_ready:
            return True
        pool = self.shared_volumes_ready.get(volume)
        return pool is not None and (host, pool) in self.pools_ready
