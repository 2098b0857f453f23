"""Hard affinity: VM-VM and VM-host, positive and negative, resolved by name or selector."""

from __future__ import annotations

import pytest
from test_scheduler_fixtures import anti, group, host, policy, reasons, together, vm

from controller.scheduler import AffinityIndex, schedule_many, schedule_vm

THREE = [host("a"), host("b"), host("c")]
ALL_BUT_AFFINITY = [
    "Maintenance",
    "HostHealth",
    "HostSelector",
    "CPU",
    "Memory",
    "Network",
    "Storage",
]

ROWS = [
    # id, hosts, vm, groups, placements, vm_labels, chosen, {host: reason|"fits"}
    (
        "anti-affinity-avoids-member-host",
        THREE,
        vm("db-2"),
        [anti("db-apart", ["db-1", "db-2"])],
        {"db-1": "a"},
        None,
        "b",
        {"a": "anti-affinity group db-apart: 1 member there", "b": "fits", "c": "fits"},
    ),
    (
        "anti-affinity-no-host-left",
        [host("a"), host("b")],
        vm("db-3"),
        [anti("db-apart", ["db-1", "db-2", "db-3"])],
        {"db-1": "a", "db-2": "b"},
        None,
        None,
        {
            "a": "anti-affinity group db-apart: 1 member there",
            "b": "anti-affinity group db-apart: 1 member there",
        },
    ),
    (
        "anti-affinity-ignores-non-members",
        [host("a"), host("b", used_gi=8)],
        vm("db-2"),
        [anti("db-apart", ["db-1", "db-2"])],
        {"web-1": "a"},
        None,
        "a",
        {"a": "fits", "b": "fits"},
    ),
    (
        "anti-affinity-vm-is-not-its-own-partner",
        [host("a"), host("b", used_gi=8)],
        vm("db-1"),
        [anti("db-apart", ["db-1", "db-2"])],
        {"db-1": "a"},
        None,
        "a",
        {"a": "fits", "b": "fits"},
    ),
    (
        "affinity-joins-member-host",
        [host("a"), host("b", used_gi=16)],
        vm("app-2"),
        [together("app", ["app-1", "app-2"])],
        {"app-1": "b"},
        None,
        "b",
        {"a": "affinity group app: its members run on b", "b": "fits"},
    ),
    (
        "affinity-joins-majority-host",
        THREE,
        vm("app-4"),
        [together("app", ["app-1", "app-2", "app-3", "app-4"])],
        {"app-1": "a", "app-2": "c", "app-3": "c"},
        None,
        "c",
        {
            "a": "affinity group app: its members run on c",
            "b": "affinity group app: its members run on c",
            "c": "fits",
        },
    ),
    (
        "affinity-majority-tie-goes-to-first-name",
        THREE,
        vm("app-3"),
        [together("app", ["app-1", "app-2", "app-3"])],
        {"app-1": "c", "app-2": "b"},
        None,
        "b",
        {
            "a": "affinity group app: its members run on b",
            "b": "fits",
            "c": "affinity group app: its members run on b",
        },
    ),
    (
        "affinity-no-member-placed-spreads",
        [host("a", used_gi=8), host("b")],
        vm("app-1"),
        [together("app", ["app-1", "app-2"])],
        {},
        None,
        "b",
        {"a": "fits", "b": "fits"},
    ),
    (
        "affinity-member-host-full",
        [host("a"), host("b", mem_gi=4, used_gi=4)],
        vm("app-2"),
        [together("app", ["app-1", "app-2"])],
        {"app-1": "b"},
        None,
        None,
        {"a": "affinity group app: its members run on b", "b": "memory full"},
    ),
    (
        "host-affinity-by-name",
        THREE,
        vm("v"),
        [group("g", vms=["v"], hosts=["c"], hostRule={"polarity": "positive"})],
        {},
        None,
        "c",
        {
            "a": "host affinity group g: not one of its hosts",
            "b": "host affinity group g: not one of its hosts",
            "c": "fits",
        },
    ),
    (
        "host-affinity-by-selector",
        [host("a"), host("b", labels={"ssd": "true"})],
        vm("v"),
        [
            group(
                "g",
                vms=["v"],
                hostSelector={"matchLabels": {"ssd": "true"}},
                hostRule={"polarity": "positive"},
            )
        ],
        {},
        None,
        "b",
        {"a": "host affinity group g: not one of its hosts", "b": "fits"},
    ),
    (
        "host-anti-affinity",
        [host("a"), host("b", used_gi=8)],
        vm("v"),
        [group("g", vms=["v"], hosts=["a"], hostRule={"polarity": "negative"})],
        {},
        None,
        "b",
        {"a": "host anti-affinity group g: one of its hosts", "b": "fits"},
    ),
    (
        "vm-selector-membership-via-labels",
        THREE,
        vm("web-2", labels={"app": "web"}),
        [group("web", vmSelector={"matchLabels": {"app": "web"}}, vmRule={"polarity": "negative"})],
        {"web-1": "a", "db-1": "b"},
        {"web-1": {"app": "web"}, "db-1": {"app": "db"}, "web-2": {"app": "web"}},
        "b",
        {"a": "anti-affinity group web: 1 member there", "b": "fits", "c": "fits"},
    ),
    (
        "vm-selector-expression-membership",
        [host("a"), host("b")],
        vm("x-2", labels={"tier": "front"}),
        [
            group(
                "g",
                vmSelector={
                    "matchExpressions": [
                        {"key": "tier", "operator": "In", "values": ["front", "edge"]}
                    ]
                },
                vmRule={"polarity": "negative"},
            )
        ],
        {"x-1": "a"},
        {"x-1": {"tier": "edge"}, "x-2": {"tier": "front"}},
        "b",
        {"a": "anti-affinity group g: 1 member there", "b": "fits"},
    ),
    (
        "two-groups-both-apply",
        THREE,
        vm("v"),
        [
            anti("g1", ["v", "w"]),
            group("g2", vms=["v"], hosts=["b"], hostRule={"polarity": "negative"}),
        ],
        {"w": "a"},
        None,
        "c",
        {
            "a": "anti-affinity group g1: 1 member there",
            "b": "host anti-affinity group g2: one of its hosts",
            "c": "fits",
        },
    ),
    (
        "affinity-filter-off-ignores-hard-rules",
        [host("a"), host("b", used_gi=8)],
        vm("db-2"),
        [anti("db-apart", ["db-1", "db-2"])],
        {"db-1": "a"},
        None,
        "a",
        {"a": "fits", "b": "fits"},
    ),
]


