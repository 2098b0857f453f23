"""HA admission control (N+1): which HA VMs would restart where after any one host's loss."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from test_scheduler_fixtures import anti, host, policy, together, vm, with_allocations

from controller.ha import HostHealth, HostState, plan_ha_restarts
from controller.plan.model import PolicyContext
from controller.scheduler.admission import (
    CANNOT_RESTART_ELSEWHERE,
    HOST_LOSS_STRANDS_VMS,
    TOLERATES_HOST_LOSS,
    HAAdmission,
    admission_message,
    assess_ha_admission,
    what_if_down,
)
from controller.scheduler.model import HostView, VMRequest
from schemas.affinity import AffinityGroup


def fleet(
    hosts: list[HostView], placed: list[tuple[VMRequest, str]]
) -> tuple[list[HostView], dict[str, list[VMRequest]]]:
    """Return the hosts with the placed VMs allocated, and the VMs on each host."""
    by_host: dict[str, list[VMRequest]] = {}
    for request, where in placed:
        by_host.setdefault(where, []).append(request)
    views = with_allocations(hosts, [v for v, _ in placed], {v.name: h for v, h in placed})
    return views, by_host


def summary(admission: HAAdmission) -> dict[str, Any]:
    """The verdict, and per loss: restarts (VM, target), stranded (VM, reason, why), lost."""
    return {
        "tolerates": admission.tolerates_one_host_loss,
        "worst": admission.worst_host,
        "message": admission.message,
        "losses": {
            o.hosts_down[0]: {
                "restarts": [(d.vm, d.target) for d in o.restarts],
                "stranded": [
                    (d.vm, d.reason, d.placement.message if d.placement else d.message)
                    for d in o.stranded
                ],
                "lost": list(o.lost),
            }
            for o in admission.per_host
        },
    }


def loss(
    restarts: list[tuple[str, str]] | None = None,
    stranded: list[tuple[str, str, str]] | None = None,
    lost: list[str] | None = None,
) -> dict[str, Any]:
    return {"restarts": restarts or [], "stranded": stranded or [], "lost": lost or []}


@dataclass(frozen=True)
class Case:
    hosts: list[HostView]
    placed: list[tuple[VMRequest, str]]
    expected: dict[str, Any]
    groups: list[AffinityGroup] = field(default_factory=list)
    pol: PolicyContext = field(default_factory=policy)


def filled(count: int) -> list[tuple[VMRequest, str]]:
    """`count` HA VMs of 1 CPU / 1Gi, dealt round-robin over hosts a, b, c."""
    return [(vm(f"vm-{i:02d}", ha=True), "abc"[i % 3]) for i in range(count)]


THREE_SMALL = [host(name, cpus=32, mem_gi=8) for name in "abc"]
FULL = "No host has 1 CPU and 1Gi memory free"

CASES = {
    "all-fit": Case(
        [host("a", mem_gi=8), host("b", mem_gi=8), host("c", mem_gi=8)],
        [
            (vm("web-1", mem_gi=2, ha=True), "a"),
            (vm("web-2", mem_gi=2, ha=True), "b"),
            (vm("db-1", mem_gi=4, ha=True, ha_priority=90), "c"),
            (vm("batch-1", mem_gi=2), "c"),
        ],
        {
            "tolerates": True,
            "worst": None,
            "message": "Tolerates the loss of any one host (3 hosts up)",
            "losses": {
                "a": loss([("web-1", "b")]),
                "b": loss([("web-2", "a")]),
                "c": loss([("db-1", "a")], lost=["batch-1"]),
            },
        },
    ),
    "one-big-host-strands-its-vms": Case(
        [host("big", mem_gi=64), host("b", mem_gi=16), host("c", mem_gi=16)],
        [
            *((vm(f"db-{i}", mem_gi=8, ha=True, ha_priority=50), "big") for i in range(1, 5)),
            (vm("batch", mem_gi=4), "big"),
            (vm("web-1", mem_gi=8, ha=True), "b"),
            (vm("web-2", mem_gi=8, ha=True), "c"),
        ],
        {
            "tolerates": False,
            "worst": "big",
            "message": (
                "Losing big would leave db-3, db-4 without a host; db-3: No host has 1 CPU "
                "and 8Gi memory free (3 hosts filtered: b memory full, big lost, c memory full)"
            ),
            "losses": {
                "b": loss([("web-1", "big")]),
                "big": loss(
                    [("db-1", "b"), ("db-2", "c")],
                    [
                        (
                            f"db-{i}",
                            "NoHostForRestart",
                            "No host has 1 CPU and 8Gi memory free (3 hosts filtered: "
                            "b memory full, big lost, c memory full)",
                        )
                        for i in (3, 4)
                    ],
                    ["batch"],
                ),
                "c": loss([("web-2", "big")]),
            },
        },
    ),
    "hard-anti-affinity-leaves-no-host": Case(
        [host("a"), host("b"), host("c")],
        [(vm("db-1", ha=True), "a"), (vm("db-2", ha=True), "b"), (vm("db-3", ha=True), "c")],
        {
            "tolerates": False,
            "worst": "a",
            "message": (
                "Losing a would leave db-1 without a host; db-1: No host has 1 CPU and 1Gi "
                "memory free allowed by its affinity groups (3 hosts filtered: a lost, b "
                "anti-affinity group db: 1 member there, c anti-affinity group db: 1 member "
                "there); losing 2 other hosts would strand HA VMs too"
            ),
            "losses": {
                lost_host: loss(
                    stranded=[
                        (
                            f"db-{n}",
                            "NoHostForRestart",
                            "No host has 1 CPU and 1Gi memory free allowed by its affinity "
                            "groups (3 hosts filtered: "
                            + ", ".join(
                                f"{h} lost"
                                if h == lost_host
                                else f"{h} anti-affinity group db: 1 member there"
                                for h in "abc"
                            )
                            + ")",
                        )
                    ]
                )
                for n, lost_host in enumerate("abc", 1)
            },
        },
        groups=[anti("db", ["db-1", "db-2", "db-3"])],
    ),
    "maintenance-host-is-no-target": Case(
        [host("a", mem_gi=8), host("b", mem_gi=8), host("m", mem_gi=64, maintenance=True)],
        [(vm("web-1", mem_gi=6, ha=True), "a"), (vm("web-2", mem_gi=6, ha=True), "b")],
        {
            "tolerates": False,
            "worst": "a",
            "message": (
                "Losing a would leave web-1 without a host; web-1: No host has 1 CPU and 6Gi "
                "memory free (3 hosts filtered: a lost, b memory 2Gi free, m maintenance); "
                "losing 1 other host would strand HA VMs too"
            ),
            "losses": {
                lost_host: loss(
                    stranded=[
                        (
                            f"web-{n}",
                            "NoHostForRestart",
                            "No host has 1 CPU and 6Gi memory free (3 hosts filtered: "
                            + (
                                "a lost, b memory 2Gi free"
                                if n == 1
                                else "a memory 2Gi free, b lost"
                            )
                            + ", m maintenance)",
                        )
                    ]
                )
                for n, lost_host in enumerate("ab", 1)
            }
            | {"m": loss()},
        },
    ),
    "maintenance-host-is-no-target-even-without-its-filter": Case(
        [host("a", mem_gi=8), host("m", mem_gi=64, maintenance=True)],
        [(vm("web-1", mem_gi=6, ha=True), "a")],
        {
            "tolerates": False,
            "worst": "a",
            "message": (
                "Losing a would leave web-1 without a host; web-1: No host has 1 CPU and 6Gi "
                "memory free (2 hosts filtered: a lost, m maintenance)"
            ),
            "losses": {
                "a": loss(
                    stranded=[
                        (
                            "web-1",
                            "NoHostForRestart",
                            "No host has 1 CPU and 6Gi memory free (2 hosts filtered: a lost, "
                            "m maintenance)",
                        )
                    ]
                ),
                "m": loss(),
            },
        },
        pol=policy(filters=["CPU", "Memory"]),
    ),
    "host-not-up-is-neither-lost-nor-target": Case(
        [host("a", mem_gi=8), host("down", mem_gi=64, healthy=False, health_reason="silent")],
        [(vm("web-1", mem_gi=4, ha=True), "a"), (vm("db-1", ha=True), "down")],
        {
            "tolerates": False,
            "worst": "a",
            "message": (
                "Losing a would leave web-1 without a host; web-1: No host has 1 CPU and 4Gi "
                "memory free (2 hosts filtered: a lost, down unhealthy (silent))"
            ),
            "losses": {
                "a": loss(
                    stranded=[
                        (
                            "web-1",
                            "NoHostForRestart",
                            "No host has 1 CPU and 4Gi memory free (2 hosts filtered: a lost, "
                            "down unhealthy (silent))",
                        )
                    ]
                )
            },
        },
    ),
    "priority-beats-name-order": Case(
        [host("a", mem_gi=16), host("b", mem_gi=8)],
        [
            (vm("alpha", mem_gi=4, ha=True, ha_priority=10), "a"),
            (vm("zulu", mem_gi=4, ha=True, ha_priority=90), "a"),
            (vm("mid", mem_gi=4, ha=True, ha_priority=50), "a"),
            (vm("web", mem_gi=4, ha=True), "b"),
        ],
        {
            "tolerates": False,
            "worst": "a",
            "message": (
                "Losing a would leave mid, alpha without a host; mid: No host has 1 CPU and "
                "4Gi memory free (2 hosts filtered: a lost, b memory full)"
            ),
            "losses": {
                "a": loss(
                    [("zulu", "b")],
                    [
                        (
                            name,
                            "NoHostForRestart",
                            "No host has 1 CPU and 4Gi memory free (2 hosts filtered: a lost, "
                            "b memory full)",
                        )
                        for name in ("mid", "alpha")
                    ],
                ),
                "b": loss([("web", "a")]),
            },
        },
    ),
    "three-hosts-15-vms-fit": Case(
        THREE_SMALL,
        filled(15),
        {
            "tolerates": True,
            "worst": None,
            "message": "Tolerates the loss of any one host (3 hosts up)",
            "losses": {
                "a": loss([(f"vm-{i:02d}", "bcbcb"[k]) for k, i in enumerate(range(0, 15, 3))]),
                "b": loss([(f"vm-{i:02d}", "acaca"[k]) for k, i in enumerate(range(1, 15, 3))]),
                "c": loss([(f"vm-{i:02d}", "ababa"[k]) for k, i in enumerate(range(2, 15, 3))]),
            },
        },
    ),
    "three-hosts-16-vms-still-fit": Case(
        THREE_SMALL,
        filled(16),
        {
            "tolerates": True,
            "worst": None,
            "message": "Tolerates the loss of any one host (3 hosts up)",
            "losses": {
                "a": loss([(f"vm-{i:02d}", "bcbcbc"[k]) for k, i in enumerate(range(0, 16, 3))]),
                "b": loss([(f"vm-{i:02d}", "cacac"[k]) for k, i in enumerate(range(1, 16, 3))]),
                "c": loss([(f"vm-{i:02d}", "babab"[k]) for k, i in enumerate(range(2, 16, 3))]),
            },
        },
    ),
    "three-hosts-17th-vm-would-not-survive-a-loss": Case(
        THREE_SMALL,
        filled(17),
        {
            "tolerates": False,
            "worst": "a",
            "message": (
                f"Losing a would leave vm-15 without a host; vm-15: {FULL} (3 hosts filtered: "
                "a lost, b memory full, c memory full); losing 2 other hosts would strand HA "
                "VMs too"
            ),
            "losses": {
                "a": loss(
                    [(f"vm-{i:02d}", "cbcbc"[k]) for k, i in enumerate(range(0, 13, 3))],
                    [
                        (
                            "vm-15",
                            "NoHostForRestart",
                            f"{FULL} (3 hosts filtered: a lost, b memory full, c memory full)",
                        )
                    ],
                ),
                "b": loss(
                    [(f"vm-{i:02d}", "cacac"[k]) for k, i in enumerate(range(1, 14, 3))],
                    [
                        (
                            "vm-16",
                            "NoHostForRestart",
                            f"{FULL} (3 hosts filtered: a memory full, b lost, c memory full)",
                        )
                    ],
                ),
                "c": loss(
                    [(f"vm-{i:02d}", "abab"[k]) for k, i in enumerate(range(2, 12, 3))],
                    [
                        (
                            "vm-14",
                            "NoHostForRestart",
                            f"{FULL} (3 hosts filtered: a memory full, b memory full, c lost)",
                        )
                    ],
                ),
            },
        },
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_admission(case: Case) -> None:
    views, by_host = fleet(case.hosts, case.placed)
    admission = assess_ha_admission(views, by_host, case.pol, case.groups)
    assert summary(admission) == case.expected
    assert admission.reason == (
        TOLERATES_HOST_LOSS if case.expected["tolerates"] else HOST_LOSS_STRANDS_VMS
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_verdict_only_gives_the_same_verdict(case: Case) -> None:
    """targets=False may leave restart targets out, never change what is stranded or lost."""
    views, by_host = fleet(case.hosts, case.placed)
    fast = summary(assess_ha_admission(views, by_host, case.pol, case.groups, targets=False))
    for outcome in [*fast["losses"].values(), *case.expected["losses"].values()]:
        outcome["restarts"] = [vm_name for vm_name, _ in outcome["restarts"]]
    assert fast == case.expected


def test_what_if_two_hosts_down_share_the_survivor_by_priority() -> None:
    views, by_host = fleet(
        [host("a", mem_gi=8), host("b", mem_gi=8), host("c", mem_gi=8)],
        [
            (vm("web-1", mem_gi=3, ha=True, ha_priority=10), "a"),
            (vm("batch", mem_gi=1), "a"),
            (vm("db-1", mem_gi=3, ha=True, ha_priority=90), "b"),
            (vm("web-2", mem_gi=3, ha=True, ha_priority=10), "b"),
            (vm("web-3", mem_gi=3, ha=True), "c"),
        ],
    )
    outcome = what_if_down({"b", "a"}, views, by_host, policy())
    assert outcome.hosts_down == ("a", "b")
    assert [(d.vm, d.host, d.target) for d in outcome.restarts] == [("db-1", "b", "c")]
    assert [(d.vm, d.host, d.reason) for d in outcome.stranded] == [
        ("web-1", "a", "NoHostForRestart"),
        ("web-2", "b", "NoHostForRestart"),
    ]
    assert outcome.lost == ("batch",)
    assert outcome.message == (
        "Losing a, b would leave web-1, web-2 without a host; web-1: No host has 1 CPU and 3Gi "
        "memory free (3 hosts filtered: a lost, b lost, c memory 2Gi free)"
    )
    assert outcome.restarts[0].message == (
        "Would restart HA VirtualMachine db-1 (priority 90) from b on c: Placed on c "
        "(score 0.25; 2 hosts filtered)"
    )


def test_what_if_an_unknown_host_is_an_error() -> None:
    views, by_host = fleet([host("a")], [(vm("web", ha=True), "a")])
    with pytest.raises(ValueError, match="hosts_down: 'nope' is not one of the scheduler's hosts"):
        what_if_down({"nope"}, views, by_host, policy())


def test_a_vm_that_cannot_restart_elsewhere_is_stranded_with_why() -> None:
    views, by_host = fleet(
        [host("a"), host("b")],
        [(vm("db", ha=True, ha_priority=5), "a"), (vm("web", ha=True), "a")],
    )
    admission = assess_ha_admission(
        views,
        by_host,
        policy(),
        unrestartable={"db": "its volumes db-data are on host-local pools of a"},
    )
    outcome = admission.outcome("a")
    assert outcome is not None
    assert [(d.vm, d.target) for d in outcome.restarts] == [("web", "b")]
    assert [(d.vm, d.reason, d.message) for d in outcome.stranded] == [
        (
            "db",
            CANNOT_RESTART_ELSEWHERE,
            "HA VirtualMachine db of a cannot restart elsewhere: its volumes db-data are on "
            "host-local pools of a",
        )
    ]
    assert admission.message == (
        "Losing a would leave db without a host; db: its volumes db-data are on host-local "
        "pools of a"
    )


def test_the_shared_pass_is_left_as_it_was_found() -> None:
    """Each loss is rolled back: a host's loss gives the same answer in any order."""
    views, by_host = fleet(THREE_SMALL, filled(16))
    first = what_if_down({"c"}, views, by_host, policy())
    assert assess_ha_admission(views, by_host, policy()).outcome("c") == first


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ([], "Tolerates the loss of any one host (0 hosts up)"),
        ([("a", 0, "fine")], "Tolerates the loss of any one host (1 host up)"),
        ([("b", 2, "b strands 2"), ("a", 2, "a strands 2")], "a strands 2; losing 1 other host "
         "would strand HA VMs too"),
        ([("a", 1, "a strands 1"), ("z", 3, "z strands 3")], "z strands 3; losing 1 other host "
         "would strand HA VMs too"),
    ],
    ids=["no-host", "nothing-stranded", "tie-goes-to-first-name", "most-stranded-first"],
)  # fmt: skip
def test_admission_message(losses: list[tuple[str, int, str]], expected: str) -> None:
    assert admission_message(len(losses), losses) == expected


