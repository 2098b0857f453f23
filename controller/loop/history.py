"""Recording plan history: a plan's actions before it runs, its outcomes and their events
as the executor reports them, its summary once it finished, and plans a dead pass left open.

History is for people (`corral history`, the API); no pass plans from it. A crash loses at
most the last unflushed batch of outcomes, and the plan it interrupted is closed as such.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from controller.execute import Outcome
from controller.loop.messages import plural
from controller.plan import Plan
from controller.plan.model import Action
from controller.store import Store

log = logging.getLogger(__name__)

INTERRUPTED_PLAN = "interrupted: the pass running it stopped before it finished"

Execute = Callable[[Plan, Callable[[Outcome], None]], list[Outcome]]
"""Runs a plan, reporting each outcome as it comes (execute.Executor.run)."""


def plan_action_record(action) -> dict:
    """Return an action as the JSON the plan history keeps."""
    return {
        "type": action.type.value,
        "target": f"{action.target[0]}/{action.target[1]}",
        "host": action.host,
        "reason": action.reason,
        "message": action.message,
        "wave": action.wave,
        "disruptive": action.disruptive,
        "diff": list(action.diff),
    }


class ActionRecords(Sequence[dict]):
    """A plan's actions as plan_action_record makes them, each made when read: the store
    serialises a plan of 30,000 actions one record at a time, never holding them all."""

    def __init__(self, actions: Sequence[Action]) -> None:
        self.actions = actions

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [plan_action_record(a) for a in self.actions[index]]
        return plan_action_record(self.actions[index])


def summarize_plan(p: Plan) -> str:
    """Return "3 actions: 1 DefineVM, 2 StartVM"."""
    counts: dict[str, int] = {}
    for action in p.actions:
        counts[action.type.value] = counts.get(action.type.value, 0) + 1
    parts = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    return f"{len(p.actions)} actions: {parts}"


class OutcomeRecorder:
    """Records a plan's outcomes and their events in batches, as the executor reports them.

    One transaction per outcome and one per event cost more than the agent calls at
    fleet scale. A crash loses at most the last unflushed batch of history: the next
    pass re-reads the hosts and plans from what they report, never from this record.
    """

    def __init__(
        self, store: Store, plan_id: int, identity: str, batch: int = 200, every_s: float = 1.0
    ) -> None:
        self.store = store
        self.plan_id = plan_id
        self.identity = identity
        self.batch = batch
        self.every_s = every_s
        self._outcomes: list[tuple[int, bool, str | None]] = []
        self._events: list[tuple[str, str, str, str, str]] = []
        self._flushed = time.monotonic()

    def add(self, outcome: Outcome) -> None:
        """Take one outcome; write the batch when it is full or old enough."""
        action = outcome.action
        self._outcomes.append((outcome.index, outcome.ok, outcome.error))
        if not outcome.skipped:
            kind, name = action.target
            if outcome.ok:
                self._events.append((kind, name, "Normal", action.reason, action.message))
            else:
                self._events.append(
                    (
                        kind,
                        name,
                        "Warning",
                        f"{action.type.value}Failed",
                        f"{action.message} — failed: {outcome.error}",
                    )
                )
        if len(self._outcomes) >= self.batch or time.monotonic() - self._flushed >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write every outcome and event taken since the last flush."""
        outcomes, self._outcomes = self._outcomes, []
        events, self._events = self._events, []
        self._flushed = time.monotonic()
        if outcomes:
            self.store.record_outcomes(self.plan_id, outcomes)
        if events:
            self.store.record_events(events, identity=self.identity)


class PlanHistory:
    """Records each plan a pass runs, from its actions to its summary.

    Cross-pass state: `may_be_open`, whether a plan recorded by a pass that died (this
    process's, or an earlier controller's on the same store) may still be open. Owner:
    this history. True at start; set when a plan is recorded and cleared once it is
    finished; while set, the next full pass closes every open plan as interrupted.
    """

    def __init__(self, store: Store, identity: str) -> None:
        self.store = store
        self.identity = identity
        self.may_be_open = True

    def close_interrupted(self) -> None:
        """Close the plans a dead pass left open, if there may be any."""
        if not self.may_be_open:
            return
        closed = self.store.finish_open_plans(INTERRUPTED_PLAN)
        if closed:
            log.warning("closed %s left unfinished by a pass that died", plural(closed, "plan"))
        self.may_be_open = False

    def run(
        self, plan: Plan, execute: Execute, *, source: str | None, revision: str | None
    ) -> list[Outcome]:
        """Record `plan`, run it with `execute` while recording its outcomes and events in
        batches, then finish the record with a count; return the outcomes. If `execute`
        raises, what was taken is flushed and the plan stays open for the next pass."""
        self.may_be_open = True
        plan_id = self.store.record_plan(
            ActionRecords(plan.actions),
            source=source,
            revision=revision,
            summary=summarize_plan(plan),
        )
        recorder = OutcomeRecorder(self.store, plan_id, self.identity)
        try:
            outcomes = execute(plan, recorder.add)
        finally:
            recorder.flush()
        failed = sum(1 for o in outcomes if not o.ok)
        self.store.finish_plan(plan_id, f"{len(outcomes) - failed} ok, {failed} failed")
        self.may_be_open = False
        return outcomes
