"""The lab's etcd: one member inside each host's namespaces, one cluster over mutual TLS that
the root namespace reaches; cutting a host's link cuts its member off with it, and the two
others keep a quorum that accepts writes."""

from __future__ import annotations

import subprocess
import time

import httpx
import pytest

from arbiter import EtcdError
from controller.lab import netns
from controller.lab.etcd import CLIENT_PORT, PEER_PORT, wait_healthy
from controller.lab.libvirtd import Lab, LabHost
from tests.helpers.etcd import put_without_certificate, value

pytestmark = [pytest.mark.libvirtd, pytest.mark.lab]

PREFIX = "/corral-test/lab-etcd/"
WRITE_TIMEOUT_S = 15.0


def leader_host(lab: Lab) -> LabHost:
    """Returns the host whose member reports itself the cluster's leader."""
    for host in lab.hosts:
        status = lab.etcd.status(host)
        if status["leader"] == status["header"]["member_id"]:
            return host
    raise AssertionError("no member reports itself leader")


def read_at(lab: Lab, host: LabHost, key: str) -> bytes | None:
    """Returns the value of `key` as `host`'s member answers it (None if absent)."""
    with lab.etcd.client([host]) as client:
        return value(client, key)


def etcdctl_put_inside(lab: Lab, host: LabHost, key: str) -> subprocess.CompletedProcess[str]:
    """Runs `etcdctl put` inside `host`'s namespaces against its own member."""
    ca, cert, key_file = lab.etcd_client_tls()
    argv = [
        "etcdctl", "--endpoints", f"https://{host.ip}:{CLIENT_PORT}", "--cacert", str(ca),
        "--cert", str(cert), "--key", str(key_file), "--command-timeout=3s",
        "put", key, "from-inside",
    ]  # fmt: skip
    return subprocess.run(host.nsenter(argv), capture_output=True, text=True, timeout=30)


def test_members_form_one_healthy_cluster_reached_over_tls(lab: Lab) -> None:
    hosts = lab.hosts
    endpoints = lab.etcd_endpoints()
    assert endpoints == [f"https://{h.ip}:{CLIENT_PORT}" for h in hosts]
    for host in hosts:
        assert lab.etcd.pid(host) in netns.netns_pids(host.plan.netns)
    with lab.etcd.client(hosts[:1]) as client:
        assert [client.health(endpoint) for endpoint in endpoints] == [True] * len(hosts)
        listed = client.call("cluster/member/list", {})["members"]
        assert sorted((m["name"], m["peerURLs"], m["clientURLs"]) for m in listed) == [
            (h.name, [f"https://{h.ip}:{PEER_PORT}"], [f"https://{h.ip}:{CLIENT_PORT}"])
            for h in hosts
        ]
        statuses = [client.status(endpoint) for endpoint in endpoints]
        assert len({s["header"]["cluster_id"] for s in statuses}) == 1
        assert len({s["leader"] for s in statuses}) == 1
        client.put(PREFIX + "shared", "one cluster")
    shared = [read_at(lab, host, PREFIX + "shared") for host in hosts]
    assert shared == [b"one cluster"] * len(hosts)

    with pytest.raises(httpx.TransportError):
        put_without_certificate(endpoints[0], lab.etcd_client_tls().ca, PREFIX + "anonymous")


def test_a_cut_host_leaves_a_quorum_that_accepts_writes(lab: Lab) -> None:
    victim = leader_host(lab)  # the harder cut: the others must elect a new leader
    others = [host for host in lab.hosts if host.name != victim.name]
    endpoint = {host.name: f"https://{host.ip}:{CLIENT_PORT}" for host in lab.hosts}
    key = PREFIX + "after-cut"
    cut_at = time.monotonic()
    lab.partition(victim.name)
    try:
        with lab.etcd.client(others[:1], timeout_s=0.5) as client:
            with pytest.raises(httpx.TransportError):
                client.status(endpoint[victim.name])
            while True:
                try:
                    client.put(key, "quorum of two")
                    break
                except EtcdError:
                    if time.monotonic() - cut_at > WRITE_TIMEOUT_S:
                        raise
                    time.sleep(0.1)
            written_s = time.monotonic() - cut_at
        assert [read_at(lab, h, key) for h in others] == [b"quorum of two"] * 2
        inside = etcdctl_put_inside(lab, victim, PREFIX + "from-the-cut-host")
        assert inside.returncode != 0, inside.stdout
        print(
            f"\nleader {victim.name} cut off: write through {others[0].name} acknowledged after "
            f"{written_s:.2f}s; inside {victim.name}: {inside.stderr.strip().splitlines()[-1]}"
        )
    finally:
        lab.heal(victim.name)
    with lab.etcd.client([victim]) as client:
        wait_healthy(client, lab.etcd.member(victim), lab.etcd.log(victim), timeout_s=30)
        assert value(client, key) == b"quorum of two"
        assert value(client, PREFIX + "from-the-cut-host") is None