def random_fleet(rng: random.Random) -> tuple[list[HostView], dict, list, PolicyContext]:
    hosts = [
        host(
            f"h{i}",
            cpus=rng.choice([4, 8]),
            mem_gi=rng.choice([4, 8, 16]),
            maintenance=rng.random() < 0.1,
            labels={"zone": rng.choice("ab")},
        )
        for i in range(rng.randint(2, 6))
    ]
    placed = [
        (
            vm(
                f"v{j:02d}",
                cpus=rng.choice([1, 2]),
                mem_gi=rng.choice([1, 2, 4]),
                ha=rng.random() < 0.6,
                ha_priority=rng.choice([0, 50]),
                selector={"matchLabels": {"zone": "a"}} if rng.random() < 0.1 else None,
            ),
            rng.choice(hosts).name,
        )
        for j in range(rng.randint(1, 14))
    ]
    names = [v.name for v, _ in placed]
    groups = []
    if rng.random() < 0.5:
        groups.append(anti("spread", names[:4]))
    if rng.random() < 0.2:
        groups.append(together("pair", names[-3:]))
    views, by_host = fleet(hosts, placed)
    return views, by_host, groups, policy() if rng.random() < 0.8 else policy(filters=["CPU"])


def test_each_loss_restarts_as_plan_ha_restarts_would() -> None:
    """The simulation is the real HA restart: equal targets, equal stranded VMs."""
    rng = random.Random(5)
    for _ in range(150):
        views, by_host, groups, pol = random_fleet(rng)
        if any(v.maintenance for v in views) or len(pol.default.filters) == 1:
            continue  # plan_ha_restarts lets a policy without that filter target them
        admission = assess_ha_admission(views, by_host, pol, groups)
        for outcome in admission.per_host:
            (lost,) = outcome.hosts_down
            failed = {lost: HostHealth(lost, HostState.FAILED, True, "LeaseExpired", "")}
            placements = {v.name: h for h, vms in by_host.items() for v in vms}
            real = plan_ha_restarts(failed, by_host, views, pol, groups, placements)
            assert [(d.vm, d.target) for d in outcome.restarts] == [
                (d.vm, d.target) for d in real.restarts
            ]
            assert [d.vm for d in outcome.stranded] == [
                d.vm for d in real.decisions if d.reason == "NoHostForRestart"
            ]


def test_verdict_only_matches_full_simulation_on_random_fleets() -> None:
    rng = random.Random(9)
    for _ in range(300):
        views, by_host, groups, pol = random_fleet(rng)
        full = assess_ha_admission(views, by_host, pol, groups)
        fast = assess_ha_admission(views, by_host, pol, groups, targets=False)
        assert (fast.tolerates_one_host_loss, fast.worst_host, fast.message) == (
            full.tolerates_one_host_loss,
            full.worst_host,
            full.message,
        )
        for a, b in zip(full.per_host, fast.per_host, strict=True):
            assert [d.vm for d in a.restarts] == [d.vm for d in b.restarts]
            assert a.stranded == b.stranded and a.lost == b.lost
