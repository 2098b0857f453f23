"""`corral up` / `corral apply` take their lease epoch from the store's leader term, one
term per run, so an agent that saw a `corral controller` replica's term accepts the next
run (SQLite, and PostgreSQL when up)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from controller.agentpool import AgentPool
from controller.agents import AgentConflict
from controller.cli.main import app
from controller.leader import LeaderElector, LeadHeld, hold_run_term
from controller.leases import LeaseKeeper
from controller.loop import Controller
from controller.store import Fenced, open_store
from schemas.host import Host
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


@pytest.mark.parametrize("command", sorted(RUNS))
def test_a_run_after_a_replica_term_renews_with_the_next_epoch(
    command: str, db_url: str, tmp_path: Path
):
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    state_dir = tmp_path / "state"
    with serving_agent(NODE_URI) as agent:
        (manifests / "host.yaml").write_text(HOST.format(address=agent.base_url))
        _run(command, manifests, db_url, state_dir)  # term 1: the Host is stored

        # A `corral controller` replica leads in term 2 and renews the agent's lease.
        store = open_store(db_url)
        try:
            replica = LeaderElector(store, "replica-a")
            assert replica.try_acquire().epoch == 2
            agent.renew_lease("replica-a", 60.0, epoch=2)
            replica.release()
        finally:
            store.close()

        _run(command, manifests, db_url, state_dir)  # term 3
        lease = agent.get_lease()
        # The fixed epoch 1 that runs used before is what the agent now refuses.
        with pytest.raises(AgentConflict, match="older than the held epoch 3"):
            agent.renew_lease("corral-controller", 60.0, epoch=1)

    assert (lease.holder, lease.epoch) == ("corral-controller", 3)
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
            assert (run.epoch, controller.leases.epoch) == (2, 2)
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


def test_a_new_term_renews_at_once_not_when_the_old_one_was_due(db_url: str):
    store = open_store(db_url)
    try:
        with serving_agent(NODE_URI) as agent:
            host = Host.model_validate(
                {"metadata": {"name": "node-1"}, "spec": {"address": agent.base_url}}
            )
            keeper = LeaseKeeper(store, lambda: [host], lambda _h: agent, holder="c", epoch=1)
            assert keeper.renew_due() == ["node-1"]
            assert keeper.renew_due() == []  # renewed a moment ago: not due

            keeper.epoch = 2
            assert keeper.renew_due() == ["node-1"]
            assert agent.get_lease().epoch == 2
            assert keeper.renew_due() == []
    finally:
        store.close()
