"""The quiet-pass shortcut: while nothing a pass reads has moved, repeat its result
instead of listing and planning the whole fleet again."""

from __future__ import annotations

import time
from dataclasses import dataclass

from controller.plan import Desired, Plan, PolicyContext


@dataclass(frozen=True)
class QuietPass:
    """A full pass that planned no action, wrote nothing to the store (its revision did
    not move) and whose plan does not depend on the clock (Plan.clock_bound).

    Planning is a function of the store's content and the time; with neither moving,
    the next pass would plan and write exactly the same. So while the store's revision
    and the sources' applied revisions stay the same, passes only read the hosts that
    are due (which moves the revision if a host changed) and return this result.
    """

    revision: int
    applied: tuple[str | None, ...]
    at: float
    plan: Plan
    not_ready: list[str]
    desired: Desired
    policy: PolicyContext

    def still_holds(self, revision: int, applied: tuple[str | None, ...]) -> bool:
        """Return True when the store and the sources' applied revisions have not moved."""
        return revision == self.revision and applied == self.applied


class QuietSlot:
    """The one place the last quiet pass is kept between passes.

    Cross-pass state. Owner: Controller (`quiet`). Every pass takes it out; only a pass
    that finds it still holding puts it back, and a full pass leaves a new one only when
    it was quiet. It is dropped when a pass acts, writes or plans on the clock, when a
    host's lease changes (`forget`, from the lease watch's thread), and once it is
    `replan_s` old (then a full pass plans again).
    """

    def __init__(self) -> None:
        self.last: QuietPass | None = None

    def take(self, replan_s: float) -> QuietPass | None:
        """Remove and return the last quiet pass if it is younger than `replan_s`."""
        quiet, self.last = self.last, None
        if quiet is None or time.monotonic() - quiet.at >= replan_s:
            return None
        return quiet

    def keep(self, quiet: QuietPass | None) -> None:
        """Keep `quiet` for the next pass (None: keep nothing)."""
        self.last = quiet

    def forget(self) -> None:
        """Drop the last quiet pass: what it planned from no longer holds."""
        self.last = None
