"""Observed hosts, and the power fence that must survive a controller restart.

The hosts' fencing leases are not stored: they live in etcd, and a restarted controller
reads them there again (controller.leasewatch).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import FakeClock

from controller.store import NotFound, Store

STATE = {"host": "h1", "domains": [{"name": "web-1", "state": "running"}], "memoryMib": 4096}


def test_an_observation_is_stored_and_changes_are_reported(store: Store, clock: FakeClock) -> None:
    assert store.put_observed("h1", reachable=True, state=STATE) is True
    seen = clock.now
    clock.advance(5)
    assert store.put_observed("h1", reachable=True, state=STATE) is False
    host = store.get_observed("h1")
    assert (host.reachable, host.state, host.last_seen, host.last_error) == (
        True,
        STATE,
        clock.now,
        None,
    )
    assert seen < host.last_seen


def test_volatile_fields_alone_are_no_change(store: Store, clock: FakeClock) -> None:
    """Free memory, the event counter and the lease countdown move on every read."""
    state = {**STATE, "free_memory_mib": 100, "events_seq": 3}
    state["lease"] = {"held": True, "arbiter": "etcd", "term": 2, "expires_in_s": 9.5}
    assert store.put_observed("h1", reachable=True, state=state) is True
    revision = store.revision()
    moved = {**state, "free_memory_mib": 90, "events_seq": 4}
    moved["lease"] = {"held": True, "arbiter": "etcd", "term": 2, "expires_in_s": 6.1}
    clock.advance(3)
    assert store.put_observed("h1", reachable=True, state=moved) is False
    assert store.revision() == revision
    host = store.get_observed("h1")
    assert host.state == state and host.last_seen == clock.now  # kept as of the last change
    guest = {"source": "agent", "at": 1.0, "filesystems": [{"mountpoint": "/", "used_bytes": 5}]}
    with_guest = {**state, "domains": [{"name": "web-1", "state": "running", "guest": guest}]}
    assert store.put_observed("h1", reachable=True, state=with_guest) is True
    later = {**guest, "at": 7.5, "filesystems": [{"mountpoint": "/", "used_bytes": 9}]}
    again = {**with_guest, "domains": [{"name": "web-1", "state": "running", "guest": later}]}
    assert store.put_observed("h1", reachable=True, state=again) is False
    revision = store.revision()
    # Anything else is a change, and is stored whole.
    lost = {**moved, "lease": {"held": False, "arbiter": "etcd", "term": 2, "expires_in_s": -1.0}}
    assert store.put_observed("h1", reachable=True, state=lost) is True
    assert store.get_observed("h1").state == lost and store.revision() > revision


def test_an_unreachable_host_keeps_its_last_state(store: Store, clock: FakeClock) -> None:
    store.put_observed("h1", reachable=True, state=STATE)
    seen = clock.now
    clock.advance(30)
    assert store.put_observed("h1", reachable=False, error="connection refused") is True
    host = store.get_observed("h1")
    assert (host.reachable, host.state, host.last_seen, host.last_error) == (
        False,
        STATE,
        seen,
        "connection refused",
    )


def test_an_observation_and_its_power_fence_survive_a_restart(
    open_db: Callable[[], Store], clock: FakeClock
) -> None:
    store = open_db()
    store.put_observed("h1", reachable=True, state=STATE)
    seen = clock.now
    clock.advance(30)
    store.put_observed("h1", reachable=False, error="no route to host")
    fenced = clock.advance(5)
    store.record_power_fenced("h1", fenced)
    store.close()
    host = open_db().get_observed("h1")
    assert (host.reachable, host.state, host.last_seen, host.last_error) == (
        False,
        STATE,
        seen,
        "no route to host",
    )
    assert host.power_fenced_at == fenced


def test_power_fencing_is_recorded_and_cleared(store: Store, clock: FakeClock) -> None:
    store.put_observed("h1", reachable=False, error="no route to host")
    store.record_power_fenced("h1", clock.now)
    assert store.get_observed("h1").power_fenced_at == clock.now
    store.record_power_fenced("h1", None)
    assert store.get_observed("h1").power_fenced_at is None
    with pytest.raises(NotFound):
        store.record_power_fenced("h9", clock.now)


def test_hosts_are_listed_and_forgotten(store: Store) -> None:
    store.put_observed("h2", reachable=True, state={})
    store.put_observed("h1", reachable=True, state={})
    assert [h.host for h in store.list_observed()] == ["h1", "h2"]
    assert store.delete_observed("h1") is True
    assert store.delete_observed("h1") is False
    with pytest.raises(NotFound):
        store.get_observed("h1")


def _host_state(**changes):
    from agentapi import DiskSpec, DomainSpec, GuestInfo, HostState
    from controller.sim import INSTANT, SimFleet

    fleet = SimFleet(["h1"], latency=INSTANT)
    host = fleet.hosts["h1"]
    spec = DomainSpec(
        name="web-1",
        uuid="5b2c1f3e-8a4d-4c1e-9f00-1234567890ab",
        vcpus=1,
        memory_mib=256,
        disks=[DiskSpec(target="vda", pool="vols", volume="web-1-root")],
    )
    host.ensure_domain_defined("web-1", spec)
    state = HostState.model_validate(host.state_document())
    guest = GuestInfo.model_validate(
        {
            "source": "agent",
            "at": changes.pop("at", 1.0),
            "filesystems": [{"mountpoint": "/", "used_bytes": changes.pop("used", 5)}],
        }
    )
    domain = state.domains[0].model_copy(update={"guest": guest, **changes.pop("domain", {})})
    lease = state.lease.model_copy(update={"expires_in_s": changes.pop("expires_in_s", 9.5)})
    return state.model_copy(update={"domains": [domain], "lease": lease, **changes})


def test_a_state_model_is_stored_as_its_json_and_hashed_without_volatile_fields(
    store: Store, clock: FakeClock
) -> None:
    state = _host_state(free_memory_mib=100, events_seq=3)
    assert store.put_observed("h1", reachable=True, state=state) is True
    assert store.get_observed("h1").state == state.model_dump(mode="json")
    revision = store.revision()
    volatile = _host_state(free_memory_mib=90, events_seq=4, expires_in_s=6.1, at=7.5, used=9)
    clock.advance(3)
    assert store.put_observed("h1", reachable=True, state=volatile) is False
    assert store.revision() == revision
    assert store.get_observed("h1").state == state.model_dump(mode="json")
    started = _host_state(free_memory_mib=90, domain={"state": "running"})
    assert store.put_observed("h1", reachable=True, state=started) is True
    assert store.get_observed("h1").state["domains"][0]["state"] == "running"
    assert store.revision() > revision
