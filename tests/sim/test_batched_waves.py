"""The executor sends each host one request per plan wave, and retries a lost one whole.

The real Controller on the simulated fleet; every request a host receives is recorded
on its link (the transport under the real AgentClient).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import httpx
import pytest

from agentapi import VERBS
from controller.agentpool import AgentPool
from controller.loop import Controller, SourceSetting
from controller.sim import INSTANT, SimFleet, write_fleet
from controller.sources import DirectorySource
from controller.store import open_store


class RecordedLink(httpx.BaseTransport):
    """The simulated host's own transport, recording each request's method and path."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[tuple[str, str]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        return self.inner.handle_request(request)


@pytest.fixture
def fleet_controller(tmp_path: Path):
    root = tmp_path / "m"
    names = write_fleet(root, vms=12, vms_per_host=4)
    fleet = SimFleet(names, latency=INSTANT)
    links = {name: RecordedLink(fleet.transport_for(name)) for name in names}
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    ctl = Controller(
        store,
        [SourceSetting(DirectorySource(root, name="dir:f"), "dir", "f", prune=True)],
        AgentPool(transport_for=links.get),
        busy_requeue_s=0.0,
    )
    yield ctl, fleet, links
    ctl.pool.close()
    store.close()


def _mutating(link: RecordedLink) -> list[tuple[str, str]]:
    """Return the requests that carried verbs (not reads, not lease renewals)."""
    return [r for r in link.requests if r[0] != "GET" and r[1] != VERBS.get_lease.route]


def test_each_host_gets_one_request_per_wave(fleet_controller) -> None:
    ctl, fleet, links = fleet_controller
    actions = 0
    for _ in range(4):
        sent = {host: len(_mutating(link)) for host, link in links.items()}
        result = ctl.reconcile()
        assert all(o.ok for o in result.outcomes)
        actions += len(result.outcomes)
        for host, link in links.items():
            waves = Counter(o.action.wave for o in result.outcomes if o.action.host == host)
            calls = _mutating(link)[sent[host] :]
            batches = [path for _method, path in calls if path == VERBS.batch.route]
            assert len(calls) == len(waves), (host, waves, calls)
            assert len(batches) == sum(1 for n in waves.values() if n > 1), (waves, calls)
        if result.converged:
            break

    assert result.converged
    assert actions >= 3 * 12, "a volume, a definition and a start for each of 12 VMs"
    assert sum(len(_mutating(link)) for link in links.values()) <= actions / 3
    assert sorted(fleet.starts().values()) == [1] * 12


def test_a_lost_batch_answer_is_retried_whole_and_nothing_starts_twice(fleet_controller) -> None:
    ctl, fleet, links = fleet_controller
    host = sorted(links)[0]
    fleet.faults[host].lose_answers = 2

    for _ in range(4):
        if ctl.reconcile().converged:
            break

    assert fleet.injected.counts.get("lost answer") == 2
    retried = [o for o in ctl.reconcile().outcomes if o.attempts > 1]
    assert retried == []  # the converged pass has nothing left to retry
    running = fleet.running()
    assert len(running) == 12 and all(len(hosts) == 1 for hosts in running.values())
    assert sorted(fleet.starts().values()) == [1] * 12


def test_a_lost_batch_answer_retries_within_the_pass(fleet_controller) -> None:
    ctl, fleet, links = fleet_controller
    host = sorted(links)[0]
    fleet.faults[host].lose_answers = 1
    ctl.executor.sleep = lambda _s: None

    result = ctl.reconcile()

    mine = [o for o in result.outcomes if o.action.host == host]
    assert all(o.ok for o in mine)
    assert max(o.attempts for o in mine) == 2
    assert sum(1 for o in mine if o.attempts == 2) >= 2, "the whole batch was retried"
