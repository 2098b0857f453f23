"""Condition rules: transition time only on a real change, Stalled/Reconciling exclusive,
display order, observedGeneration stamped, UTC seconds; and the table summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controller.conditions import remove_condition, set_condition, sort_conditions, summarize
from schemas.meta import Condition, ConditionStatus, ObjectStatus

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(minutes=5, microseconds=250_000)
T1_SECONDS = T0 + timedelta(minutes=5)
TRUE, FALSE, UNKNOWN = ConditionStatus.TRUE, ConditionStatus.FALSE, ConditionStatus.UNKNOWN


def cond(type_: str, status=TRUE, reason="Converged", message="ok", at=T0, gen=1) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        observed_generation=gen,
        last_transition_time=at,
    )


@pytest.mark.parametrize(
    ("before", "status", "reason", "message", "expected_time"),
    [
        pytest.param(None, TRUE, "Converged", "ok", T1_SECONDS, id="new-condition-now"),
        pytest.param(cond("Ready"), TRUE, "Converged", "ok", T0, id="same-keeps-time"),
        pytest.param(cond("Ready"), FALSE, "Converged", "ok", T1_SECONDS, id="status-moves"),
        pytest.param(cond("Ready"), TRUE, "HostUp", "ok", T1_SECONDS, id="reason-moves"),
        pytest.param(cond("Ready"), TRUE, "Converged", "now 2", T1_SECONDS, id="message-moves"),
    ],
)
def test_transition_time_moves_only_on_change(before, status, reason, message, expected_time):
    start = [before] if before else []
    [ready] = set_condition(start, "Ready", status, reason, message, generation=2, now=T1)
    assert ready == cond("Ready", status, reason, message, expected_time, gen=2)


def test_generation_is_stamped_even_when_nothing_else_changes():
    [ready] = set_condition([cond("Ready", gen=1)], "Ready", TRUE, "Converged", "ok", generation=7,
                            now=T1)  # fmt: skip
    assert (ready.observed_generation, ready.last_transition_time) == (7, T0)


def test_time_is_utc_seconds():
    plus_two = timezone(timedelta(hours=2))
    [ready] = set_condition(
        [], "Ready", TRUE, "Converged", "ok", generation=1, now=T1.astimezone(plus_two)
    )
    assert ready.last_transition_time == T1_SECONDS
    assert ready.last_transition_time.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("before", "set_type", "after_types"),
    [
        pytest.param(
            ["Reconciling", "Ready"], "Stalled", ["Stalled", "Ready"], id="stalled-ends-rec"
        ),
        pytest.param(
            ["Stalled", "Ready"], "Reconciling", ["Reconciling", "Ready"], id="rec-ends-st"
        ),
        pytest.param(["Stalled", "Ready"], "Ready", ["Stalled", "Ready"], id="ready-leaves-st"),
        pytest.param(
            ["Ready", "Scheduled"], "Fenced", ["Ready", "Fenced", "Scheduled"], id="by-type"
        ),
        pytest.param(["Zeta", "Ready"], "Stalled", ["Stalled", "Ready", "Zeta"], id="order"),
    ],
)
def test_exclusive_pairs_and_order(before, set_type, after_types):
    start = [cond(t) for t in before]
    after = set_condition(start, set_type, TRUE, "Changed", "x", generation=1, now=T1)
    assert [c.type for c in after] == after_types


def test_sort_and_remove():
    unsorted = [cond("Ready"), cond("Alpha"), cond("Reconciling"), cond("Stalled")]
    assert [c.type for c in sort_conditions(unsorted)] == [
        "Stalled",
        "Reconciling",
        "Ready",
        "Alpha",
    ]
    assert [c.type for c in remove_condition(unsorted, "Ready")] == [
        "Alpha",
        "Reconciling",
        "Stalled",
    ]


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param(None, ("Unknown", "", "not yet reconciled"), id="no-status"),
        pytest.param([], ("Unknown", "", "not yet reconciled"), id="no-ready"),
        pytest.param(
            [cond("Ready", message="runs on a")], ("True", "Converged", "runs on a"), id="ready"
        ),
        pytest.param(
            [
                cond("Stalled", TRUE, "NoHostFits", "no host has 16Gi"),
                cond("Ready", FALSE, "NoHostFits", "short"),
            ],
            ("False", "NoHostFits", "no host has 16Gi"),
            id="stalled-explains",
        ),
        pytest.param(
            [
                cond("Reconciling", TRUE, "Starting", "starting"),
                cond("Ready", FALSE, "Starting", "starting web-1"),
            ],
            ("False", "Starting", "starting web-1"),
            id="reconciling-shows-ready",
        ),
    ],
)
def test_summarize(conditions, expected):
    status = None if conditions is None else ObjectStatus(conditions=conditions)
    assert summarize(status) == expected
