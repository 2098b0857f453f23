"""Leader election and fencing tokens on the real store (SQLite, and PostgreSQL when up).

Replicas are LeaderElectors on separate Store instances over one database; the store's
wall clock and each replica's monotonic clock are moved by hand.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.leader import LeaderElector, lead
from controller.store import Fenced, Store, open_store
from schemas.kinds import KINDS
from tests.helpers.pg import fresh_schema, pg_unreachable
from tests.helpers.services import require

TTL_S = 10.0


class Clocks:
    """The store's wall clock and the replicas' monotonic clock, moved together or apart."""

    def __init__(self) -> None:
        self.wall = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
        self.mono = 1000.0

    def now(self) -> datetime:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def _pg_url() -> Iterator[str]:
    require("postgres", pg_unreachable())
    with fresh_schema("corral_leader") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'corral.db'}"
    else:
        yield from _pg_url()


@pytest.fixture
def clocks() -> Clocks:
    return Clocks()


@pytest.fixture
def replica(db_url: str, clocks: Clocks) -> Iterator[Callable[[str], LeaderElector]]:
    stores: list[Store] = []

    def make(identity: str) -> LeaderElector:
        store = open_store(db_url, clock=clocks.now)
        stores.append(store)
        return LeaderElector(store, identity, ttl_s=TTL_S, monotonic=clocks.monotonic)

    yield make
    for store in stores:
        store.close()


def host(name: str):
    return KINDS["Host"].model_validate(
        {"kind": "Host", "metadata": {"name": name}, "spec": {"address": f"http://{name}:8470"}}
    )


def test_one_leader_at_a_time_and_epochs_grow(replica, clocks: Clocks) -> None:
    a, b = replica("ctl-a"), replica("ctl-b")
    first = a.try_acquire()
    assert first is not None and first.epoch == 1
    assert b.try_acquire() is None
    clocks.advance(TTL_S / 3)
    assert a.renew() == first.__class__(1, clocks.mono + TTL_S)
    assert b.try_acquire() is None
    # a stops renewing: after its TTL, b takes over with the next epoch
    clocks.advance(TTL_S + 0.1)
    second = b.try_acquire()
    assert second is not None and second.epoch == 2
    assert a.renew() is None
    assert a.current is None


def test_reclaim_by_the_same_holder_keeps_its_epoch(replica) -> None:
    a = replica("ctl-a")
    assert a.try_acquire().epoch == 1
    assert a.try_acquire().epoch == 1


def test_release_hands_over_at_once(replica) -> None:
    a, b = replica("ctl-a"), replica("ctl-b")
    a.try_acquire()
    a.release()
    held = b.try_acquire()
    assert held is not None and held.epoch == 2


def test_deposed_leaders_late_write_is_refused(replica, clocks: Clocks) -> None:
    a, b = replica("ctl-a"), replica("ctl-b")
    a.try_acquire()
    a.store.put(host("h1"), source="api:test")
    clocks.advance(TTL_S + 1)  # a pauses past its lease; b takes over
    b.try_acquire()
    b.store.put(host("h2"), source="api:test")
    with pytest.raises(Fenced) as caught:
        a.store.put(host("h3"), source="api:test")
    assert (caught.value.token, caught.value.current) == (1, 2)
    names = {s.name for s in b.store.list(kind="Host").items}
    assert names == {"h1", "h2"}


def test_a_lapsed_lease_is_not_renewed_even_if_nobody_took_it(replica, clocks: Clocks) -> None:
    a = replica("ctl-a")
    a.try_acquire()
    clocks.mono += TTL_S + 1  # only the replica's own clock tells: it must stop leading
    assert a.renew() is None


def test_a_wall_clock_jump_does_not_extend_a_lease(replica, clocks: Clocks) -> None:
    a, b = replica("ctl-a"), replica("ctl-b")
    a.try_acquire()
    clocks.wall -= timedelta(hours=1)  # the wall clock jumps back; monotonic time goes on
    clocks.mono += TTL_S + 1
    assert a.renew() is None
    clocks.wall += timedelta(hours=1, seconds=TTL_S + 1)
    assert b.try_acquire().epoch == 2


def test_lead_runs_the_body_while_leading_and_stops_it_when_deposed(db_url: str) -> None:
    store_a = open_store(db_url)
    store_b = open_store(db_url)
    try:
        a = LeaderElector(store_a, "ctl-a", ttl_s=0.6)
        runs: list[int] = []
        stopped = threading.Event()

        def start(epoch: int):
            def body(term_stop: threading.Event) -> None:
                runs.append(epoch)
                term_stop.wait()
                stopped.set()

            return body

        stop = threading.Event()
        thread = threading.Thread(target=lead, args=(a, start, stop), daemon=True)
        thread.start()
        deadline = datetime.now(UTC) + timedelta(seconds=10)
        while not runs and datetime.now(UTC) < deadline:
            threading.Event().wait(0.05)
        assert runs == [1]
        # another replica takes the lead by force (the lease row moves to it)
        store_b.release_lead("ctl-a", 1)
        b = LeaderElector(store_b, "ctl-b", ttl_s=60)
        assert b.try_acquire().epoch == 2
        assert stopped.wait(5)
        stop.set()
        thread.join(5)
        assert not thread.is_alive()
    finally:
        store_a.close()
        store_b.close()
