"""Memory overcommit: where a host's policy balloons memory, the Memory filter and the
allocation tally count a VM's guaranteedMemory instead of its memory."""

from __future__ import annotations

import pytest
from fleet_sim import FleetSim, desired_of
from plan_fixtures import fleet as plan_fleet
from plan_fixtures import vm as plan_vm
from test_scheduler_fixtures import GI, host, policy, reasons, vm

from controller.plan import PolicyContext, plan
from controller.scheduler import schedule_many, schedule_vm
from controller.scheduler.model import counted_memory
from schemas.policy import SchedulingPolicySpec

BALLOON = {"memoryBalloon": {"enabled": True}}
OFF = {"memoryBalloon": {"enabled": False}}

ROWS = [
    # id, hosts, vm, policy, chosen host, {host: "fits" | reason}
    (
        "balloon-off-counts-memory",
        [host("a", used_gi=28)],
        vm("v", mem_gi=8, guaranteed_memory=2 * GI),
        policy(**OFF),
        None,
        {"a": "memory 4Gi free"},
    ),
    (
        "balloon-on-counts-guaranteed",
        [host("a", used_gi=28)],
        vm("v", mem_gi=8, guaranteed_memory=2 * GI),
        policy(**BALLOON),
        "a",
        {"a": "fits"},
    ),
    (
        "balloon-on-guaranteed-too-big",
        [host("a", used_gi=28)],
        vm("v", mem_gi=8, guaranteed_memory=6 * GI),
        policy(**BALLOON),
        None,
        {"a": "memory 4Gi free"},
    ),
    (
        "balloon-on-without-guaranteed-counts-memory",
        [host("a", used_gi=28)],
        vm("v", mem_gi=8),
        policy(**BALLOON),
        None,
        {"a": "memory 4Gi free"},
    ),
    (
        "balloon-only-on-one-host",
        [host("a", used_gi=28), host("b", used_gi=28)],
        vm("v", mem_gi=8, guaranteed_memory=2 * GI),
        policy(by_host={"b": BALLOON}),
        "b",
        {"a": "memory 4Gi free", "b": "fits"},
    ),
]


@pytest.mark.parametrize(
    ("hosts", "request_", "pol", "chosen", "expected"),
    [pytest.param(*row[1:], id=row[0]) for row in ROWS],
)
def test_memory_filter_counts_guaranteed_memory_where_ballooned(
    hosts, request_, pol, chosen, expected
) -> None:
    placement = schedule_vm(request_, hosts, pol)
    assert placement.host == chosen
    assert reasons(placement) == expected


@pytest.mark.parametrize(
    ("pol", "placed"),
    [
        pytest.param(policy(**OFF), ["v0", "v1"], id="balloon-off-two-fit"),
        pytest.param(policy(**BALLOON), ["v0", "v1", "v2", "v3"], id="balloon-on-four-fit"),
    ],
)
def test_the_tally_counts_guaranteed_memory_of_vms_placed_before(pol, placed) -> None:
    vms = [vm(f"v{i}", mem_gi=8, guaranteed_memory=4 * GI) for i in range(4)]
    result = schedule_many(vms, [host("a", mem_gi=16)], pol)
    assert [p.vm for p in result if p.host == "a"] == placed


def test_no_host_fits_message_names_the_guaranteed_memory() -> None:
    placement = schedule_vm(
        vm("v", mem_gi=8, guaranteed_memory=2 * GI), [host("a", used_gi=31)], policy(**BALLOON)
    )
    assert placement.message.startswith(
        "No host has 1 CPU and 8Gi (2Gi where memory is ballooned) memory free"
    ), placement.message


@pytest.mark.parametrize(
    ("request_", "ballooned", "counted"),
    [
        pytest.param(vm("v", mem_gi=8, guaranteed_memory=2 * GI), True, 2 * GI, id="on"),
        pytest.param(vm("v", mem_gi=8, guaranteed_memory=2 * GI), False, 8 * GI, id="off"),
        pytest.param(vm("v", mem_gi=8), True, 8 * GI, id="no-guarantee"),
        pytest.param(vm("v", mem_gi=8, guaranteed_memory=8 * GI), True, 8 * GI, id="equal"),
    ],
)
def test_counted_memory(request_, ballooned: bool, counted: int) -> None:
    assert counted_memory(request_, ballooned) == counted


@pytest.mark.parametrize(
    ("balloon", "defined"),
    [
        pytest.param(False, 2, id="balloon-off-memory-counts"),
        pytest.param(True, 4, id="balloon-on-guaranteed-counts"),
    ],
)
def test_the_planner_counts_guaranteed_memory_on_ballooning_hosts(
    balloon: bool, defined: int
) -> None:
    """Four VMs of 6Gi (guaranteed 3Gi) on one 16Gi host: two fit, or four when it balloons;
    VMs the plan places earlier count with what their host's policy says."""
    vms = [
        plan_vm(f"web-{i}", memory="6Gi", maxMemory="6Gi", guaranteedMemory="3Gi") for i in range(4)
    ]
    pol = PolicyContext(
        by_host={}, default=SchedulingPolicySpec.model_validate(BALLOON if balloon else OFF)
    )
    p = plan(desired_of(*plan_fleet(*vms)), FleetSim.of("host-a", memory_mib=16384).observed(), pol)
    assert sum(a.type.value == "DefineVM" for a in p.actions) == defined
