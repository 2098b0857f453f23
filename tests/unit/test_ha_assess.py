"""assess_host: liveness and the exact moment a failed host's VMs may run elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from controller.ha import HostState, assess_host, lease_renewal_due
from controller.plan.model import HostObservation
from schemas.host import FenceMethod

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
TTL, MARGIN, TIMEOUT = 10, 5, 3  # safe_at = lease_sent_at + 18 s


def s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def obs(reachable=False, seen=None, sent=None, acked=None, fenced=None) -> HostObservation:
    return HostObservation(
        name="h",
        reachable=reachable,
        last_seen=seen,
        lease_sent_at=sent,
        lease_acked_at=acked,
        power_fenced_at=fenced,
    )


LEASED = {"seen": T0, "sent": T0, "acked": T0}

ROWS = [
    # id, observation, now, method, state, safe, reason, safe_at
    (
        "up",
        obs(True, **LEASED),
        s(100),
        FenceMethod.LEASE,
        HostState.UP,
        False,
        "AgentAnswering",
        None,
    ),
    (
        "never-reached",
        obs(),
        s(100),
        FenceMethod.LEASE,
        HostState.UNKNOWN,
        False,
        "NeverReached",
        None,
    ),
    (
        "silent-briefly-suspect",
        obs(**LEASED),
        s(5),
        FenceMethod.LEASE,
        HostState.SUSPECT,
        False,
        "AgentUnreachable",
        s(18),
    ),
    (
        "silent-ttl-failed-waiting",
        obs(**LEASED),
        s(10),
        FenceMethod.LEASE,
        HostState.FAILED,
        False,
        "WaitingForLeaseExpiry",
        s(18),
    ),
    (
        "just-before-safe-at",
        obs(**LEASED),
        s(17.999),
        FenceMethod.LEASE,
        HostState.FAILED,
        False,
        "WaitingForLeaseExpiry",
        s(18),
    ),
    (
        "exactly-at-safe-at",
        obs(**LEASED),
        s(18),
        FenceMethod.LEASE,
        HostState.FAILED,
        True,
        "LeaseExpired",
        s(18),
    ),
    (
        "just-after-safe-at",
        obs(**LEASED),
        s(18.001),
        FenceMethod.LEASE,
        HostState.FAILED,
        True,
        "LeaseExpired",
        s(18),
    ),
    (
        "ack-lost-counts-from-send",
        obs(seen=T0, sent=s(3), acked=T0),
        s(20.5),
        FenceMethod.LEASE,
        HostState.FAILED,
        False,
        "WaitingForLeaseExpiry",
        s(21),
    ),
    (
        "ack-lost-safe-from-send",
        obs(seen=T0, sent=s(3), acked=T0),
        s(21),
        FenceMethod.LEASE,
        HostState.FAILED,
        True,
        "LeaseExpired",
        s(21),
    ),
    (
        "never-leased-not-safe",
        obs(seen=T0),
        s(1000),
        FenceMethod.LEASE,
        HostState.FAILED,
        False,
        "NotProvablyOff",
        None,
    ),
    (
        "never-leased-power-fenced",
        obs(seen=T0, fenced=s(30)),
        s(31),
        FenceMethod.IPMI,
        HostState.FENCED,
        True,
        "PowerFenced",
        s(30),
    ),
    (
        "power-method-waits-for-fence",
        obs(seen=T0),
        s(1000),
        FenceMethod.REDFISH,
        HostState.FAILED,
        False,
        "WaitingForFence",
        None,
    ),
    (
        "power-method-leased-waits-before-expiry",
        obs(**LEASED),
        s(12),
        FenceMethod.IPMI,
        HostState.FAILED,
        False,
        "WaitingForFence",
        s(18),
    ),
    (
        "power-method-leased-lease-expiry-suffices",
        obs(**LEASED),
        s(18),
        FenceMethod.COMMAND,
        HostState.FAILED,
        True,
        "LeaseExpired",
        s(18),
    ),
    (
        "power-fenced-before-lease-expiry",
        obs(fenced=s(11), **LEASED),
        s(11),
        FenceMethod.IPMI,
        HostState.FENCED,
        True,
        "PowerFenced",
        s(11),
    ),
    (
        "reachable-again-after-fence-is-up",
        obs(True, fenced=s(11), **LEASED),
        s(40),
        FenceMethod.IPMI,
        HostState.UP,
        False,
        "AgentAnswering",
        None,
    ),
    (
        "old-fence-does-not-cover-a-new-failure",
        obs(seen=s(100), sent=s(100), acked=s(100), fenced=s(11)),
        s(112),
        FenceMethod.IPMI,
        HostState.FAILED,
        False,
        "WaitingForFence",
        s(118),
    ),
    (
        "recent-renewal-extends-suspicion",
        obs(seen=s(-60), sent=s(0), acked=s(0)),
        s(9),
        FenceMethod.LEASE,
        HostState.SUSPECT,
        False,
        "AgentUnreachable",
        s(18),
    ),
]


@pytest.mark.parametrize(
    ("observation", "now", "method", "state", "safe", "reason", "safe_at"),
    [pytest.param(*r[1:], id=r[0]) for r in ROWS],
)
def test_assess_host(observation, now, method, state, safe, reason, safe_at):
    health = assess_host(observation, TTL, MARGIN, TIMEOUT, now, method)
    assert (health.state, health.safe_to_restart, health.reason, health.safe_at) == (
        state,
        safe,
        reason,
        safe_at,
    )


def test_messages_give_the_times():
    waiting = assess_host(obs(**LEASED), TTL, MARGIN, TIMEOUT, s(12), FenceMethod.LEASE)
    assert waiting.message == (
        "Host h failed; its VMs may still run until its lease expires at 2024-05-01 12:00:18"
    )
    expired = assess_host(obs(**LEASED), TTL, MARGIN, TIMEOUT, s(18), FenceMethod.LEASE)
    assert expired.message == (
        "Host h failed; its lease expired at 2024-05-01 12:00:18 (TTL 10s, request timeout 3s "
        "and margin 5s after the last renewal sent): its HA VMs may restart elsewhere"
    )


@pytest.mark.parametrize(
    ("acked", "now", "due"),
    [
        pytest.param(None, s(0), True, id="never-acked"),
        pytest.param(T0, s(0), False, id="just-renewed"),
        pytest.param(T0, s(3.3), False, id="before-third"),
        pytest.param(T0, s(10 / 3), True, id="at-third"),
        pytest.param(T0, s(9), True, id="late"),
    ],
)
def test_lease_renewal_due(acked, now, due):
    assert lease_renewal_due(acked, TTL, now) is due
