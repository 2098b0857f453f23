"""Weights: spread, pack and soft affinity, their factors and normalised scores."""

from __future__ import annotations

import pytest
from test_scheduler_fixtures import group, host, policy, vm

from controller.scheduler import schedule_vm

SPREAD = [{"name": "Spread"}]
PACK = [{"name": "Pack"}]

ROWS = [
    # id, hosts, vm, policy, placements, groups, chosen, {host: score}
    (
        "spread-prefers-least-allocated",
        [host("a", used_gi=16), host("b", used_gi=8), host("c", used_gi=24)],
        vm("v", cpus=0.001, mem_gi=0),
        policy(weights=SPREAD),
        {},
        [],
        "b",
        {"a": 0.5, "b": 0.75, "c": 0.25},
    ),
    (
        "spread-counts-the-vm-itself",
        [host("a", mem_gi=10, used_gi=4)],
        vm("v", cpus=0.001, mem_gi=1),
        policy(weights=SPREAD),
        {},
        [],
        "a",
        {"a": 0.5},
    ),
    (
        "spread-uses-dominant-resource",
        [
            host("a", cpus=4, used_cpus=12, mem_gi=32),  # CPU 75% of 16 allocatable
            host("b", cpus=4, mem_gi=32, used_gi=16),  # memory 50%
        ],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=SPREAD),
        {},
        [],
        "b",
        {"a": 0.25, "b": 0.5},
    ),
    (
        "pack-prefers-most-allocated",
        [host("a", used_gi=16), host("b", used_gi=8), host("c", used_gi=24)],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=PACK),
        {},
        [],
        "c",
        {"a": 0.5, "b": 0.25, "c": 0.75},
    ),
    (
        "pack-skips-host-that-no-longer-fits",
        [host("a", used_gi=16), host("b", used_gi=31)],
        vm("v", cpus=0, mem_gi=2),
        policy(weights=PACK),
        {},
        [],
        "a",
        {"a": 0.5625},
    ),
    (
        "tie-goes-to-first-name",
        [host("b"), host("a"), host("c")],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=SPREAD),
        {},
        [],
        "a",
        {"a": 1.0, "b": 1.0, "c": 1.0},
    ),
    (
        "spread-and-pack-equal-factors-cancel",
        [host("a", used_gi=16), host("b", used_gi=8)],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=[{"name": "Spread"}, {"name": "Pack"}]),
        {},
        [],
        "a",
        {"a": 0.5, "b": 0.5},
    ),
    (
        "spread-factor-3-pack-1",
        [host("a", used_gi=16), host("b", used_gi=8)],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=[{"name": "Spread", "factor": 3}, {"name": "Pack"}]),
        {},
        [],
        "b",
        {"a": 0.5, "b": 0.625},
    ),
    (
        "no-weights-all-zero-first-name",
        [host("b"), host("a", used_gi=30)],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=[]),
        {},
        [],
        "a",
        {"a": 0.0, "b": 0.0},
    ),
    (
        "soft-anti-affinity-outweighs-spread",
        [host("a"), host("b", used_gi=8)],
        vm("v", cpus=0, mem_gi=0),
        policy(),
        {"w1": "a"},
        [group("g", vms=["v", "w1"], vmRule={"polarity": "negative", "enforcement": "soft"})],
        "b",
        {"a": 1 / 6, "b": (0.75 + 5) / 6},
    ),
    (
        "soft-affinity-pulls-to-member-host",
        [host("a"), host("b", used_gi=16)],
        vm("v", cpus=0, mem_gi=0),
        policy(),
        {"w1": "b"},
        [group("g", vms=["v", "w1"], vmRule={"polarity": "positive", "enforcement": "soft"})],
        "b",
        {"a": 1 / 6, "b": (0.5 + 5) / 6},
    ),
    (
        "soft-affinity-share-of-members",
        [host("a"), host("b")],
        vm("v", cpus=0, mem_gi=0),
        policy(weights=[{"name": "SoftAffinity"}]),
        {"w1": "a", "w2": "b", "w3": "b", "w4": "b"},
        [
            group(
                "g",
                vms=["v", "w1", "w2", "w3", "w4"],
                vmRule={"polarity": "positive", "enforcement": "soft"},
            )
        ],
        "b",
        {"a": 0.25, "b": 0.75},
    ),
    (
        "soft-affinity-violated-when-member-host-is-full",
        [host("a"), host("b", mem_gi=4, used_gi=4)],
        vm("v", cpus=0, mem_gi=1),
        policy(),
        {"w1": "b"},
        [group("g", vms=["v", "w1"], vmRule={"polarity": "positive", "enforcement": "soft"})],
        "a",
        {"a": (1 - 1 / 32) / 6},
    ),
    (
        "soft-host-affinity-prefers-group-hosts",
        [host("a"), host("b", used_gi=16)],
        vm("v", cpus=0, mem_gi=0),
        policy(),
        {},
        [
            group(
                "g",
                vms=["v"],
                hosts=["b"],
                hostRule={"polarity": "positive", "enforcement": "soft"},
            )
        ],
        "b",
        {"a": 1 / 6, "b": 5.5 / 6},
    ),
    (
        "soft-host-anti-affinity-avoids-group-hosts",
        [host("a", used_gi=16), host("b")],
        vm("v", cpus=0, mem_gi=0),
        policy(),
        {},
        [
            group(
                "g",
                vms=["v"],
                hostSelector={"matchLabels": {"x": "y"}},
                hosts=["b"],
                hostRule={"polarity": "negative", "enforcement": "soft"},
            )
        ],
        "a",
        {"a": 5.5 / 6, "b": 1 / 6},
    ),
    (
        "soft-rule-without-placed-members-is-left-out",
        [host("a", used_gi=16), host("b")],
        vm("v", cpus=0, mem_gi=0),
        policy(),
        {},
        [group("g", vms=["v", "w1"], vmRule={"polarity": "negative", "enforcement": "soft"})],
        "b",
        {"a": 0.5, "b": 1.0},
    ),
    (
        "per-host-weights",
        [host("a", used_gi=24), host("b", used_gi=8)],
        vm("v", cpus=0, mem_gi=0),
        policy(by_host={"a": {"weights": PACK}}, weights=SPREAD),
        {},
        [],
        "a",
        {"a": 0.75, "b": 0.75},
    ),
]


@pytest.mark.parametrize(
    ("hosts", "request_", "pol", "placements", "groups", "chosen", "scores"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_weights(hosts, request_, pol, placements, groups, chosen, scores):
    placement = schedule_vm(request_, hosts, pol, groups, placements)
    assert placement.host == chosen
    got = {v.host: v.score for v in placement.verdicts if v.fits}
    assert got == pytest.approx(scores, abs=1e-4)
    assert all(0.0 <= s <= 1.0 for s in got.values())


def test_fitting_verdict_explains_its_score():
    placement = schedule_vm(
        vm("v", cpus=0, mem_gi=0),
        [host("a"), host("b", used_gi=8)],
        policy(),
        [group("g", vms=["v", "w1"], vmRule={"polarity": "negative", "enforcement": "soft"})],
        {"w1": "a"},
    )
    by_host = {v.host: v.reason for v in placement.verdicts}
    assert by_host == {
        "a": "score 0.17 (Spread 1.00x1, SoftAffinity 0.00x5)",
        "b": "score 0.96 (Spread 0.75x1, SoftAffinity 1.00x5)",
    }