@pytest.mark.parametrize(
    ("hosts", "request_", "groups", "placements", "labels", "chosen", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_hard_affinity(hosts, request_, groups, placements, labels, chosen, expected, request):
    pol = policy(filters=ALL_BUT_AFFINITY) if "filter-off" in request.node.callspec.id else policy()
    placement = schedule_vm(request_, hosts, pol, groups, placements, labels)
    assert placement.host == chosen
    assert reasons(placement) == expected


def test_batch_anti_affinity_spreads_then_stalls():
    members = [f"db-{i}" for i in range(4)]
    placements = schedule_many([vm(m) for m in members], THREE, policy(), [anti("db", members)])
    assert [(p.vm, p.host) for p in placements] == [
        ("db-0", "a"),
        ("db-1", "b"),
        ("db-2", "c"),
        ("db-3", None),
    ]


def test_batch_affinity_lands_together():
    members = ["app-1", "app-2", "app-3"]
    placements = schedule_many(
        [vm(m) for m in members],
        [host("a", used_gi=8), host("b")],
        policy(),
        [together("app", members)],
    )
    assert [p.host for p in placements] == ["b", "b", "b"]


def test_prebuilt_index_resolves_selector_groups_once():
    labels = {f"web-{i}": {"app": "web"} for i in range(3)}
    index = AffinityIndex(
        [group("web", vmSelector={"matchLabels": {"app": "web"}}, vmRule={"polarity": "negative"})],
        labels,
    )
    placements = schedule_many(
        [vm(n, labels=lab) for n, lab in labels.items()], THREE, policy(), index
    )
    assert sorted(p.host for p in placements) == ["a", "b", "c"]
    assert index.members(0) == frozenset(labels)


def test_vm_unknown_to_index_is_resolved_by_its_labels():
    index = AffinityIndex(
        [group("web", vmSelector={"matchLabels": {"app": "web"}}, vmRule={"polarity": "negative"})],
        {"web-1": {"app": "web"}},
    )
    placement = schedule_vm(
        vm("web-9", labels={"app": "web"}), THREE, policy(), index, {"web-1": "a"}
    )
    assert placement.host == "b"
