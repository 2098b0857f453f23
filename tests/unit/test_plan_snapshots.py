"""Planning snapshots: taken when declared, deleted when removed, refused with reasons."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fleet_sim import FleetSim, SimError, converge, desired_of, manifest, summary
from plan_fixtures import POLICY, fleet, host, network, pool, verdict, vm, volume

from agentapi import HostState, SnapshotState
from controller.plan import plan
from controller.plan.model import Action

SIZE = 12 * 2**20


class SnapshotSim(FleetSim):
    """The fleet fake, with the agent's snapshot verbs (internal qcow2 snapshots)."""

    def _create_snapshot(self, state: HostState, action: Action) -> None:
        name, vm_name = action.params["snapshot"], action.params["vm"]
        dom = self._domain(state, vm_name)
        if dom is None:
            raise SimError("domain not found")
        if any(s.name == name for s in dom.snapshots):
            return
        running = dom.state == "running"
        if action.payload.get("memory") is False and running:
            raise SimError("conflict: disks-only snapshot of a running domain")
        snap = SnapshotState(
            name=name,
            domain=vm_name,
            description=action.payload.get("description"),
            created_at=int(self.now.timestamp()),
            domain_state=dom.state,
            current=True,
            memory=running,
            size_bytes=SIZE if running else 0,
        )
        self._replace(state.domains, dom.model_copy(update={"snapshots": [*dom.snapshots, snap]}))

    def _delete_snapshot(self, state: HostState, action: Action) -> None:
        dom = self._domain(state, action.params["vm"])
        if dom is None:
            return
        kept = [s for s in dom.snapshots if s.name != action.params["snapshot"]]
        self._replace(state.domains, dom.model_copy(update={"snapshots": kept}))


def snapshot(name: str, vm_name: str = "web-1", **spec: object) -> object:
    return manifest("Snapshot", name, {"vm": vm_name, **spec})


def converged_sim(*objects: object) -> SnapshotSim:
    sim = SnapshotSim.of("host-a")
    plans = converge(sim, desired_of(*objects), POLICY)
    assert plans[-1].empty, [a.message for a in plans[-1].actions]
    assert not sim.errors, sim.errors
    return sim


def test_a_declared_snapshot_of_a_running_vm_is_taken_with_memory_then_reported() -> None:
    objects = fleet(vm("web-1"), snapshot("before-upgrade", description="before 2.0", memory=True))
    sim = converged_sim(*fleet(vm("web-1")))
    first = plan(desired_of(*objects), sim.observed(), POLICY)
    assert summary(first) == [
        ("CreateSnapshot", "Snapshot/before-upgrade", "host-a", "Creating"),
    ]
    assert first.actions[0].payload == {"description": "before 2.0", "memory": None}
    assert first.actions[0].params == {"vm": "web-1", "snapshot": "before-upgrade"}
    sim.apply(first)
    after = plan(desired_of(*objects), sim.observed(), POLICY)
    assert after.empty
    v = after.verdicts[("Snapshot", "before-upgrade")]
    assert (v.ready, v.reason) == (True, "Converged")
    assert v.fields == {
        "created": datetime.fromtimestamp(int(sim.now.timestamp()), UTC),
        "size": SIZE,
        "host": "host-a",
    }
    assert v.message == (
        "Snapshot before-upgrade of VirtualMachine web-1 exists on host-a, taken "
        "2026-01-01 12:00:05 UTC with memory state 12Mi"
    )


