"""The lab's etcd: one member inside each host's namespaces, one cluster over mutual TLS that
the root namespace reaches; cutting a host's link cuts its member off with it, and the two
others keep a quorum that accepts writes."""

from __future__ import annotations

import ssl
import subprocess
import time

import httpx
import pytest

from controller.lab import netns
from controller.lab.etcd import CLIENT_PORT, PEER_PORT, call, is_healthy, wait_healthy
from controller.lab.libvirtd import Lab, LabHost
from tests.helpers.etcd import get, put

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
    with lab.etcd.client() as client:
        assert [is_healthy(client, endpoint) for endpoint in endpoints] == [True] * len(hosts)
        listed = call(client, endpoints[0], "/v3/cluster/member/list", {})["members"]
        assert sorted((m["name"], m["peerURLs"], m["clientURLs"]) for m in listed) == [
            (h.name, [f"https://{h.ip}:{PEER_PORT}"], [f"https://{h.ip}:{CLIENT_PORT}"])
            for h in hosts
        ]
        statuses = [lab.etcd.status(host) for host in hosts]
        assert len({s["header"]["cluster_id"] for s in statuses}) == 1
        assert len({s["leader"] for s in statuses}) == 1
        put(client, endpoints[0], PREFIX + "shared", "one cluster")
        assert [get(client, endpoint, PREFIX + "shared") for endpoint in endpoints] == [
            b"one cluster"
        ] * len(hosts)

    trusts_only = ssl.create_default_context(cafile=str(lab.etcd_client_tls().ca))
    with (
        httpx.Client(verify=trusts_only, timeout=2.0) as anonymous,
        pytest.raises(httpx.TransportError),
    ):
        put(anonymous, endpoints[0], PREFIX + "anonymous", "refused")


def test_a_cut_host_leaves_a_quorum_that_accepts_writes(lab: Lab) -> None:
    victim = leader_host(lab)  # the harder cut: the others must elect a new leader
    others = [host for host in lab.hosts if host.name != victim.name]
    endpoint = {host.name: f"https://{host.ip}:{CLIENT_PORT}" for host in lab.hosts}
    key = PREFIX + "after-cut"
    cut_at = time.monotonic()
    lab.partition(victim.name)
    try:
        with lab.etcd.client(timeout_s=0.5) as client:
            with pytest.raises(httpx.TransportError):
                client.get(f"{endpoint[victim.name]}/health", timeout=1.0)
            while True:
                try:
                    put(client, endpoint[others[0].name], key, "quorum of two")
                    break
                except httpx.HTTPError:
                    if time.monotonic() - cut_at > WRITE_TIMEOUT_S:
                        raise
                    time.sleep(0.1)
            written_s = time.monotonic() - cut_at
            assert [get(client, endpoint[h.name], key) for h in others] == [b"quorum of two"] * 2
        inside = etcdctl_put_inside(lab, victim, PREFIX + "from-the-cut-host")
        assert inside.returncode != 0, inside.stdout
        print(
            f"\nleader {victim.name} cut off: write through {others[0].name} acknowledged after "
            f"{written_s:.2f}s; inside {victim.name}: {inside.stderr.strip().splitlines()[-1]}"
        )
    finally:
        lab.heal(victim.name)
    with lab.etcd.client() as client:
        wait_healthy(client, lab.etcd.member(victim), lab.etcd.log(victim), timeout_s=30)
        assert get(client, endpoint[victim.name], key) == b"quorum of two"
        assert get(client, endpoint[victim.name], PREFIX + "from-the-cut-host") is None
