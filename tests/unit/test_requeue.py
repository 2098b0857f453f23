"""How long after a pass the next one runs (controller.loop.runner.Requeue), as a table."""

from __future__ import annotations

import pytest

from controller.execute import Outcome
from controller.loop.runner import LEASE_RETRY_S, Requeue
from controller.plan.model import Action, ActionType, Plan

START = Action(ActionType.START_VM, ("VirtualMachine", "db-1"), "host-a", "Start", "start db-1")
IDLE = Plan(actions=())
BUSY = Plan(actions=(START,))
LAPSED = "conflict: refusing to start HA domain 'db-1': lease_lapsed: no keepalive ..."


def outcome(ok: bool, error: str | None = None) -> Outcome:
    return Outcome(index=0, action=START, ok=ok, error=error)


@pytest.mark.parametrize(
    ("outcomes", "failures_before", "delay", "failures_after"),
    [
        pytest.param([outcome(True)], 3, 0.5, 0, id="success-resets"),
        pytest.param([outcome(False, "boom")], 0, 2.0, 1, id="first-failure"),
        pytest.param([outcome(False, "boom")], 5, 60.0, 6, id="capped"),
        pytest.param([outcome(False, LAPSED)], 4, LEASE_RETRY_S, 4, id="lease-wait"),
        pytest.param(
            [outcome(False, LAPSED), outcome(False, "boom")], 1, 4.0, 2, id="lease-and-other"
        ),
    ],
)
def test_requeue_after(outcomes, failures_before, delay, failures_after):
    requeue = Requeue()
    requeue.failures = failures_before
    assert requeue.after(BUSY, outcomes, BUSY, busy_s=0.5, resync_s=30.0) == delay
    assert requeue.failures == failures_after


def test_a_quiet_pass_waits_about_the_resync():
    assert 27.0 <= Requeue().after(IDLE, [], IDLE, busy_s=0.5, resync_s=30.0) <= 33.0
