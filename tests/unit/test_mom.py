"""The MOM balloon policy: shrink under pressure, grow back with room, hold in between."""

from __future__ import annotations

import pytest

from agentapi import DomainSpec, DomainState, DomainStats, HostStats
from controller.mom import BalloonVM, balloon_vms, plan_balloons
from schemas.policy import MemoryBalloon
from schemas.vm import VirtualMachineSpec

GIB_KIB = 1024 * 1024
POLICY = MemoryBalloon(enabled=True, low_free_percent=10, high_free_percent=30, step_percent=25)


def vm(name: str, current: int, guaranteed: int, memory: int) -> BalloonVM:
    return BalloonVM(name, current, guaranteed, memory)


def moves(free_gib_kib: int, vms: list[BalloonVM], policy: MemoryBalloon = POLICY) -> list:
    adjustments = plan_balloons("host-a", 16 * GIB_KIB, free_gib_kib, vms, policy)
    return [(a.vm, a.from_mib, a.to_mib, a.reason) for a in adjustments]


@pytest.mark.parametrize(
    ("free_kib", "vms", "expected"),
    [
        pytest.param(
            1 * GIB_KIB,  # 1024 MiB free, low mark 1638 MiB: 614 MiB short
            [vm("a", 2048, 1024, 2048), vm("b", 4096, 1024, 4096), vm("c", 1024, 1024, 1024)],
            [("b", 4096, 3482, "BalloonShrunk")],
            id="pressure-shrinks-largest-headroom-first-within-a-step",
        ),
        pytest.param(
            1 * GIB_KIB // 4,  # 256 MiB free: 1382 MiB short, more than one step
            [vm("a", 2048, 1024, 2048), vm("b", 4096, 1024, 4096)],
            [("b", 4096, 3072, "BalloonShrunk"), ("a", 2048, 1690, "BalloonShrunk")],
            id="pressure-spreads-over-vms-until-the-shortfall-is-covered",
        ),
        pytest.param(
            1 * GIB_KIB,
            [vm("a", 1100, 1024, 2048)],
            [("a", 1100, 1024, "BalloonShrunk")],
            id="never-below-guaranteed",
        ),
        pytest.param(
            4 * GIB_KIB,  # 4096 MiB free, between the marks (1638 .. 4915)
            [vm("a", 1024, 1024, 2048)],
            [],
            id="between-the-marks-nothing-moves",
        ),
        pytest.param(
            8 * GIB_KIB,  # 8192 MiB free, 3277 MiB above the high mark
            [vm("a", 1024, 1024, 2048), vm("b", 3072, 1024, 4096)],
            [("a", 1024, 1536, "BalloonGrown"), ("b", 3072, 4096, "BalloonGrown")],
            id="room-grows-the-most-squeezed-first",
        ),
        pytest.param(
            int(4.9 * GIB_KIB),  # 5017 MiB free: only 102 MiB of surplus
            [vm("a", 1024, 1024, 2048)],
            [("a", 1024, 1126, "BalloonGrown")],
            id="growth-stays-within-the-surplus",
        ),
        pytest.param(
            1 * GIB_KIB,
            [vm("a", 512, 1024, 2048)],
            [("a", 512, 1024, "BalloonGrown")],
            id="below-its-guarantee-grows-even-under-pressure",
        ),
    ],
)
def test_balloon_policy(free_kib: int, vms: list[BalloonVM], expected: list) -> None:
    assert moves(free_kib, vms) == expected


def test_a_disabled_policy_or_unknown_memory_does_nothing() -> None:
    squeezed = [vm("a", 2048, 1024, 2048)]
    assert moves(0, squeezed, MemoryBalloon()) == []
    assert plan_balloons("host-a", None, 0, squeezed, POLICY) == []
    assert plan_balloons("host-a", 16 * GIB_KIB, None, squeezed, POLICY) == []


def test_the_message_gives_the_numbers() -> None:
    [adjustment] = plan_balloons(
        "host-a", 16 * GIB_KIB, GIB_KIB, [vm("b", 4096, 1024, 4096)], POLICY
    )
    assert adjustment.message == (
        "Balloon of VirtualMachine b on host-a: 4096 -> 3482 MiB (guaranteed 1024 MiB, memory "
        "4096 MiB): host host-a has 1024 MiB free of 16384 MiB, below the low mark of 1638 MiB "
        "(10%)"
    )


def _domain(name: str, balloon: bool, state: str = "running") -> DomainState:
    spec = DomainSpec(
        name=name,
        uuid="6f1c1a9e-5b8e-4f7a-9a53-3c0e2d1c0a11",
        vcpus=1,
        memory_mib=512,
        max_memory_mib=512 if balloon else None,
    )
    return DomainState(
        name=name,
        uuid=spec.uuid,
        state=state,
        reason="booted",
        persistent=True,
        autostart=False,
        ha=False,
        spec=spec,
        live=spec if state == "running" else None,
    )


def test_only_running_ballooned_vms_with_headroom_are_candidates() -> None:
    from fleet_sim import host_state

    state = host_state("host-a").model_copy(
        update={
            "domains": [
                _domain("web", balloon=True),
                _domain("db", balloon=False),
                _domain("off", balloon=True, state="shutoff"),
                _domain("flat", balloon=True),
                _domain("stranger", balloon=True),
            ]
        }
    )
    stats = HostStats(
        at=0.0,
        cpus=8,
        domains=[
            DomainStats(name=n, state="running", balloon_current_kib=400 * 1024)
            for n in ("web", "db", "off", "flat", "stranger")
        ],
    )
    specs = {
        name: VirtualMachineSpec(cpus=1, memory="512Mi", guaranteed_memory=g, max_memory="512Mi")
        for name, g in (("web", "256Mi"), ("db", "256Mi"), ("off", "256Mi"), ("flat", "512Mi"))
    }
    assert balloon_vms(state, stats, specs) == [BalloonVM("web", 400, 256, 512)]
