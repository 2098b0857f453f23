"""A pass that would repeat the last one exactly does not plan again, and any change ends that.

The real Controller on the simulated fleet: after a quiet pass (nothing planned, nothing
written, nothing clock-bound) the next passes return its result without planning, until
the store moves (a manifest, a host's state), a host's etcd lease comes or goes, the
hosts' failure makes time matter, or `replan_s` passes.
"""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from arbiter import make_settings
from controller.agentpool import AgentPool
from controller.loop import Controller, SourceSetting
from controller.sim import INSTANT, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import open_store


@pytest.fixture
def setup(tmp_path: Path):
    root = tmp_path / "m"
    names = write_fleet(root, vms=12, vms_per_host=4)
    fleet = SimFleet(names, latency=INSTANT)
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")

    def make(**kwargs) -> Controller:
        source = DirectorySource(root, name="dir:f")
        return Controller(
            store,
            [SourceSetting(source, "dir", "f", prune=True)],
            AgentPool(transport_for=fleet.transport_for),
            busy_requeue_s=0.0,
            **kwargs,
        )

    yield SimpleNamespace(root=root, fleet=fleet, make=make)
    store.close()


def settle(ctl: Controller) -> None:
    """Run passes until one is quiet (converged, and the next full pass changed nothing)."""
    for _ in range(10):
        result = ctl.reconcile()
        if result.converged and ctl.quiet.last is not None:
            return
    raise AssertionError("no quiet pass")


def test_quiet_passes_do_not_plan_until_the_store_moves(setup) -> None:
    ctl = setup.make(observe_interval_s=0.0)
    settle(ctl)
    again = ctl.reconcile()
    assert (again.replanned, again.plan.actions, again.converged) == (False, (), True)
    # A VM stopped behind Corral's back: every pass reads every host (interval 0), the
    # state moves the store, and the next pass plans the start.
    host = setup.fleet.hosts[setup.fleet.running()["vm00003"][0]]
    with host.lock:
        dom = host.domains["vm00003"]
        host.domains["vm00003"] = dom.model_copy(update={"state": "shutoff", "live": None})
        host.version += 1
    moved = ctl.reconcile()
    assert moved.replanned
    assert [a.target for a in moved.plan.actions] == [("VirtualMachine", "vm00003")]
    settle(ctl)
    assert setup.fleet.running()["vm00003"]


def test_a_manifest_change_is_planned_at_once(setup) -> None:
    ctl = setup.make(observe_interval_s=30.0)
    settle(ctl)
    write_fleet(setup.root, vms=13, vms_per_host=4)  # one VM more (hosts unchanged: 3)
    result = ctl.reconcile()
    assert result.replanned and any(a.target[1] == "vm00012" for a in result.plan.actions)


def test_a_silent_host_makes_every_pass_plan(setup) -> None:
    ctl = setup.make(observe_interval_s=0.0)
    settle(ctl)
    setup.fleet.cut("h0001")
    first = ctl.reconcile()
    assert first.replanned and first.plan.clock_bound
    # Its failure and lease expiry come with time alone: no pass is skipped meanwhile.
    assert ctl.reconcile().replanned
    assert ctl.quiet.last is None


def test_replan_s_bounds_how_long_a_plan_is_reused(setup) -> None:
    ctl = setup.make(observe_interval_s=30.0, replan_s=0.2)
    settle(ctl)
    assert not ctl.reconcile().replanned
    time.sleep(0.25)
    assert ctl.reconcile().replanned


def test_a_plan_left_open_by_a_dead_pass_is_closed_as_interrupted(setup) -> None:
    ctl = setup.make(observe_interval_s=30.0)
    settle(ctl)
    store = ctl.store
    orphan = store.record_plan([{"type": "start_vm", "target": ["VirtualMachine", "x"]}])
    # A pass of this controller that dies between recording and finishing its plan...
    ctl.history.may_be_open = True
    ctl.quiet.forget()
    ctl.reconcile()
    record = store.get_plan(orphan)
    assert record.finished_at is not None
    assert record.summary.startswith("interrupted")
    # ...and a new controller on the store closes what an earlier process left open.
    other = store.record_plan([{"type": "start_vm", "target": ["VirtualMachine", "y"]}])
    setup.make(observe_interval_s=30.0).reconcile()
    assert store.get_plan(other).summary.startswith("interrupted")


def test_a_hosts_lease_going_in_etcd_ends_the_quiet_passes(setup) -> None:
    """The lease watch changes no stored row: it must end the quiet passes itself."""
    # The watch is not started (no etcd runs here): its changes are applied by hand.
    ctl = setup.make(observe_interval_s=30.0, etcd=make_settings("http://127.0.0.1:2379"))
    settle(ctl)
    assert not ctl.reconcile().replanned
    ctl.lease_watch.apply("DELETE", "h0001")  # etcd let h0001's lease expire
    assert ctl.reconcile().replanned
    settle(ctl)
    ctl.lease_watch.apply("PUT", "h0001")  # and its agent holds a new one
    assert ctl.reconcile().replanned


def test_the_pass_that_finishes_the_work_is_settled(setup) -> None:
    ctl = setup.make()
    results = []
    for _ in range(5):
        results.append(ctl.reconcile())
        if results[-1].converged:
            break

    settled = [r.settled for r in results]
    acting = [bool(r.plan.actions) for r in results]
    # Every pass but the last acted; the last acting one left nothing to do, all Ready,
    # and the pass after it confirms that by planning nothing.
    assert acting == [True] * (len(results) - 1) + [False]
    assert settled == [False] * (len(results) - 2) + [True, True]
    assert results[-2].left == 0 and not results[-2].not_ready
    assert sorted(setup.fleet.starts().values()) == [1] * 12
