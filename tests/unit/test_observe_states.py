"""read_observed: stored host states become the planner's HostObservations, parsed once
per state and the same objects while unchanged."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from fleet_sim import host_state

from agentapi import DomainSpec, DomainState
from controller.observe import read_observed
from controller.store import open_store

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
UUID = "6d1dc548-9699-559f-9c5b-c752242c4c97"


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


def test_a_live_definition_equal_to_the_persistent_one_is_the_same_object(
    tmp_path: Path,
) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    state = host_state("h1")
    spec = DomainSpec(name="vm1", uuid=UUID, vcpus=1, memory_mib=1024)
    changed = spec.model_copy(update={"vcpus": 2})
    state.domains = [domain("vm1", spec, spec), domain("vm2", spec, changed), domain("vm3", spec)]
    store.put_observed("h1", reachable=True, state=state.model_dump(mode="json"))
    seen = read_observed(store, NOW).hosts["h1"].state
    assert seen is not None and seen == state
    same, differs, stopped = seen.domains
    assert same.live is same.spec
    assert differs.live is not differs.spec and differs.live.vcpus == 2
    assert stopped.live is None
    store.close()


def domain(name: str, spec: DomainSpec, live: DomainSpec | None = None) -> DomainState:
    return DomainState(
        name=name,
        uuid=UUID,
        state="running" if live else "shutoff",
        reason="booted" if live else "shutdown",
        persistent=True,
        autostart=False,
        ha=False,
        spec=spec,
        live=live,
    )
