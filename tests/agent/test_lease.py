"""The fencing lease in etcd: pure decisions (tables), then the agent against a real etcd."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from agentkit import make_spec

from agentapi import FenceRecord
from arbiter import EtcdClient, EtcdSettingError, host_key, make_settings
from controller.agents import AgentConflict
from nodeagent.errors import AgentFailure
from nodeagent.lease import (
    HeldLease,
    LeaseKeeper,
    LeaseSettingError,
    LeaseTiming,
    fence_deadline,
    ha_start_refusal,
    lease_timing,
    must_fence,
)
from tests.helpers.etcd import EtcdCluster


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


TIMING = LeaseTiming(ttl_s=10, margin_s=2.0, interval_s=1.0)
STARTED = 100.0
NEVER = HeldLease()
ACKED = HeldLease(lease_id=7, acked_sent_at=200.0)


@pytest.mark.parametrize(
    ("lease", "now", "deadline", "fence", "refusal"),
    [
        (NEVER, 100.0, 100.0, True, "lease_not_held"),
        (NEVER, 500.0, 100.0, True, "lease_not_held"),
        (ACKED, 200.0, 208.0, False, None),
        (ACKED, 207.99, 208.0, False, None),
        (ACKED, 208.0, 208.0, True, "lease_lapsed"),
        (ACKED, 900.0, 208.0, True, "lease_lapsed"),
    ],
    ids=["never-acked", "never-acked-later", "acked", "just-before", "deadline", "long-after"],
)
def test_fence_and_start_decisions(lease, now, deadline, fence, refusal):
    assert fence_deadline(lease, TIMING, STARTED) == deadline
    assert must_fence(lease, TIMING, STARTED, now) is fence
    reason = ha_start_refusal(lease, TIMING, STARTED, now)
    assert (reason.split(":")[0] if reason else None) == refusal


@pytest.mark.parametrize(
    ("ttl", "margin", "failover", "expected"),
    [
        pytest.param(10, None, 2.5, LeaseTiming(10, 2.0, 1.0), id="default-margin"),
        pytest.param(5, None, 2.5, LeaseTiming(5, 1.0, 1.0), id="floor"),
        pytest.param(5, 1.5, 2.5, LeaseTiming(5, 1.5, 1.0), id="floor-wider-margin"),
        pytest.param(4, None, 2.5, "lease_ttl_s", id="cannot-outlast-a-leader-change"),
        pytest.param(3, None, 1.0, LeaseTiming(3, 1.0, 0.6), id="tuned-etcd"),
        pytest.param(2, None, 0.5, LeaseTiming(2, 1.0, 0.4), id="shortest"),
        pytest.param(2, 1.5, 0.0, "lease_ttl_s", id="too-short-for-two-keepalives"),
        pytest.param(1, None, 2.5, "lease_ttl_s", id="below-etcd-minimum"),
        pytest.param(2.5, None, 2.5, "lease_ttl_s", id="fraction"),
        pytest.param(10, 9.0, 2.5, "lease_ttl_s", id="margin-eats-the-ttl"),
        pytest.param(10, 0.0, 2.5, "fence_margin_s", id="no-margin"),
    ],
)
def test_lease_timing_is_checked(ttl, margin, failover, expected):
    if isinstance(expected, str):
        with pytest.raises(LeaseSettingError) as caught:
            lease_timing(ttl, margin, failover)
        assert caught.value.setting == expected
    else:
        assert lease_timing(ttl, margin, failover) == expected


def _settings(cluster: EtcdCluster):
    return make_settings(cluster.endpoints)


def _wait(predicate, timeout_s: float, step_s: float = 0.05) -> float:
    """Wait until `predicate()`; return the seconds it took (fail after `timeout_s`)."""
    start = time.monotonic()
    while not predicate():
        assert time.monotonic() - start < timeout_s, "condition not met in time"
        time.sleep(step_s)
    return time.monotonic() - start


def test_an_agent_holds_its_key_in_etcd_and_may_start_ha_domains(etcd, make_agent, client_for):
    agent = make_agent(host="node-a", lease=lease_timing(5), etcd=_settings(etcd))
    client = client_for(agent)
    with EtcdClient(_settings(etcd)) as reader:
        _wait(lambda: reader.get(host_key("/corral/", "node-a")) is not None, 5)
        key = reader.get(host_key("/corral/", "node-a"))
    state = client.get_lease()
    assert (state.arbiter, state.held, state.granted) == ("etcd", True, True)
    assert state.lease_id == f"{key.lease:x}"
    client.ensure_domain_defined(make_spec("db-1", n=1, ha=True))
    assert client.ensure_running("db-1").changed is True


def test_lost_keepalives_fence_ha_domains_before_etcd_expires_the_key(make_agent, client_for):
    with EtcdCluster(1) as cluster:
        cluster.start()
        settings = _settings(cluster)
        agent = make_agent(
            host="node-b", lease=lease_timing(5, 1.0), etcd=settings, watchdog_interval_s=0.05
        )
        client = client_for(agent)
        _wait(lambda: client.get_lease().held, 5)
        client.ensure_domain_defined(make_spec("db-1", n=1, ha=True))
        client.ensure_domain_defined(make_spec("web-1", n=2))
        client.ensure_running("db-1")
        client.ensure_running("web-1")
        since = agent.events.last_seq

        cluster.kill_member(0)  # no keepalive is acknowledged from now on
        fenced_after = _wait(lambda: client.get_domain("db-1").state != "running", 8)

        # The last ack was sent at most one interval (1 s) before the kill: the fence comes
        # at TTL - margin = 4 s after it, before etcd could expire the lease (5 s).
        assert fenced_after < 5.0
        assert client.get_domain("web-1").state == "running"
        fences = [e for e in client.events(since=since, wait_s=0.2) if e.kind == "fence"]
        assert [(e.name, e.event, e.detail) for e in fences] == [
            ("db-1", "fenced", "lease_expired")
        ]
        with pytest.raises(AgentConflict, match="lease_lapsed"):
            client.ensure_running("db-1")


def test_a_lease_etcd_lost_is_fenced_at_once_and_granted_anew(etcd, make_agent, client_for):
    settings = _settings(etcd)
    agent = make_agent(
        host="node-c", lease=lease_timing(10), etcd=settings, watchdog_interval_s=0.05
    )
    client = client_for(agent)
    _wait(lambda: client.get_lease().held, 5)
    client.ensure_domain_defined(make_spec("db-1", n=1, ha=True))
    client.ensure_running("db-1")
    first = client.get_lease().lease_id

    with EtcdClient(settings) as admin:
        admin.revoke(int(first, 16))  # as if etcd had let it expire: the key is gone
        # Well within the TTL of 10 s: the agent fences on the keepalive's answer.
        assert _wait(lambda: client.get_domain("db-1").state != "running", 3) < 2.0
        _wait(lambda: client.get_lease().held and client.get_lease().lease_id != first, 5)
        assert admin.get(host_key("/corral/", "node-c")) is not None


def test_an_agent_restarted_within_its_ttl_keeps_its_lease(etcd, make_agent, tmp_path):
    settings = _settings(etcd)
    state = tmp_path / "lease.json"
    first = make_agent(host="node-d", lease=lease_timing(5), etcd=settings, lease_file=state)
    _wait(lambda: first.lease.state().held, 5)
    lease_id = first.lease.state().lease_id
    first.close()

    fenced: list[str] = []
    second = LeaseKeeper(
        "node-d", lease_timing(5), lambda: fenced.append("x") or [], etcd=settings, state_file=state
    )
    second.start(watchdog_interval_s=0.05)
    try:
        time.sleep(1.5)
        assert second.state().lease_id == lease_id  # the same lease, kept alive
        assert second.state().held and fenced == []
    finally:
        second.stop()


def test_an_agent_restarted_after_its_lease_lapsed_fences_at_start(tmp_path):
    state = tmp_path / "lease.json"
    clock = FakeClock()
    timing = lease_timing(5)
    first = LeaseKeeper(
        "node-e",
        timing,
        lambda: [],
        etcd=make_settings("http://127.0.0.1:9"),
        clock=clock,
        state_file=state,
    )
    first._set(HeldLease(lease_id=42, acked_sent_at=clock.now))
    clock.now += 10  # the agent was away longer than the lease

    records = [FenceRecord(vm="ha-vm", at=0.0, ok=True, message="destroyed")]
    second = LeaseKeeper(
        "node-e", timing, lambda: records, etcd=first.etcd, clock=clock, state_file=state
    )
    assert second.lease.lease_id == 42
    assert [r.vm for r in second.tick()] == ["ha-vm"]
    with pytest.raises(AgentFailure, match="lease_lapsed"):
        second.check_ha_start("ha-vm")


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("not json", id="garbage"),
        pytest.param(
            '{"boot_id": "another-boot", "lease_id": 1, "acked_sent_at": 1e12}', id="other-boot"
        ),
    ],
)
def test_a_lease_file_from_another_boot_or_unreadable_is_not_restored(tmp_path, content):
    state = tmp_path / "lease.json"
    state.write_text(content)
    keeper = LeaseKeeper(
        "h", lease_timing(5), lambda: [], etcd=make_settings("http://127.0.0.1:9"), state_file=state
    )
    assert keeper.lease == HeldLease()


def test_an_agent_without_etcd_never_fences_and_starts_ha_domains(make_agent, client_for):
    agent = make_agent(lease=lease_timing(5), watchdog_interval_s=0.02)
    client = client_for(agent)
    client.ensure_domain_defined(make_spec("db-1", n=1, ha=True))
    assert client.ensure_running("db-1").changed is True
    time.sleep(0.5)
    assert client.get_domain("db-1").state == "running"
    state = client.get_lease()
    assert (state.arbiter, state.held, state.fenced) == ("none", False, [])


def test_an_unreachable_etcd_stops_the_agent_at_start_naming_the_setting(make_agent):
    settings = make_settings("http://127.0.0.1:9", names={"endpoints": "--etcd-endpoints"})
    with pytest.raises(EtcdSettingError) as caught:
        make_agent(host="node-f", lease=lease_timing(5), etcd=settings)
    assert caught.value.setting == "--etcd-endpoints"
    assert "127.0.0.1:9" in str(caught.value)


def test_wrong_etcd_certificates_stop_the_agent_naming_them(etcd_tls, make_agent, tmp_path):
    from nodeagent.tls import make_ca, make_controller_cert

    other = tmp_path / "other-ca"
    make_ca(other, "not the etcd CA")
    make_controller_cert(other)
    tls = etcd_tls.client_tls
    settings = make_settings(
        etcd_tls.endpoints,
        ca_file=tls.ca,
        cert_file=other / "controller" / "client.crt",
        key_file=other / "controller" / "client.key",
        names={"ca_file": "--etcd-ca", "cert_file": "--etcd-cert", "key_file": "--etcd-key"},
    )
    with pytest.raises(EtcdSettingError, match="TLS") as caught:
        make_agent(host="node-g", lease=lease_timing(5), etcd=settings)
    assert caught.value.setting == "--etcd-ca, --etcd-cert, --etcd-key"


def test_the_right_etcd_certificates_hold_the_lease(etcd_tls, make_agent):
    tls = etcd_tls.client_tls
    settings = make_settings(
        etcd_tls.endpoints, ca_file=tls.ca, cert_file=tls.cert, key_file=tls.key
    )
    agent = make_agent(host="node-h", lease=lease_timing(5), etcd=settings)
    _wait(lambda: agent.lease.state().held, 5)


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
    agent = make_agent()
    leader = client_for(agent)
    leader.epoch = lambda: 3
    leader.ensure_domain_defined(make_spec("db-0", n=9))
    client = client_for(agent)
    client.epoch = lambda: term
    if refused:
        with pytest.raises(AgentConflict, match="older than term 3"):
            client.ensure_domain_defined(make_spec("web-1", n=1))
        assert [d.name for d in client.get_state().domains if d.name == "web-1"] == []
    else:
        assert client.ensure_domain_defined(make_spec("web-1", n=1)).changed is True


def test_the_newest_term_survives_an_agent_restart(make_agent, client_for, tmp_path: Path):
    terms = tmp_path / "agent.term"
    first = make_agent(term_file=terms)
    client = client_for(first)
    client.epoch = lambda: 5
    client.ensure_domain_defined(make_spec("db-0", n=9))
    first.close()

    second = make_agent(term_file=terms)
    stale = client_for(second)
    stale.epoch = lambda: 4
    with pytest.raises(AgentConflict, match="older than term 5"):
        stale.ensure_domain_defined(make_spec("web-1", n=1))


def test_ha_start_refused_until_the_lease_is_held_then_allowed():
    clock = FakeClock()
    keeper = LeaseKeeper(
        "n", lease_timing(5), lambda: [], etcd=make_settings("http://127.0.0.1:9"), clock=clock
    )
    with pytest.raises(AgentFailure, match="lease_not_held"):
        keeper.check_ha_start("db-1")
    keeper._set(HeldLease(lease_id=1, acked_sent_at=clock.now))
    keeper.check_ha_start("db-1")
    clock.now += 4.0  # TTL 5 - margin 1
    with pytest.raises(AgentFailure, match="lease_lapsed"):
        keeper.check_ha_start("db-1")
