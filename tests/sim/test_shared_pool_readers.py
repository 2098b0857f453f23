"""One host lists a shared pool's volumes; the others leave them out, and the fleet still converges.

On the simulated fleet with the real Controller: reads stay small (no host but the reader
lists the shared volumes), a no-op pass plans nothing, and when the reader stops answering
another host takes over in the same pass without any volume being made again.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.agentpool import AgentPool
from controller.loop import Controller, SourceSetting
from controller.observe import pick_readers
from controller.plan import ActionType
from controller.sim import INSTANT, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import open_store


def listing_hosts(store, pool: str) -> dict[str, int]:
    """Return host -> how many volumes of `pool` its stored observation lists."""
    out = {}
    for row in store.list_observed():
        for p in (row.state or {}).get("pools", []):
            if p["name"] == pool and p.get("volumes_listed", True):
                out[row.host] = len(p["volumes"])
    return out


@pytest.fixture
def fleet_controller(tmp_path: Path):
    names = write_fleet(tmp_path / "m", vms=24, vms_per_host=6)
    fleet = SimFleet(names, latency=INSTANT)
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    ctl = Controller(
        store,
        [SourceSetting(DirectorySource(tmp_path / "m", name="dir:f"), "dir", "f", prune=True)],
        AgentPool(transport_for=fleet.transport_for),
        busy_requeue_s=0.0,
        observe_interval_s=0.0,
    )
    yield fleet, store, ctl
    ctl.pool.close()
    store.close()


def converge(ctl: Controller, passes: int = 10) -> None:
    for _ in range(passes):
        if ctl.reconcile().converged:
            return
    raise AssertionError("the fleet did not converge")


def test_only_the_reader_lists_shared_volumes(fleet_controller) -> None:
    fleet, store, ctl = fleet_controller
    converge(ctl)
    # 24 VM disks and the base image, listed by h0000 alone.
    assert listing_hosts(store, "shared") == {"h0000": 25}
    assert len(fleet.running()) == 24
    assert not ctl.reconcile().plan.actions


def test_a_silent_reader_is_replaced_in_the_same_pass(fleet_controller) -> None:
    fleet, store, ctl = fleet_controller
    converge(ctl)
    fleet.cut("h0000")
    result = ctl.reconcile()
    made = [a for a in result.plan.actions if a.type is ActionType.ENSURE_VOLUME]
    assert made == []
    listed = listing_hosts(store, "shared")
    # h0000's last state is kept (it lists what it last saw); h0001 now reads for the fleet.
    assert listed["h0001"] == 25
    fleet.cut("h0000", False)
    ctl.reconcile()
    assert ctl.hosts.reads.readers == {"shared": "h0001"}


@pytest.mark.parametrize(
    ("previous", "unfit", "expected"),
    [
        ({}, set(), {"p": "a"}),  # first choice: the first host by name
        ({"p": "b"}, set(), {"p": "b"}),  # a fit reader is kept
        ({"p": "b"}, {"b"}, {"p": "a"}),  # an unfit one is replaced by the first fit
        ({"p": "z"}, set(), {"p": "a"}),  # a reader no longer a candidate is replaced
        ({}, {"a", "b", "c"}, {}),  # no fit host: no reader, everyone lists
    ],
)
def test_pick_readers(previous, unfit, expected) -> None:
    got = pick_readers({"p": ["a", "b", "c"]}, previous, lambda h, _p: h not in unfit)
    assert got == expected
