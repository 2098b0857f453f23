"""Self-fences become SelfFenced events once each, also across a controller restart."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentapi import FenceRecord, HostState, LeaseState
from controller.fencereports import SELF_FENCED, FenceReporter, fence_events
from controller.plan.model import HostObservation, Observed
from controller.store import open_store

T0 = datetime(2026, 12, 7, 12, 0, 0, tzinfo=UTC).timestamp()
KILL = FenceRecord(vm="db-1", at=T0, ok=True, message="killed QEMU pid 42")
FAILED = FenceRecord(vm="db-2", at=T0 + 1, ok=False, message="kill of QEMU pid 43 failed")


@pytest.mark.parametrize(
    ("records", "until", "vms", "newest"),
    [
        pytest.param([], 0.0, [], 0.0, id="none"),
        pytest.param([KILL], 0.0, ["db-1"], T0, id="new"),
        pytest.param([KILL], T0, [], T0, id="already-reported"),
        pytest.param([FAILED, KILL], T0 - 1, ["db-1", "db-2"], T0 + 1, id="in-time-order"),
        pytest.param([KILL, FAILED], T0, ["db-2"], T0 + 1, id="only-the-newer"),
    ],
)
def test_fence_events(records, until, vms, newest):
    events, after = fence_events("host-a", records, until)
    assert [e[1] for e in events if e[0] == "VirtualMachine"] == vms
    assert [e[1] for e in events if e[0] == "Host"] == ["host-a"] * len(vms)
    assert {e[3] for e in events} <= {SELF_FENCED}
    assert after == newest


def test_the_message_says_what_happened():
    [(kind, name, type_, reason, message), _] = fence_events("host-a", [FAILED], 0.0)[0]
    assert (kind, name, type_, reason) == ("VirtualMachine", "db-2", "Warning", SELF_FENCED)
    assert message == (
        "Host host-a's agent could not kill VirtualMachine db-2 at 2026-12-07 12:00:01 UTC: no "
        "keepalive of its etcd lease was acknowledged in time (kill of QEMU pid 43 failed)"
    )


def _observed(records: list[FenceRecord]) -> Observed:
    state = HostState.model_construct(
        lease=LeaseState(held=False, granted=True, arbiter="etcd", ttl_s=5, fenced=records)
    )
    obs = HostObservation(name="host-a", reachable=True, state=state)
    return Observed(hosts={"host-a": obs}, now=datetime.now(UTC))


def test_each_kill_is_reported_once_even_by_a_restarted_controller(tmp_path: Path):
    now = time.time()
    earlier = FenceRecord(vm="db-1", at=now - 10, ok=True, message="killed QEMU pid 42")
    store = open_store(None, state_dir=tmp_path)
    try:
        first = FenceReporter(store, "ctl-1")
        assert first.report(_observed([earlier]), ["host-a"]) == 1
        assert first.report(_observed([earlier]), ["host-a"]) == 0
        time.sleep(0.01)
        later = FenceRecord(vm="db-2", at=time.time(), ok=False, message="kill failed")
        restarted = FenceReporter(store, "ctl-2")  # reads what was reported from the store
        assert restarted.report(_observed([earlier, later]), ["host-a"]) == 1
        reasons = [(e.kind, e.name) for e in store.list_events() if e.reason == SELF_FENCED]
        assert sorted(reasons) == [
            ("Host", "host-a"), ("Host", "host-a"),
            ("VirtualMachine", "db-1"), ("VirtualMachine", "db-2"),
        ]  # fmt: skip
    finally:
        store.close()
