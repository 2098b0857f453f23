"""Placement messages: what a person reads in a VM's status."""

from __future__ import annotations

import pytest
from test_scheduler_fixtures import anti, host, policy, vm

from controller.scheduler import schedule_vm

ROWS = [
    (
        "no-fit-three-reasons",
        [
            host("host-a", mem_gi=4, used_gi=2, labels={"zone": "a"}),
            host("host-b", labels={"zone": "a"}, maintenance=True),
            host("host-c", labels={"zone": "b"}),
        ],
        vm("web", cpus=2, mem_gi=16, selector={"matchLabels": {"zone": "a"}}),
        [],
        {},
        "No host has 2 CPUs and 16Gi memory free matching zone=a (3 hosts filtered: "
        "host-a memory 2Gi free, host-b maintenance, host-c label zone=b)",
    ),
    (
        "placed-with-runners-up",
        [host("host-a", used_gi=16), host("host-b", used_gi=4), host("host-c", used_gi=20)],
        vm("web", cpus=0, mem_gi=0),
        [],
        {},
        "Placed on host-b (score 0.88; host-a 0.50, host-c 0.38)",
    ),
    (
        "placed-alone-with-filtered-count",
        [host("host-a"), host("host-b", maintenance=True), host("host-c", maintenance=True)],
        vm("web", cpus=0, mem_gi=0),
        [],
        {},
        "Placed on host-a (score 1.00; 2 hosts filtered)",
    ),
    (
        "no-fit-pinned-network-pool-affinity",
        [host("host-a"), host("host-b")],
        vm(
            "db-2",
            cpus=1,
            mem_gi=1.5,
            pinned_host="host-a",
            networks=frozenset({"lan"}),
            pools=frozenset({"fast"}),
        ),
        [anti("db", ["db-1", "db-2"])],
        {"db-1": "host-a"},
        "No host has 1 CPU and 1.5Gi memory free on pinned host host-a with network lan with "
        "pool fast allowed by its affinity groups (2 hosts filtered: host-a no network lan, "
        "no pool fast, anti-affinity group db: 1 member there, host-b not the pinned host "
        "host-a, no network lan, no pool fast)",
    ),
    (
        "no-fit-many-hosts-grouped-by-filter",
        [host(f"h{i}", maintenance=True) for i in range(5)]
        + [host(f"m{i}", mem_gi=1) for i in range(3)],
        vm("big", cpus=0.5, mem_gi=8),
        [],
        {},
        "No host has 500m CPU and 8Gi memory free (8 hosts filtered: 5 Maintenance "
        "(e.g. h0 maintenance), 3 Memory (e.g. m0 memory 1Gi free))",
    ),
    (
        "no-hosts-known",
        [],
        vm("v", cpus=4, mem_gi=0.5),
        [],
        {},
        "No host has 4 CPUs and 512Mi memory free (no hosts known)",
    ),
]


@pytest.mark.parametrize(
    ("hosts", "request_", "groups", "placements", "message"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_messages(hosts, request_, groups, placements, message):
    assert (
        schedule_vm(
            request_, hosts, policy(weights=[{"name": "Spread"}]), groups, placements
        ).message
        == message
    )
