"""Filters: each hard constraint, its parameters, and the reason kept for every host."""

from __future__ import annotations

import pytest
from test_scheduler_fixtures import host, policy, reasons, vm

from controller.scheduler import NO_HOST_FITS, SCHEDULED, schedule_vm

ALL_BUT = {
    name: [
        f
        for f in (
            "Maintenance",
            "HostHealth",
            "HostSelector",
            "CPU",
            "Memory",
            "Network",
            "Storage",
            "Affinity",
        )
        if f != name
    ]
    for name in ("Maintenance", "Memory", "CPU", "HostSelector", "Network", "HostHealth")
}

ROWS = [
    # id, hosts, vm, policy, chosen host, {host: "fits" | reason}
    ("one-host-fits", [host("a")], vm("v"), policy(), "a", {"a": "fits"}),
    (
        "maintenance-filtered",
        [host("a", maintenance=True), host("b")],
        vm("v"),
        policy(),
        "b",
        {"a": "maintenance", "b": "fits"},
    ),
    (
        "unhealthy-with-reason",
        [host("a", healthy=False, health_reason="agent unreachable"), host("b")],
        vm("v"),
        policy(),
        "b",
        {"a": "unhealthy (agent unreachable)", "b": "fits"},
    ),
    (
        "unhealthy-without-reason",
        [host("a", healthy=False)],
        vm("v"),
        policy(),
        None,
        {"a": "unhealthy"},
    ),
    (
        "selector-match-labels",
        [host("a", labels={"zone": "b"}), host("b", labels={"zone": "a"})],
        vm("v", selector={"matchLabels": {"zone": "a"}}),
        policy(),
        "b",
        {"a": "label zone=b", "b": "fits"},
    ),
    (
        "selector-label-missing",
        [host("a"), host("b", labels={"zone": "a"})],
        vm("v", selector={"matchLabels": {"zone": "a"}}),
        policy(),
        "b",
        {"a": "label no zone", "b": "fits"},
    ),
    (
        "selector-in-expression",
        [host("a", labels={"tier": "db"}), host("b", labels={"tier": "web"})],
        vm(
            "v",
            selector={
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "cache"]}]
            },
        ),
        policy(),
        "b",
        {"a": "label tier=db", "b": "fits"},
    ),
    (
        "selector-notin-expression",
        [host("a", labels={"tier": "db"}), host("b")],
        vm(
            "v",
            selector={"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["db"]}]},
        ),
        policy(),
        "b",
        {"a": "label tier=db", "b": "fits"},
    ),
    (
        "selector-exists",
        [host("a"), host("b", labels={"gpu": "yes"})],
        vm("v", selector={"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}),
        policy(),
        "b",
        {"a": "label no gpu", "b": "fits"},
    ),
    (
        "selector-does-not-exist",
        [host("a", labels={"old": "1"}), host("b")],
        vm("v", selector={"matchExpressions": [{"key": "old", "operator": "DoesNotExist"}]}),
        policy(),
        "b",
        {"a": "label old=1", "b": "fits"},
    ),
    (
        "pinned-host-wins-over-emptier",
        [host("a", used_gi=20), host("b")],
        vm("v", pinned_host="a"),
        policy(),
        "a",
        {"a": "fits", "b": "not the pinned host a"},
    ),
    (
        "pinned-to-unknown-host",
        [host("a"), host("b")],
        vm("v", pinned_host="zz"),
        policy(),
        None,
        {"a": "not the pinned host zz", "b": "not the pinned host zz"},
    ),
    (
        "pinned-and-selector-disagree",
        [host("a", labels={"zone": "b"})],
        vm("v", pinned_host="a", selector={"matchLabels": {"zone": "a"}}),
        policy(),
        None,
        {"a": "label zone=b"},
    ),
    (
        "cpu-overcommit-4x-exact-fit",
        [host("a", cpus=2, used_cpus=7)],
        vm("v", cpus=1),
        policy(),
        "a",
        {"a": "fits"},
    ),
    (
        "cpu-overcommit-4x-exceeded",
        [host("a", cpus=2, used_cpus=7.5)],
        vm("v", cpus=1),
        policy(),
        None,
        {"a": "CPU 500m free"},
    ),
    (
        "cpu-ratio-1-no-overcommit",
        [host("a", cpus=4, used_cpus=3.5), host("b", cpus=4, used_cpus=2)],
        vm("v", cpus=1),
        policy(overcommit={"cpuRatio": 1.0}),
        "b",
        {"a": "CPU 500m free", "b": "fits"},
    ),
    (
        "cpu-ratio-1.5",
        [host("a", cpus=4, used_cpus=5)],
        vm("v", cpus=1),
        policy(overcommit={"cpuRatio": 1.5}),
        "a",
        {"a": "fits"},
    ),
    (
        "cpu-reserved-counts",
        [host("a", cpus=4, reserved_cpu_milli=2000, used_cpus=1.5)],
        vm("v", cpus=1),
        policy(overcommit={"cpuRatio": 1.0}),
        None,
        {"a": "CPU 500m free"},
    ),
    (
        "cpu-full",
        [host("a", cpus=1, used_cpus=4)],
        vm("v", cpus=1),
        policy(),
        None,
        {"a": "CPU full"},
    ),
    (
        "memory-exact-fit",
        [host("a", mem_gi=8, used_gi=7)],
        vm("v", mem_gi=1),
        policy(),
        "a",
        {"a": "fits"},
    ),
    (
        "memory-short",
        [host("a", mem_gi=8, used_gi=7.5)],
        vm("v", mem_gi=1),
        policy(),
        None,
        {"a": "memory 512Mi free"},
    ),
    (
        "memory-reserved-counts",
        [host("a", mem_gi=8, reserved_memory=4 * 2**30, used_gi=2)],
        vm("v", mem_gi=4),
        policy(),
        None,
        {"a": "memory 2Gi free"},
    ),
    (
        "memory-overcommit-1.5",
        [host("a", mem_gi=8, used_gi=10)],
        vm("v", mem_gi=2),
        policy(overcommit={"memoryRatio": 1.5}),
        "a",
        {"a": "fits"},
    ),
    (
        "memory-no-overcommit-by-default",
        [host("a", mem_gi=8, used_gi=8)],
        vm("v", mem_gi=2),
        policy(),
        None,
        {"a": "memory full"},
    ),
    (
        "network-missing",
        [host("a", networks=frozenset({"lan"})), host("b", networks=frozenset({"lan", "dmz"}))],
        vm("v", networks=frozenset({"lan", "dmz"})),
        policy(),
        "b",
        {"a": "no network dmz", "b": "fits"},
    ),
    (
        "storage-pool-missing",
        [host("a", pools=frozenset({"p1"})), host("b", pools=frozenset({"p1", "p2"}))],
        vm("v", pools=frozenset({"p1", "p2"})),
        policy(),
        "b",
        {"a": "no pool p2", "b": "fits"},
    ),
    (
        "no-networks-needed-fits-bare-host",
        [host("a")],
        vm("v"),
        policy(),
        "a",
        {"a": "fits"},
    ),
    (
        "every-failed-filter-listed",
        [host("a", mem_gi=2, maintenance=True, labels={"zone": "b"})],
        vm("v", mem_gi=4, selector={"matchLabels": {"zone": "a"}}),
        policy(),
        None,
        {"a": "maintenance, label zone=b, memory 2Gi free"},
    ),
    (
        "maintenance-filter-off",
        [host("a", maintenance=True)],
        vm("v"),
        policy(filters=ALL_BUT["Maintenance"]),
        "a",
        {"a": "fits"},
    ),
    (
        "memory-filter-off",
        [host("a", mem_gi=1)],
        vm("v", mem_gi=64),
        policy(filters=ALL_BUT["Memory"]),
        "a",
        {"a": "fits"},
    ),
    (
        "selector-filter-off",
        [host("a", labels={"zone": "b"})],
        vm("v", selector={"matchLabels": {"zone": "a"}}),
        policy(filters=ALL_BUT["HostSelector"]),
        "a",
        {"a": "fits"},
    ),
    (
        "network-filter-off",
        [host("a")],
        vm("v", networks=frozenset({"lan"})),
        policy(filters=ALL_BUT["Network"]),
        "a",
        {"a": "fits"},
    ),
    (
        "health-filter-off",
        [host("a", healthy=False)],
        vm("v"),
        policy(filters=ALL_BUT["HostHealth"]),
        "a",
        {"a": "fits"},
    ),
    (
        "per-host-policy-overcommit",
        [host("a", cpus=2, used_cpus=2), host("b", cpus=2, used_cpus=3)],
        vm("v", cpus=1),
        policy(by_host={"a": {"overcommit": {"cpuRatio": 1.0}}}),
        "b",
        {"a": "CPU full", "b": "fits"},
    ),
    (
        "per-host-policy-filters",
        [host("a", maintenance=True), host("b", maintenance=True)],
        vm("v"),
        policy(by_host={"b": {"filters": ALL_BUT["Maintenance"]}}),
        "b",
        {"a": "maintenance", "b": "fits"},
    ),
    ("no-hosts", [], vm("v"), policy(), None, {}),
]


@pytest.mark.parametrize(
    ("hosts", "request_", "pol", "chosen", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_filters(hosts, request_, pol, chosen, expected):
    placement = schedule_vm(request_, hosts, pol)
    assert placement.host == chosen
    assert placement.reason == (SCHEDULED if chosen else NO_HOST_FITS)
    assert reasons(placement) == expected


def test_verdicts_are_in_host_name_order_and_complete():
    hosts = [host("c"), host("a", maintenance=True), host("b")]
    placement = schedule_vm(vm("v"), hosts, policy())
    assert [v.host for v in placement.verdicts] == ["a", "b", "c"]
    assert len(placement.verdicts) == 3
    assert placement.verdicts[1].fits and placement.verdicts[1].score is not None
    assert placement.verdicts[0].score is None


def test_verdicts_snapshot_is_not_changed_by_later_placements():
    from controller.scheduler import SchedulingPass

    session = SchedulingPass([host("a", mem_gi=2)], policy())
    first = session.place(vm("v1", mem_gi=2))
    second = session.place(vm("v2", mem_gi=1))
    assert first.host == "a" and second.host is None
    assert reasons(first) == {"a": "fits"}
    assert reasons(second) == {"a": "memory full"}


def test_duplicate_host_names_are_rejected_naming_the_host():
    with pytest.raises(ValueError, match="hosts: host names must be unique, got a twice"):
        schedule_vm(vm("v"), [host("a"), host("a")], policy())
