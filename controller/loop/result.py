"""What one pass returns to its caller (the runner, the CLI, tests, benchmarks)."""

from __future__ import annotations

from dataclasses import dataclass

from controller.execute import Outcome
from controller.plan import Plan


@dataclass(frozen=True)
class PassResult:
    """What one pass did and when the next one should run (seconds)."""

    plan: Plan
    outcomes: list[Outcome]
    requeue_after_s: float
    not_ready: list[str]
    elapsed_s: float
    replanned: bool = True
    """False when the pass found nothing changed since a quiet pass and did not plan."""
    left: int = 0
    """Actions still to do once this pass acted: the plan made from the hosts read again
    after its actions (its own plan's size when it did not act)."""

    @property
    def converged(self) -> bool:
        """The pass found nothing to do and every object Ready."""
        return self.plan.empty and not self.not_ready

    @property
    def settled(self) -> bool:
        """The pass left the fleet as desired: read again after its actions, nothing was
        left to do and every object was Ready (converged, one pass sooner)."""
        return self.left == 0 and not self.not_ready

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and not o.skipped]
