"""check_placement: the hard rules a running VM breaks where it is."""

from __future__ import annotations

import pytest
from test_scheduler_fixtures import anti, group, host, policy, together, vm

from controller.scheduler import check_placement

HOSTS = [
    host("a", labels={"zone": "a"}),
    host("b", labels={"zone": "b"}),
    host("m", maintenance=True),
]
NO_AFFINITY = ["Maintenance", "HostHealth", "HostSelector", "CPU", "Memory", "Network", "Storage"]
NO_SELECTOR = ["Maintenance", "HostHealth", "CPU", "Memory", "Network", "Storage", "Affinity"]

ROWS = [
    # id, vm, host, groups, placements, policy, violations
    ("clean", vm("v"), "a", [], {"v": "a"}, policy(), []),
    ("maintenance", vm("v"), "m", [], {"v": "m"}, policy(), ["host m is in maintenance"]),
    (
        "maintenance-even-with-filter-off",
        vm("v"),
        "m",
        [],
        {"v": "m"},
        policy(filters=NO_AFFINITY[1:]),
        ["host m is in maintenance"],
    ),
    (
        "pin-changed",
        vm("v", pinned_host="b"),
        "a",
        [],
        {"v": "a"},
        policy(),
        ["pinned to b, runs on a"],
    ),
    ("pin-kept", vm("v", pinned_host="a"), "a", [], {"v": "a"}, policy(), []),
    (
        "selector-mismatch",
        vm("v", selector={"matchLabels": {"zone": "b"}}),
        "a",
        [],
        {"v": "a"},
        policy(),
        ["host a does not match selector zone=b"],
    ),
    (
        "selector-filter-off",
        vm("v", selector={"matchLabels": {"zone": "b"}}),
        "a",
        [],
        {"v": "a"},
        policy(filters=NO_SELECTOR),
        [],
    ),
    ("unknown-host", vm("v"), "zz", [], {"v": "zz"}, policy(), ["host zz is not a known host"]),
    (
        "anti-affinity-later-name-moves",
        vm("db-2"),
        "a",
        [anti("db", ["db-1", "db-2"])],
        {"db-1": "a", "db-2": "a"},
        policy(),
        ["anti-affinity group db: db-1 runs on a"],
    ),
    (
        "anti-affinity-earlier-name-stays",
        vm("db-1"),
        "a",
        [anti("db", ["db-1", "db-2"])],
        {"db-1": "a", "db-2": "a"},
        policy(),
        [],
    ),
    (
        "anti-affinity-apart",
        vm("db-2"),
        "b",
        [anti("db", ["db-1", "db-2"])],
        {"db-1": "a", "db-2": "b"},
        policy(),
        [],
    ),
    (
        "soft-anti-affinity-is-not-a-violation",
        vm("db-2"),
        "a",
        [anti("db", ["db-1", "db-2"], "soft")],
        {"db-1": "a", "db-2": "a"},
        policy(),
        [],
    ),
    (
        "affinity-minority-moves",
        vm("app-1"),
        "a",
        [together("app", ["app-1", "app-2", "app-3"])],
        {"app-1": "a", "app-2": "b", "app-3": "b"},
        policy(),
        ["affinity group app: its members run on b"],
    ),
    (
        "affinity-majority-stays",
        vm("app-2"),
        "b",
        [together("app", ["app-1", "app-2", "app-3"])],
        {"app-1": "a", "app-2": "b", "app-3": "b"},
        policy(),
        [],
    ),
    (
        "affinity-tie-first-host-stays",
        vm("app-1"),
        "a",
        [together("app", ["app-1", "app-2"])],
        {"app-1": "a", "app-2": "b"},
        policy(),
        [],
    ),
    (
        "affinity-tie-second-host-moves",
        vm("app-2"),
        "b",
        [together("app", ["app-1", "app-2"])],
        {"app-1": "a", "app-2": "b"},
        policy(),
        ["affinity group app: its members run on a"],
    ),
    (
        "host-affinity-broken",
        vm("v"),
        "a",
        [group("g", vms=["v"], hosts=["b"], hostRule={"polarity": "positive"})],
        {"v": "a"},
        policy(),
        ["host affinity group g: a is not one of its hosts"],
    ),
    (
        "host-anti-affinity-broken",
        vm("v"),
        "a",
        [
            group(
                "g",
                vms=["v"],
                hostSelector={"matchLabels": {"zone": "a"}},
                hostRule={"polarity": "negative"},
            )
        ],
        {"v": "a"},
        policy(),
        ["host anti-affinity group g: a is one of its hosts"],
    ),
    (
        "affinity-filter-off",
        vm("db-2"),
        "a",
        [anti("db", ["db-1", "db-2"])],
        {"db-1": "a", "db-2": "a"},
        policy(filters=NO_AFFINITY),
        [],
    ),
    (
        "several-at-once",
        vm("v", pinned_host="a"),
        "m",
        [group("g", vms=["v"], hosts=["a"], hostRule={"polarity": "positive"})],
        {"v": "m"},
        policy(),
        [
            "host m is in maintenance",
            "pinned to a, runs on m",
            "host affinity group g: m is not one of its hosts",
        ],
    ),
]


@pytest.mark.parametrize(
    ("request_", "where", "groups", "placements", "pol", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_check_placement(request_, where, groups, placements, pol, expected):
    assert check_placement(request_, where, HOSTS, pol, groups, placements) == expected
