"""The test etcd (tests/helpers/etcd.py) is a real one: keys and leases through the v3 JSON
gateway (with arbiter's EtcdClient), client certificates enforced, and a 3-member cluster that
survives its leader."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers.etcd import EtcdCluster, put_without_certificate, value

LEASE_TTL_S = 2
EXPIRY_SLACK_S = 3.0
"""etcd checks for expired leases twice a second; a key may outlive its lease by that much."""


def test_a_put_is_read_back_through_the_json_gateway(etcd: EtcdCluster) -> None:
    with etcd.client() as client:
        client.put("/corral/test/greeting", "hello")
        assert value(client, "/corral/test/greeting") == b"hello"
        assert value(client, "/corral/test/absent") is None


def test_a_lease_not_kept_alive_takes_its_key_within_ttl_plus_slack(etcd: EtcdCluster) -> None:
    key = "/corral/test/leased"
    with etcd.client() as client:
        before_grant = time.monotonic()
        lease, _ = client.grant(LEASE_TTL_S)
        client.put(key, "alive", lease=lease)
        assert value(client, key) == b"alive"
        deadline = before_grant + LEASE_TTL_S + EXPIRY_SLACK_S + 1
        while value(client, key) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        gone_s = time.monotonic() - before_grant
    print(f"\nlease TTL {LEASE_TTL_S}s without keepalive: key gone {gone_s:.2f}s after the grant")
    assert LEASE_TTL_S <= gone_s <= LEASE_TTL_S + EXPIRY_SLACK_S


def test_tls_refuses_a_client_without_a_certificate(etcd_tls: EtcdCluster) -> None:
    [endpoint] = etcd_tls.endpoints
    tls = etcd_tls.client_tls
    assert tls is not None and endpoint.startswith("https://")
    with pytest.raises(httpx.TransportError):
        put_without_certificate(endpoint, tls.ca, "/corral/test/anonymous")
    with etcd_tls.client() as client:
        client.put("/corral/test/certified", "accepted")
        assert value(client, "/corral/test/certified") == b"accepted"


def test_killing_the_leader_elects_another_and_writes_go_on(etcd3: EtcdCluster) -> None:
    leader = etcd3.wait_leader()
    survivors = [i for i in range(3) if i != leader]
    killed_at = time.monotonic()
    etcd3.kill_member(leader)
    try:
        new_leader = etcd3.wait_leader(other_than=leader)
        elected_s = time.monotonic() - killed_at
        assert new_leader in survivors
        with etcd3.client(survivors[0]) as writer, etcd3.client(survivors[1]) as reader:
            writer.put("/corral/test/after-failover", "written")
            written_s = time.monotonic() - killed_at
            assert value(reader, "/corral/test/after-failover") == b"written"
        print(
            f"\nleader m{leader} killed: m{new_leader} elected after {elected_s:.2f}s, "
            f"first write acknowledged after {written_s:.2f}s"
        )
    finally:
        etcd3.start_member(leader)
    with etcd3.client(leader) as client:
        assert value(client, "/corral/test/after-failover") == b"written"
