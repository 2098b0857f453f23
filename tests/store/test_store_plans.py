"""Plan history: actions, outcomes per action, summaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import pytest
from conftest import FakeClock

from controller.store import InvalidInput, NotFound, Store


class StepType(StrEnum):
    DEFINE_NETWORK = "DefineNetwork"
    DEFINE_VM = "DefineVM"


@dataclass(frozen=True)
class Step:
    """An action shaped like the planner's: enum type, tuple target, tuple of patch ops."""

    type: StepType
    target: tuple[str, str]
    host: str | None
    reason: str
    message: str
    wave: int = 0
    diff: tuple[dict[str, Any], ...] = field(default=())


def actions() -> list[Step]:
    return [
        Step(
            type=StepType.DEFINE_NETWORK,
            target=("Network", "lan"),
            host="h1",
            reason="NetworkMissing",
            message="lan is not defined on h1",
        ),
        Step(
            type=StepType.DEFINE_VM,
            target=("VirtualMachine", "web-1"),
            host="h1",
            reason="SpecChanged",
            message="memory 1Gi -> 2Gi",
            wave=1,
            diff=({"op": "replace", "path": "/memory_mib", "value": 2048},),
        ),
    ]


def test_a_plan_is_stored_with_its_actions(store: Store, clock: FakeClock) -> None:
    plan_id = store.record_plan(actions(), source="git:origin", revision="r1", summary="2 actions")
    plan = store.get_plan(plan_id)
    assert (plan.source, plan.revision, plan.summary, plan.created_at) == (
        "git:origin",
        "r1",
        "2 actions",
        clock.now,
    )
    assert plan.actions[1]["type"] == "DefineVM"
    assert plan.actions[1]["target"] == ["VirtualMachine", "web-1"]
    assert plan.actions[1]["diff"] == [{"op": "replace", "path": "/memory_mib", "value": 2048}]
    assert plan.outcomes == [None, None]
    assert plan.finished_at is None


def test_an_action_that_is_not_json_names_its_index_and_stores_nothing(store: Store) -> None:
    store.record_plan(actions(), summary="kept")
    bad = [*actions(), {"type": "DefineVM", "payload": object()}]
    with pytest.raises(InvalidInput) as caught:
        store.record_plan(bad)
    assert caught.value.field == "actions[2]"
    assert [p.summary for p in store.list_plans()] == ["kept"]


def test_outcomes_are_recorded_per_action_and_may_be_replaced(
    store: Store, clock: FakeClock
) -> None:
    plan_id = store.record_plan(actions())
    store.record_outcome(plan_id, 0, ok=True)
    store.record_outcome(plan_id, 1, ok=False, error="agent h1: connection refused")
    assert store.get_plan(plan_id).failed == [1]
    clock.advance(30)
    store.record_outcome(plan_id, 1, ok=True)
    store.finish_plan(plan_id, "2 ok")
    plan = store.get_plan(plan_id)
    assert [o.ok if o else None for o in plan.outcomes] == [True, True]
    assert plan.outcomes[1] is not None and plan.outcomes[1].at == clock.now
    assert (plan.summary, plan.finished_at, plan.failed) == ("2 ok", clock.now, [])


def test_plans_are_listed_newest_first(store: Store) -> None:
    first = store.record_plan(actions(), source="git:origin")
    second = store.record_plan([], source="dir:local", summary="nothing to do")
    third = store.record_plan(actions()[:1], source="git:origin")
    assert [p.id for p in store.list_plans()] == [third, second, first]
    assert [p.id for p in store.list_plans(source="git:origin", limit=1)] == [third]


def test_outcomes_of_unknown_plans_or_actions_are_refused(store: Store) -> None:
    plan_id = store.record_plan(actions())
    with pytest.raises(InvalidInput, match="has 2 actions, got index 2"):
        store.record_outcome(plan_id, 2, ok=True)
    with pytest.raises(NotFound):
        store.record_outcome(plan_id + 100, 0, ok=True)
    with pytest.raises(NotFound):
        store.get_plan(plan_id + 100)
