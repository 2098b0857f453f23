"""assess_host: liveness, and the exact moment a failed host's VMs may run elsewhere.

The proofs that a host's VMs stopped are its etcd key gone (plus the margin) or a
confirmed power fence; everything else waits and says why.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fleet_sim import host_state

from controller.ha import HostState, assess_host
from controller.plan.model import HostObservation, LeaseObservation
from schemas.host import FenceMethod

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
MARGIN = 5
LEASE, IPMI = FenceMethod.LEASE, FenceMethod.IPMI

ALIVE = LeaseObservation(alive=True)
UNSYNCED = LeaseObservation(alive=None)


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def gone(at: datetime | None) -> LeaseObservation:
    return LeaseObservation(alive=False, gone_since=at)


def obs(
    reachable: bool = False,
    seen: datetime | None = T0,
    lease: LeaseObservation | None = None,
    fenced: datetime | None = None,
    arbiter: str | None = None,
) -> HostObservation:
    """An observation of host h; `arbiter` sets the agent's last reported state ("etcd" or
    "none"; None: no state kept)."""
    state = None
    if arbiter is not None:
        state = host_state("h")
        state.lease = state.lease.model_copy(update={"arbiter": arbiter})
    return HostObservation(
        name="h",
        reachable=reachable,
        state=state,
        last_seen=seen,
        lease=lease,
        power_fenced_at=fenced,
    )


UP, SUSPECT, FAILED = HostState.UP, HostState.SUSPECT, HostState.FAILED
FENCED, UNKNOWN = HostState.FENCED, HostState.UNKNOWN

ROWS = [
    # id, observation, now, method, (state, safe, reason, safe_at, failed_at)
    ("up", obs(True, lease=ALIVE), s(100), LEASE,
     (UP, False, "AgentAnswering", None, None)),
    ("up-although-its-key-is-gone", obs(True, lease=gone(s(1))), s(100), LEASE,
     (UP, False, "AgentAnswering", None, None)),
    ("up-without-arbiter", obs(True), s(100), LEASE,
     (UP, False, "AgentAnswering", None, None)),
    ("up-while-etcd-unreadable", obs(True, lease=UNSYNCED), s(100), IPMI,
     (UP, False, "AgentAnswering", None, None)),
    # Never reached: nothing known, nothing of it to restart.
    ("never-reached-no-arbiter", obs(seen=None), s(100), LEASE,
     (UNKNOWN, False, "NeverReached", None, None)),
    ("never-reached-key-gone", obs(seen=None, lease=gone(T0)), s(100), LEASE,
     (UNKNOWN, False, "NeverReached", None, None)),
    ("never-reached-etcd-unreadable", obs(seen=None, lease=UNSYNCED), s(100), IPMI,
     (UNKNOWN, False, "NeverReached", None, None)),
    ("never-reached-but-holds-its-lease", obs(seen=None, lease=ALIVE), s(100), LEASE,
     (SUSPECT, False, "LeaseHeld", None, None)),
    # A live lease: the host runs, however long the controller has not reached it.
    ("silent-lease-held", obs(lease=ALIVE), s(3600), LEASE,
     (SUSPECT, False, "LeaseHeld", None, None)),
    ("silent-lease-held-power-method", obs(lease=ALIVE), s(3600), IPMI,
     (SUSPECT, False, "LeaseHeld", None, None)),
    # No etcd configured: only a power fence proves anything.
    ("no-arbiter", obs(), s(3600), LEASE,
     (FAILED, False, "NoArbiter", None, None)),
    ("no-arbiter-power-method-waits-for-fence", obs(), s(3600), FenceMethod.REDFISH,
     (FAILED, False, "WaitingForFence", None, None)),
    ("no-arbiter-power-fenced", obs(fenced=s(30)), s(31), IPMI,
     (FENCED, True, "PowerFenced", s(30), s(30))),
    # The controller's watch is out of sync: no proof either way.
    ("etcd-unreadable", obs(lease=UNSYNCED), s(3600), LEASE,
     (FAILED, False, "ArbiterUnreachable", None, None)),
    ("etcd-unreadable-power-method-waits-for-fence", obs(lease=UNSYNCED), s(3600),
     FenceMethod.COMMAND, (FAILED, False, "WaitingForFence", None, None)),
    ("etcd-unreadable-power-fenced", obs(lease=UNSYNCED, fenced=s(20)), s(20), IPMI,
     (FENCED, True, "PowerFenced", s(20), s(20))),
    # An agent that runs without etcd never fences, whatever the controller's watch says.
    ("agent-without-etcd", obs(lease=gone(s(10)), arbiter="none"), s(3600), LEASE,
     (FAILED, False, "NotProvablyOff", None, s(10))),
    ("agent-without-etcd-power-method", obs(lease=gone(s(10)), arbiter="none"), s(3600), IPMI,
     (FAILED, False, "WaitingForFence", None, s(10))),
    ("agent-without-etcd-power-fenced",
     obs(lease=gone(s(10)), arbiter="none", fenced=s(40)), s(41), IPMI,
     (FENCED, True, "PowerFenced", s(40), s(40))),
    # The key is gone: safe from gone_since + margin on, inclusive.
    ("key-just-gone", obs(lease=gone(s(10))), s(10), LEASE,
     (FAILED, False, "WaitingForLeaseExpiry", s(15), s(10))),
    ("one-second-before-safe-at", obs(lease=gone(s(10))), s(14), LEASE,
     (FAILED, False, "WaitingForLeaseExpiry", s(15), s(10))),
    ("a-millisecond-before-safe-at", obs(lease=gone(s(10))), s(14.999), LEASE,
     (FAILED, False, "WaitingForLeaseExpiry", s(15), s(10))),
    ("exactly-at-safe-at", obs(lease=gone(s(10))), s(15), LEASE,
     (FAILED, True, "LeaseExpired", s(15), s(10))),
    ("long-after-safe-at", obs(lease=gone(s(10))), s(3600), LEASE,
     (FAILED, True, "LeaseExpired", s(15), s(10))),
    ("agent-with-etcd-key-gone", obs(lease=gone(s(10)), arbiter="etcd"), s(15), LEASE,
     (FAILED, True, "LeaseExpired", s(15), s(10))),
    ("gone-time-unknown-is-never-safe", obs(lease=gone(None)), s(3600), LEASE,
     (FAILED, False, "WaitingForLeaseExpiry", s(3605), s(3600))),
    # A power method: a gone lease suffices too, a confirmed fence at once.
    ("power-method-key-gone-waits-for-margin", obs(lease=gone(s(10))), s(12), IPMI,
     (FAILED, False, "WaitingForLeaseExpiry", s(15), s(10))),
    ("power-method-key-gone-suffices", obs(lease=gone(s(10))), s(15), FenceMethod.COMMAND,
     (FAILED, True, "LeaseExpired", s(15), s(10))),
    ("power-fenced-before-the-margin", obs(lease=gone(s(10)), fenced=s(11)), s(11), IPMI,
     (FENCED, True, "PowerFenced", s(11), s(11))),
    ("power-fenced-while-the-key-is-still-there", obs(lease=ALIVE, fenced=s(20)), s(20), IPMI,
     (FENCED, True, "PowerFenced", s(20), s(20))),
    ("power-fenced-at-last-seen-counts", obs(seen=s(20), fenced=s(20)), s(20), IPMI,
     (FENCED, True, "PowerFenced", s(20), s(20))),
    ("power-fenced-never-reached", obs(seen=None, fenced=s(5)), s(5), IPMI,
     (FENCED, True, "PowerFenced", s(5), s(5))),
    ("reachable-again-after-fence-is-up", obs(True, lease=ALIVE, fenced=s(11)), s(40), IPMI,
     (UP, False, "AgentAnswering", None, None)),
    # A fence confirmed before the host last answered belongs to an earlier failure.
    ("old-fence-ignored-key-gone",
     obs(seen=s(100), lease=gone(s(110)), fenced=s(11)), s(112), IPMI,
     (FAILED, False, "WaitingForLeaseExpiry", s(115), s(110))),
    ("old-fence-ignored-no-arbiter", obs(seen=s(100), fenced=s(11)), s(112), IPMI,
     (FAILED, False, "WaitingForFence", None, None)),
    ("old-fence-ignored-lease-held", obs(seen=s(100), lease=ALIVE, fenced=s(99)), s(112), IPMI,
     (SUSPECT, False, "LeaseHeld", None, None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("observation", "now", "method", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_assess_host(observation, now, method, expected):
    health = assess_host(observation, MARGIN, now, method)
    got = (health.state, health.safe_to_restart, health.reason, health.safe_at, health.failed_at)
    assert got == expected
    assert health.host == "h"


MESSAGES = [
    ("up", obs(True), s(0), LEASE, "Host h answers"),
    ("never-reached", obs(seen=None), s(0), LEASE,
     "Host h has never answered and holds no lease"),
    ("lease-held", obs(lease=ALIVE), s(0), LEASE,
     "Host h does not answer the controller but keeps its etcd lease alive: it runs, and its "
     "VMs are not restarted elsewhere"),
    ("no-arbiter", obs(), s(0), LEASE,
     "Host h does not answer; no etcd is configured, so nothing proves its VMs stopped and HA "
     "restarts elsewhere are off"),
    ("no-arbiter-power-method", obs(), s(0), IPMI,
     "Host h does not answer; no etcd is configured, so nothing proves its VMs stopped and HA "
     "restarts elsewhere are off; waiting for its ipmi power fence to switch it off"),
    ("etcd-unreadable", obs(lease=UNSYNCED), s(0), LEASE,
     "Host h does not answer and the controller cannot read etcd: nothing proves its VMs "
     "stopped"),
    ("agent-without-etcd", obs(lease=gone(s(0)), arbiter="none"), s(0), LEASE,
     "Host h failed and its agent runs without etcd: nothing proves its VMs stopped"),
    ("waiting-for-lease-expiry", obs(lease=gone(s(10))), s(12), LEASE,
     "Host h failed; its etcd lease expired at 2024-05-01 12:00:10: its HA VMs restart "
     "elsewhere at 2024-05-01 12:00:15, after a margin of 5s"),
    ("lease-expired", obs(lease=gone(s(10))), s(15), LEASE,
     "Host h failed; its etcd lease expired (key gone at 2024-05-01 12:00:10, margin 5s): its "
     "agent has fenced, and its HA VMs may restart elsewhere"),
    ("power-fenced", obs(fenced=s(30)), s(31), IPMI,
     "Host h was switched off by its power fence at 2024-05-01 12:00:30"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("observation", "now", "method", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in MESSAGES],
)
def test_messages_say_why_and_until_when(observation, now, method, message):
    assert assess_host(observation, MARGIN, now, method).message == message
