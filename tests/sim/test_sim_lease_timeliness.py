"""The simulated agent grants leases as the real one does: never queued behind the host's
busy verb slots, counted from arrival, refused when granted too late."""

from __future__ import annotations

import threading

import pytest

from controller.agents import AgentClient
from controller.sim import INSTANT, SimFleet
from controller.sim.host import SimFailure
from nodeagent.models import LeaseRenewal


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_renewal_is_not_queued_behind_busy_verb_slots():
    fleet = SimFleet(["h1"], latency=INSTANT, per_host_parallel=1, lease_ttl_s=10.0)
    slot = fleet.slot("h1")
    slot.acquire()  # a long verb holds the host's only worker
    try:
        with AgentClient("http://h1.test:8470", transport=fleet.transport_for("h1")) as client:
            done: list[float] = []
            renewer = threading.Thread(
                target=lambda: done.append(client.renew_lease("ctl", 10.0, 1).expires_in_s)
            )
            renewer.start()
            renewer.join(timeout=2)
            assert not renewer.is_alive()
            assert done and done[0] is not None and done[0] > 9.0
    finally:
        slot.release()


@pytest.mark.parametrize(
    ("arrived_at", "granted_expiry"),
    [
        pytest.param(999.0, 1009.0, id="from-arrival"),
        pytest.param(997.0, None, id="late-refused"),
    ],
)
def test_renewal_counts_from_arrival_or_is_refused(arrived_at, granted_expiry):
    clock = FakeClock()
    fleet = SimFleet(["h1"], latency=INSTANT, clock=clock, sleep=lambda _s: None)
    host = fleet.hosts["h1"]
    host.renew_lease(LeaseRenewal(holder="ctl", epoch=1, ttl_s=10.0))
    renewal = LeaseRenewal(holder="ctl", epoch=1, ttl_s=10.0, request_timeout_s=2.0)

    if granted_expiry is None:
        with pytest.raises(SimFailure, match="lease_renewal_late"):
            host.renew_lease(renewal, arrived_at=arrived_at)
        assert host.lease.expires_at == 1010.0  # the earlier grant, not extended
    else:
        host.renew_lease(renewal, arrived_at=arrived_at)
        assert host.lease.expires_at == granted_expiry


def test_transport_stamps_arrival_before_the_call_latency():
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.now += seconds

    fleet = SimFleet(["h1"], latency=INSTANT.scaled(1.0), clock=clock, sleep=sleep)
    with AgentClient("http://h1.test:8470", transport=fleet.transport_for("h1")) as client:
        start = clock.now
        client.renew_lease("ctl", 10.0, 1)
    assert clock.now > start  # the call took its (simulated) latency
    assert fleet.hosts["h1"].lease.expires_at == start + 10.0
