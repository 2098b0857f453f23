"""The fencing lease: pure decisions (table) and the self-fence watchdog (fake clock)."""

from __future__ import annotations

import time

import pytest
from agentkit import make_spec, revise

from controller.agents import AgentConflict
from nodeagent.errors import AgentFailure
from nodeagent.lease import Lease, LeaseKeeper, ha_start_refusal, must_fence, renew_lease
from nodeagent.models import FenceRecord, LeaseRenewal


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


NEVER = Lease(ttl_s=10)
HELD = Lease(ttl_s=10, holder="ctl", epoch=2, expires_at=110.0)


@pytest.mark.parametrize(
    ("lease", "now", "fence", "refusal"),
    [
        (NEVER, 0.0, False, "lease_not_granted"),
        (NEVER, 1e9, False, "lease_not_granted"),
        (HELD, 100.0, False, None),
        (HELD, 109.99, False, None),
        (HELD, 110.0, True, "lease_expired"),
        (HELD, 500.0, True, "lease_expired"),
    ],
    ids=["never-granted", "never-granted-later", "held", "held-edge", "expired-edge", "expired"],
)
def test_fence_and_start_decisions(lease, now, fence, refusal):
    assert must_fence(lease, now) is fence
    reason = ha_start_refusal(lease, now)
    assert (reason.split(":")[0] if reason else None) == refusal


@pytest.mark.parametrize(
    ("renewal", "expires_at", "ttl_s"),
    [
        (LeaseRenewal(holder="ctl", epoch=2), 110.0, 10),
        (LeaseRenewal(holder="ctl", epoch=3, ttl_s=4), 104.0, 4),
        (LeaseRenewal(holder="ctl-b", epoch=5), 110.0, 10),
    ],
    ids=["same-epoch", "new-ttl", "new-holder"],
)
def test_renewal_extends_from_now(renewal, expires_at, ttl_s):
    renewed = renew_lease(HELD, renewal, now=100.0)
    assert (renewed.expires_at, renewed.ttl_s, renewed.holder) == (
        expires_at,
        ttl_s,
        renewal.holder,
    )


def test_stale_epoch_is_refused():
    with pytest.raises(AgentFailure, match="older than the held epoch 2"):
        renew_lease(HELD, LeaseRenewal(holder="old-ctl", epoch=1), now=100.0)


def test_expiry_fences_only_ha_domains(make_agent, client_for):
    clock = FakeClock()
    agent = make_agent(lease_ttl_s=10, clock=clock)
    agent.lease.stop()  # ticks are driven by hand below
    client = client_for(agent)
    client.renew_lease("ctl", ttl_s=10)
    client.ensure_domain_defined(make_spec("db-1", n=1, ha=True))
    client.ensure_domain_defined(make_spec("web-1", n=2))
    client.ensure_running("db-1")
    client.ensure_running("web-1")

    clock.now += 9.9
    assert agent.lease.tick() == []
    clock.now += 0.2
    records = agent.lease.tick()

    assert [(r.vm, r.ok) for r in records] == [("db-1", True)]
    state = client.get_state()
    assert {d.name: d.state for d in state.domains} == {"db-1": "shutoff", "web-1": "running"}
    assert state.lease.held is False
    assert [f.vm for f in state.lease.fenced] == ["db-1"]
    with pytest.raises(AgentConflict, match="lease_expired"):
        client.ensure_running("db-1")
    assert client.ensure_running("web-1").changed is False

    client.renew_lease("ctl", ttl_s=10)
    assert client.ensure_running("db-1").changed is True


def test_watchdog_thread_fences_and_emits_an_event(make_agent, client_for):
    agent = make_agent(lease_ttl_s=0.3, watchdog_interval_s=0.05)
    client = client_for(agent)
    client.renew_lease("ctl")
    client.ensure_domain_defined(revise(make_spec("db-1", n=1), ha=True))
    client.ensure_running("db-1")
    since = agent.events.last_seq

    deadline = time.monotonic() + 5
    while client.get_domain("db-1").state == "running" and time.monotonic() < deadline:
        time.sleep(0.05)

    assert client.get_domain("db-1").state == "shutoff"
    events = list(client.events(since=since, wait_s=0.2))
    fences = [e for e in events if e.kind == "fence"]
    assert [(e.name, e.event, e.detail) for e in fences] == [("db-1", "fenced", "lease_expired")]
    assert [f.vm for f in client.get_lease().fenced] == ["db-1"]


def test_unrenewed_agent_never_fences(make_agent, client_for):
    agent = make_agent(lease_ttl_s=0.1, watchdog_interval_s=0.02)
    client = client_for(agent)
    client.ensure_domain_defined(make_spec("web-1", n=2))
    client.ensure_running("web-1")
    time.sleep(0.3)

    assert client.get_lease().granted is False
    assert client.get_domain("web-1").state == "running"


def test_a_restarted_agent_still_fences_when_its_granted_lease_runs_out(tmp_path):
    """An agent restarted during a partition keeps the lease it was granted (same boot)."""
    state = tmp_path / "lease.json"
    clock = FakeClock()
    fenced: list[str] = []
    first = LeaseKeeper(5.0, lambda: [], clock=clock, state_file=state)
    first.renew(LeaseRenewal(holder="ctl", ttl_s=5.0, epoch=3))
    # The process dies; a new one starts and is never renewed again (partition).
    second = LeaseKeeper(
        5.0,
        lambda: fenced.append("ha-vm") or [FenceRecord(vm="ha-vm", at=0.0, ok=True, message="")],
        clock=clock,
        state_file=state,
    )
    assert second.state().granted and second.state().epoch == 3
    assert second.tick() == []
    clock.now += 5.0
    assert [r.vm for r in second.tick()] == ["ha-vm"]
    with pytest.raises(AgentFailure):
        second.check_ha_start("ha-vm")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("not json", id="garbage"),
        pytest.param(
            '{"boot_id": "another-boot", "ttl_s": 5, "holder": "c", "epoch": 1, '
            '"expires_at": 1e12}',
            id="other-boot",
        ),
    ],
)
def test_a_lease_file_from_another_boot_or_unreadable_is_not_restored(tmp_path, content):
    state = tmp_path / "lease.json"
    state.write_text(content)
    keeper = LeaseKeeper(5.0, lambda: [], clock=FakeClock(), state_file=state)
    assert not keeper.state().granted


@pytest.mark.parametrize(
    ("term", "refused"),
    [
        pytest.param(None, False, id="no-term"),
        pytest.param(3, False, id="current-term"),
        pytest.param(4, False, id="newer-term"),
        pytest.param(2, True, id="deposed-term"),
    ],
)
def test_mutating_calls_from_a_deposed_controller_term_are_refused(
    make_agent, client_for, term, refused
):
    agent = make_agent(lease_ttl_s=60)
    client_for(agent).renew_lease("leader", ttl_s=60, epoch=3)
    client = client_for(agent)
    client.epoch = lambda: term
    if refused:
        with pytest.raises(AgentConflict, match="older than term 3"):
            client.ensure_domain_defined(make_spec("web-1", n=1))
        assert [d.name for d in client.get_state().domains if d.name == "web-1"] == []
    else:
        assert client.ensure_domain_defined(make_spec("web-1", n=1)).changed is True
