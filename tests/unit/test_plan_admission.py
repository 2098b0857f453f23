"""HA admission in the plan: each Host verdict says what losing it would do; what-if plans."""

from __future__ import annotations

from typing import Any

import pytest
from fleet_sim import T0, desired_of
from plan_fixtures import POLICY, converged, fleet, vm

from controller.plan import plan
from controller.plan.admission import FleetAdmission, fleet_admission
from controller.plan.planner import plan_what_if
from controller.status import build_status
from schemas.host import HostHAAdmission
from schemas.kinds import AnyResource

HOSTS = ("host-a", "host-b", "host-c")
FULL = "No host has 1 CPU and 1Gi memory free with network lan"


def ha(name: str, priority: int = 0, **spec: Any) -> list[AnyResource]:
    """An HA VM of 1 CPU / 1Gi without disks (a restart elsewhere needs none)."""
    pool = spec.pop("disk_pool", None)
    return vm(
        name, disk_pool=pool, memory="1Gi", ha={"enabled": True, "priority": priority}, **spec
    )


def entries(objects: list[AnyResource], hosts: tuple[str, ...], **sim: Any):
    """Converge `objects` on `hosts`, plan again, and return (sim, plan, host -> entry)."""
    fleet_sim = converged(objects, *hosts, **sim)
    p = plan(desired_of(*objects), fleet_sim.observed(), POLICY)
    return fleet_sim, p, {h: p.verdicts[("Host", h)].fields["ha_admission"] for h in hosts}


def stranded(host: str, lost_vm: str, filtered: str) -> HostHAAdmission:
    return HostHAAdmission(
        tolerated=False,
        restarts=2,
        stranded=[lost_vm],
        message=f"Losing {host} would leave {lost_vm} without a host; {lost_vm}: {FULL} "
        f"(3 hosts filtered: {filtered})",
    )


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (
            8,
            {
                "host-a": HostHAAdmission(
                    restarts=3, message="Losing host-a would restart 3 HA VMs on other hosts"
                ),
                "host-b": HostHAAdmission(
                    restarts=3, message="Losing host-b would restart 3 HA VMs on other hosts"
                ),
                "host-c": HostHAAdmission(
                    restarts=2, message="Losing host-c would restart 2 HA VMs on other hosts"
                ),
            },
        ),
        (
            9,
            {
                "host-a": stranded(
                    "host-a", "ha-6", "host-a lost, host-b memory full, host-c memory full"
                ),
                "host-b": stranded(
                    "host-b", "ha-7", "host-a memory full, host-b lost, host-c memory full"
                ),
                "host-c": stranded(
                    "host-c", "ha-8", "host-a memory full, host-b memory full, host-c lost"
                ),
            },
        ),
    ],
    ids=["8-vms-survive-any-loss", "a-9th-vm-would-not"],
)
def test_host_verdicts_carry_what_losing_them_would_do(count: int, expected: dict) -> None:
    objects = fleet(*(ha(f"ha-{i}") for i in range(count)), hosts=HOSTS)
    _, _, found = entries(objects, HOSTS, memory_mib=4096)
    assert found == expected


def test_status_and_the_fleet_line_come_from_the_host_verdicts() -> None:
    objects = fleet(*(ha(f"ha-{i}") for i in range(9)), hosts=HOSTS)
    _, p, found = entries(objects, HOSTS, memory_mib=4096)
    assert fleet_admission(found.items()) == FleetAdmission(
        f"HA admission: losing host-a would leave ha-6 without a host; ha-6: {FULL} (3 hosts "
        "filtered: host-a lost, host-b memory full, host-c memory full); losing 2 other hosts "
        "would strand HA VMs too",
        tolerated=False,
    )
    status = build_status(
        "Host",
        None,
        p.verdicts[("Host", "host-a")],
        generation=1,
        revision=None,
        failure=None,
        now=T0,
    )
    assert status.model_dump(mode="json", by_alias=True)["haAdmission"] == {
        "tolerated": False,
        "restarts": 2,
        "stranded": ["ha-6"],
        "lost": 0,
        "message": found["host-a"].message,
    }


def test_local_disks_stopped_vms_and_a_host_that_went_down() -> None:
    """An HA VM on a host-local pool cannot restart elsewhere; a Halted one is only lost; a
    host that does not answer is neither simulated nor a target."""
    objects = fleet(
        ha("db", disk_pool="local"),
        ha("web"),
        ha("batch", runStrategy="Halted"),
        hosts=("host-a", "host-b"),
    )
    sim, _, found = entries(objects, ("host-a", "host-b"), memory_mib=4096)
    assert sorted(d.name for d in sim.hosts["host-a"].state.domains) == ["batch", "web"]
    assert found == {
        "host-a": HostHAAdmission(
            restarts=1, lost=1, message="Losing host-a would restart 1 HA VM on other hosts"
        ),
        "host-b": HostHAAdmission(
            tolerated=False,
            stranded=["db"],
            message="Losing host-b would leave db without a host; db: its volumes db-root are "
            "on host-local pools of host-b",
        ),
    }
    sim.kill("host-b")
    p = plan(desired_of(*objects), sim.observed(), POLICY)
    after = p.verdicts[("Host", "host-a")].fields["ha_admission"]
    assert (after.tolerated, after.stranded, after.lost) == (False, ["web"], 1)
    assert "host-a lost, host-b unhealthy" in after.message
    assert p.verdicts[("Host", "host-b")].fields["ha_admission"] is None


def test_what_if_restarts_with_targets_and_says_what_could_not() -> None:
    objects = fleet(
        *(ha(f"ha-{i}", priority=10 * i) for i in range(9)),
        vm("batch", disk_pool=None, memory="512Mi"),
        hosts=HOSTS,
    )
    sim = converged(objects, *HOSTS, memory_mib=4096)
    on = {h: sorted(d.name for d in sim.hosts[h].state.domains) for h in HOSTS}
    down = next(h for h in HOSTS if "batch" in on[h])
    outcome = plan_what_if(desired_of(*objects), sim.observed(), POLICY, [down])
    ha_there = sorted((n for n in on[down] if n != "batch"), key=lambda n: -int(n[3:]))
    assert [d.vm for d in outcome.restarts + outcome.stranded] == ha_there
    assert all(d.target not in (None, down) for d in outcome.restarts)
    assert outcome.stranded and outcome.lost == ("batch",)
    assert outcome.stranded[0].message.startswith(
        f"HA VirtualMachine {outcome.stranded[0].vm} of {down} would find no host: No host has"
    )


def test_what_if_an_unknown_host_is_an_error() -> None:
    objects = fleet(ha("web"), hosts=("host-a",))
    sim = converged(objects, "host-a")
    with pytest.raises(ValueError, match="'host-z' is not one of the scheduler's hosts"):
        plan_what_if(desired_of(*objects), sim.observed(), POLICY, ["host-z"])
