"""Runs the MOM balloon policy (controller.mom) once per pass on the hosts that enable it.

For each answering host whose SchedulingPolicy has memoryBalloon enabled: read the
agent's stats (free memory, balloon sizes), decide with the pure policy, set each new
balloon target through the agent's set_balloon verb, and record every adjustment as an
event on its VirtualMachine. Repeating a pass is safe: a target already set is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from controller.agents import AgentClient, AgentClientError
from controller.mom import BalloonAdjustment, balloon_vms, plan_balloons
from controller.plan.expand import expand
from controller.plan.model import Desired, Observed, PolicyContext
from controller.store import Store

log = logging.getLogger(__name__)

BALLOON_FAILED = "BalloonFailed"
"""Setting a balloon target through the agent failed; the next pass decides again."""


@dataclass(frozen=True)
class BalloonOutcome:
    """One adjustment and how the agent call ended (`error` None: done)."""

    adjustment: BalloonAdjustment
    error: str | None = None


class BalloonKeeper:
    """Applies the balloon policy through the agents and records events in the store."""

    def __init__(
        self,
        store: Store,
        client_for: Callable[[str], AgentClient],
        identity: str = "corral-controller",
    ) -> None:
        self.store = store
        self.client_for = client_for
        self.identity = identity

    def run(
        self, desired: Desired, observed: Observed, policy: PolicyContext
    ) -> list[BalloonOutcome]:
        """Adjust balloons on every enabled, answering host; return what was done."""
        enabled = {
            name: policy.for_host(name).memory_balloon
            for name, obs in observed.hosts.items()
            if policy.for_host(name).memory_balloon.enabled and obs.reachable and obs.state
        }
        if not enabled:
            return []
        specs = {name: vm.spec for name, vm in expand(desired).vms.items()}
        outcomes: list[BalloonOutcome] = []
        for host, balloon in sorted(enabled.items()):
            state = observed.hosts[host].state
            assert state is not None
            try:
                client = self.client_for(host)
                stats = client.get_stats()
            except AgentClientError as exc:
                log.warning("balloons on %s: cannot read stats: %s", host, exc)
                continue
            vms = balloon_vms(state, stats, specs)
            for adjustment in plan_balloons(
                host, stats.memory_total_kib, stats.memory_free_kib, vms, balloon
            ):
                outcomes.append(self._apply(client, adjustment))
        return outcomes

    def _apply(self, client: AgentClient, adjustment: BalloonAdjustment) -> BalloonOutcome:
        try:
            client.set_balloon(adjustment.vm, adjustment.to_mib)
        except AgentClientError as exc:
            self.store.record_event(
                "VirtualMachine",
                adjustment.vm,
                "Warning",
                BALLOON_FAILED,
                f"{adjustment.message} — failed: {exc}",
                identity=self.identity,
            )
            return BalloonOutcome(adjustment, str(exc))
        self.store.record_event(
            "VirtualMachine",
            adjustment.vm,
            "Normal",
            adjustment.reason,
            adjustment.message,
            identity=self.identity,
        )
        return BalloonOutcome(adjustment)
