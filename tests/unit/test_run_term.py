"""`corral up` / `corral apply` take their term (the fencing token on mutating agent calls)
from the store's leader term, one term per run, so an agent that saw a `corral controller`
replica's term accepts the next run (SQLite, and PostgreSQL when up)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.agentpool import AgentPool
from controller.agents import AgentClient, AgentConflict
from controller.cli.main import app
from controller.leader import LeaderElector, LeadHeld, hold_run_term
from controller.loop import Controller
from controller.store import Fenced, open_store
from tests.helpers.agent_server import serving_agent
from tests.helpers.db_urls import db_url_fixtures

NODE_URI = f"test://{Path(__file__).resolve().parents[1] / 'data' / 'node.xml'}"

HOST = """\
apiVersion: corral.dev/v1alpha1
kind: Host
metadata:
  name: node-1
spec:
  address: {address}
"""

NETWORK = """\
apiVersion: corral.dev/v1alpha1
kind: Network
metadata:
  name: {name}
spec:
  mode: isolated
  ipv4:
    cidr: {cidr}
"""


pg_url, db_url = db_url_fixtures("corral_runterm", "pg_url")


RUNS = {
    "apply": ["apply"],
    "up": ["up", "--no-local-agents", "--until-ready"],
}


def _run(command: str, manifests: Path, db_url: str, state_dir: Path) -> None:
    name, *options = RUNS[command]
    args = [name, str(manifests), "--db", db_url, "--state-dir", str(state_dir), *options]
    result = CliRunner().invoke(app, [*args, "--timeout", "60"])
    assert result.exit_code == 0, result.output


def _network(manifests: Path, name: str, cidr: str) -> None:
    (manifests / f"{name}.yaml").write_text(NETWORK.format(name=name, cidr=cidr))


@pytest.mark.parametrize("command", sorted(RUNS))
def test_a_run_after_a_replica_term_acts_under_the_next_term(
    command: str, db_url: str, tmp_path: Path
):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    state_dir = tmp_path / "state"
    with serving_agent(NODE_URI) as agent:
        (manifests / "host.yaml").write_text(HOST.format(address=agent.base_url))
        _network(manifests, "net-1", "10.97.1.0/24")
        _run(command, manifests, db_url, state_dir)  # term 1 defines net-1
        assert agent.get_lease().term == 1

        # A `corral controller` replica leads in term 2 and acts on the agent.
        store = open_store(db_url)
        try:
            replica = LeaderElector(store, "replica-a")
            assert replica.try_acquire().epoch == 2
            with AgentClient(agent.base_url, epoch=lambda: 2) as under_replica:
                under_replica.ensure_network_active("net-1")
            replica.release()
        finally:
            store.close()
        assert agent.get_lease().term == 2

        # The next run defines net-2 under term 3: a run under a fixed term would be
        # refused here, the agent having seen term 2.
        _network(manifests, "net-2", "10.97.2.0/24")
        _run(command, manifests, db_url, state_dir)
        assert {n.name for n in agent.list_networks()} >= {"net-1", "net-2"}
        assert agent.get_lease().term == 3
        with (
            AgentClient(agent.base_url, epoch=lambda: 2) as deposed,
            pytest.raises(AgentConflict, match="controller term 2 is older than term 3"),
        ):
            deposed.ensure_network_active("net-1")

    store = open_store(db_url)
    try:
        term = store.leader_term()
    finally:
        store.close()
    assert (term.epoch, term.expires_ms) == (3, 0)  # released on exit


@pytest.fixture
def controller(db_url: str) -> Iterator[Controller]:
    store = open_store(db_url)
    pool = AgentPool()
    yield Controller(store, [], pool)
    pool.close()
    store.close()


def test_a_run_waits_for_a_free_lead_and_refuses_a_live_one(db_url: str, controller):
    other = open_store(db_url)
    try:
        replica = LeaderElector(other, "replica-a", ttl_s=60.0)
        assert replica.try_acquire().epoch == 1
        naps: list[float] = []
        with pytest.raises(LeadHeld, match="leads this store in term 1") as held:
            hold_run_term(controller, wait_s=0.3, sleep=naps.append)
        assert held.value.expires_in_s > 50
        assert naps  # it waited before giving up

        replica.release()
        run = hold_run_term(controller, wait_s=0.3)
        try:
            assert (run.epoch, controller.term) == (2, 2)
        finally:
            run.release()
    finally:
        other.close()


def test_a_run_that_loses_its_lead_is_told_and_fenced(db_url: str, controller):
    lost = threading.Event()
    run = hold_run_term(controller, ttl_s=0.6, on_lost=lost.set)
    # A replica whose clock is past this run's lead takes over (this run was paused).
    later = datetime.now(UTC) + timedelta(hours=1)
    other = open_store(db_url, clock=lambda: later)
    try:
        assert LeaderElector(other, "replica-a").try_acquire().epoch == run.epoch + 1
        assert lost.wait(timeout=5)
        with pytest.raises(Fenced):
            controller.store.record_event("Controller", "c", "Normal", "Test", "late write")
    finally:
        run.release()
        other.close()


def test_the_controllers_mutating_calls_carry_its_term(controller):
    with serving_agent(NODE_URI) as agent:
        client = controller.pool.client("node-1", agent.base_url)
        controller.term = 4
        client.ensure_network_active("default")
        assert agent.get_lease().term == 4

        controller.term = 3  # this controller was deposed and woke up late
        with pytest.raises(AgentConflict, match="controller term 3 is older than term 4"):
            client.ensure_network_active("default")
        assert client.get_lease().term == 4  # reads carry no term: never refused