@pytest.mark.parametrize(
    ("objects", "expected"),
    [
        pytest.param(
            fleet(vm("web-1"), snapshot("s1", memory=False)),
            (False, "SnapshotNeedsStop", True),
            id="without-memory-of-a-running-vm",
        ),
        pytest.param(
            fleet(vm("web-1"), snapshot("s1", vm_name="nope")),
            (False, "DependencyMissing", True),
            id="vm-not-defined",
        ),
        pytest.param(
            [
                host("host-a"),
                network(),
                pool(),
                volume("web-1-root", format="raw"),
                manifest(
                    "VirtualMachine",
                    "web-1",
                    {
                        "cpus": 1,
                        "memory": "256Mi",
                        "disks": [{"name": "root", "volume": "web-1-root"}],
                    },
                ),
                snapshot("s1"),
            ],
            (False, "InvalidSpec", True),
            id="no-qcow2-disk",
        ),
    ],
)
def test_snapshots_that_cannot_be_taken_say_why(objects: list, expected: tuple) -> None:
    without = [o for o in objects if o.kind != "Snapshot"]
    sim = converged_sim(*without)
    p = plan(desired_of(*objects), sim.observed(), POLICY)
    assert p.empty
    assert verdict(p, "Snapshot", "s1") == expected


def test_a_snapshot_without_memory_is_taken_of_a_halted_vm() -> None:
    objects = fleet(vm("web-1", runStrategy="Halted"), snapshot("s1", memory=False))
    sim = SnapshotSim.of("host-a")
    plans = converge(sim, desired_of(*objects), POLICY)
    assert plans[-1].empty and not sim.errors
    taken = [a for p in plans for a in p.actions if a.type.value == "CreateSnapshot"]
    assert [a.payload for a in taken] == [{"description": None, "memory": False}]
    v = plans[-1].verdicts[("Snapshot", "s1")]
    assert (v.ready, v.fields["size"]) == (True, 0)
    assert v.message.endswith("of its disks only")


def test_a_snapshot_waits_until_its_new_vm_is_defined_and_started() -> None:
    objects = fleet(vm("web-1"), snapshot("s1", memory=True))
    sim = SnapshotSim.of("host-a")
    plans = converge(sim, desired_of(*objects), POLICY)
    assert plans[-1].empty and not sim.errors
    assert verdict(plans[0], "Snapshot", "s1") == (False, "DependencyNotReady", False)
    made = [i for i, p in enumerate(plans) if any(a.ref == "Snapshot/s1" for a in p.actions)]
    started = [i for i, p in enumerate(plans) if any(a.type.value == "StartVM" for a in p.actions)]
    assert made and started and made[0] > started[0]
    assert verdict(plans[-1], "Snapshot", "s1") == (True, "Converged", False)


def test_a_removed_snapshot_is_deleted_and_a_hand_made_one_is_left_alone() -> None:
    kept = fleet(vm("web-1"))
    sim = converged_sim(*kept, snapshot("s1", memory=True), snapshot("by-hand", memory=True))
    desired = desired_of(*kept, deleted=(snapshot("s1", memory=True),))
    first = plan(desired, sim.observed(), POLICY)
    assert summary(first) == [("DeleteSnapshot", "Snapshot/s1", "host-a", "Deleting")]
    assert verdict(first, "Snapshot", "s1") == (False, "Deleting", False)
    sim.apply(first)
    after = plan(desired, sim.observed(), POLICY)
    assert after.empty
    assert verdict(after, "Snapshot", "s1") == (True, "Deleted", False)
    [domain] = sim.hosts["host-a"].state.domains
    assert [s.name for s in domain.snapshots] == ["by-hand"]


def test_a_removed_snapshot_on_a_host_that_does_not_answer_waits() -> None:
    kept = fleet(vm("web-1"))
    sim = converged_sim(*kept, snapshot("s1", memory=True))
    sim.kill("host-a")
    p = plan(desired_of(*kept, deleted=(("Snapshot", "s1"),)), sim.observed(), POLICY)
    assert [a for a in p.actions if a.target[0] == "Snapshot"] == []
    assert verdict(p, "Snapshot", "s1") == (False, "AgentUnreachable", False)


def test_host_status_lists_the_hooks_the_agent_reports() -> None:
    sim = converged_sim(*fleet())
    sim.hosts["host-a"].state.hooks = {"before_vm_start": ["10_pin_cpus.py"]}
    p = plan(desired_of(*fleet()), sim.observed(), POLICY)
    assert p.verdicts[("Host", "host-a")].fields["hooks"] == {"before_vm_start": ["10_pin_cpus.py"]}
