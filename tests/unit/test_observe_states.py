"""read_observed: stored host states become the planner's HostObservations, parsed once
per state and the same objects while unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fleet_sim import host_state

from controller.observe import read_observed
from controller.store import open_store

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def test_states_parse_once_and_stay_the_same_objects(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    state = host_state("h1")
    store.put_observed("h1", reachable=True, state=state.model_dump(mode="json"))
    first = read_observed(store, NOW).hosts["h1"]
    again = read_observed(store, NOW).hosts["h1"]
    assert first.state == state
    assert (first.reachable, first.error) == (True, None)
    assert again.state is first.state
    store.close()


def test_a_state_that_does_not_parse_makes_the_host_unreachable(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    broken = host_state("h1").model_dump(mode="json")
    del broken["cpus"], broken["arch"]
    store.put_observed("h1", reachable=True, state=broken)
    seen = read_observed(store, NOW).hosts["h1"]
    assert (seen.reachable, seen.state, seen.error) == (
        False,
        None,
        "stored state does not parse: 2 errors",
    )
    store.close()
