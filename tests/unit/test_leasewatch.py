"""controller.leasewatch: the controller's picture of the hosts' lease keys in etcd.

LeaseView.of is a table; HostLeaseWatch.apply is driven directly; sync, the watch and
the watch's own thread run against a real etcd (tests/helpers/etcd.py). The clock is
the test's: every change is stamped with the time the watch saw it.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from arbiter import EtcdClient, EtcdError, EtcdSettings, host_key, hosts_prefix, make_settings
from controller.leasewatch import HostLeaseWatch, LeaseView
from controller.observe import read_observed
from controller.plan.model import LeaseObservation
from controller.store import open_store
from tests.helpers.etcd import EtcdCluster
from tests.helpers.private_pg import free_port

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
NOWHERE = make_settings("http://127.0.0.1:2379")
"""Settings for a watch that is never started: apply() and view() need no etcd."""
SETTLE_S = 15.0
"""How long a test waits for the watch's thread to see a change etcd made."""


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class Clock:
    """The watch's clock, moved by the test; it records when on_change was called."""

    now: datetime = T0
    changes: list[datetime] = field(default_factory=list)

    def __call__(self) -> datetime:
        return self.now

    def changed(self) -> None:
        self.changes.append(self.now)


def new_watch(settings: EtcdSettings = NOWHERE) -> tuple[HostLeaseWatch, Clock]:
    clock = Clock()
    return HostLeaseWatch(settings, clock=clock, on_change=clock.changed), clock


def wait_until(condition: Callable[[], bool], timeout_s: float = SETTLE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- LeaseView.of ----------------------------------------------------------------------------

UNKNOWN = LeaseObservation(alive=None)
ALIVE = LeaseObservation(alive=True)

VIEW_ROWS = [
    # id, view, host, observation
    ("unsynced-never-synced", LeaseView(synced=False), "h1", UNKNOWN),
    ("unsynced-hides-a-held-key", LeaseView(False, frozenset({"h1"}), started_at=T0), "h1",
     UNKNOWN),
    ("unsynced-hides-a-gone-key", LeaseView(False, gone_since={"h1": at(5)}, started_at=T0),
     "h1", UNKNOWN),
    ("unsynced-hides-a-never-seen-key", LeaseView(False, started_at=T0), "h9", UNKNOWN),
    ("held", LeaseView(True, frozenset({"h1", "h2"}), started_at=T0), "h1", ALIVE),
    ("held-wins-over-an-old-gone-time",
     LeaseView(True, frozenset({"h1"}), gone_since={"h1": at(5)}, started_at=T0), "h1", ALIVE),
    ("gone-since-its-deletion",
     LeaseView(True, frozenset({"h2"}), gone_since={"h1": at(30)}, started_at=T0), "h1",
     LeaseObservation(alive=False, gone_since=at(30))),
    ("never-seen-gone-since-the-first-sync", LeaseView(True, frozenset({"h2"}), started_at=T0),
     "h9", LeaseObservation(alive=False, gone_since=T0)),
    ("never-seen-no-start-known", LeaseView(True), "h9",
     LeaseObservation(alive=False, gone_since=None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("view", "host", "observation"), [pytest.param(*row[1:], id=row[0]) for row in VIEW_ROWS]
)
def test_lease_view_of(view: LeaseView, host: str, observation: LeaseObservation) -> None:
    assert view.of(host) == observation


# -- HostLeaseWatch.apply --------------------------------------------------------------------

APPLY_ROWS = [
    # id, events (kind, host, seconds after T0), alive, gone_since
    ("put", [("PUT", "h1", 1)], {"h1"}, {}),
    ("delete", [("DELETE", "h1", 1)], set(), {"h1": at(1)}),
    ("put-then-delete", [("PUT", "h1", 1), ("DELETE", "h1", 5)], set(), {"h1": at(5)}),
    ("delete-then-put", [("DELETE", "h1", 1), ("PUT", "h1", 5)], {"h1"}, {}),
    ("delete-put-delete-counts-from-the-last",
     [("DELETE", "h1", 1), ("PUT", "h1", 5), ("DELETE", "h1", 9)], set(), {"h1": at(9)}),
    ("a-repeated-delete-counts-from-the-last", [("DELETE", "h1", 1), ("DELETE", "h1", 4)],
     set(), {"h1": at(4)}),
    ("a-repeated-put-stays-held", [("PUT", "h1", 1), ("PUT", "h1", 4)], {"h1"}, {}),
    ("hosts-apart",
     [("PUT", "h1", 1), ("PUT", "h2", 2), ("DELETE", "h2", 3), ("DELETE", "h3", 4)],
     {"h1"}, {"h2": at(3), "h3": at(4)}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("events", "alive", "gone_since"), [pytest.param(*row[1:], id=row[0]) for row in APPLY_ROWS]
)
def test_apply_in_order(
    events: list[tuple[str, str, float]], alive: set[str], gone_since: dict[str, datetime]
) -> None:
    watch, clock = new_watch()
    for kind, host, seconds in events:
        clock.now = at(seconds)
        watch.apply(kind, host)
    view = watch.view()
    assert (view.alive, view.gone_since) == (alive, gone_since)
    assert clock.changes == [at(s) for _k, _h, s in events]  # each change wakes the loop


def test_applied_changes_prove_nothing_before_the_first_sync() -> None:
    watch, _clock = new_watch()
    watch.apply("PUT", "h1")
    watch.apply("DELETE", "h2")
    view = watch.view()
    assert (view.synced, view.started_at) == (False, None)
    assert (view.of("h1"), view.of("h2")) == (UNKNOWN, UNKNOWN)


def test_a_view_is_a_copy() -> None:
    watch, clock = new_watch()
    watch.apply("DELETE", "h1")
    view = watch.view()
    view.gone_since.clear()
    clock.now = at(3)
    watch.apply("PUT", "h2")
    assert (view.alive, watch.view().gone_since) == (frozenset(), {"h1": T0})


def test_the_planner_takes_each_hosts_lease_from_the_view(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'c.db'}")
    try:
        for host in ("h1", "h2", "h3"):
            store.put_observed(host, reachable=True, state=None)
        view = LeaseView(True, frozenset({"h1"}), gone_since={"h2": at(7)}, started_at=T0)
        hosts = read_observed(store, at(10), view).hosts
        assert {name: obs.lease for name, obs in hosts.items()} == {
            "h1": ALIVE,
            "h2": LeaseObservation(alive=False, gone_since=at(7)),
            "h3": LeaseObservation(alive=False, gone_since=T0),
        }
        # Without an arbiter the controller knows no lease at all.
        assert {obs.lease for obs in read_observed(store, at(10)).hosts.values()} == {None}
    finally:
        store.close()


# -- sync and watch, against a real etcd -----------------------------------------------------


@dataclass
class Keys:
    """Host keys under a prefix of this test's own, bound to one lease of 60 s."""

    settings: EtcdSettings
    client: EtcdClient
    lease: int

    def put(self, *hosts: str) -> None:
        for host in hosts:
            self.client.put(host_key(self.settings.prefix, host), b"{}", lease=self.lease)

    def delete(self, host: str) -> None:
        assert self.client.delete(host_key(self.settings.prefix, host)) == 1


@pytest.fixture
def keys(etcd: EtcdCluster) -> Iterator[Keys]:
    settings = make_settings(etcd.endpoints[0], prefix=f"/test-{uuid.uuid4().hex[:8]}/")
    with EtcdClient(settings) as client:
        lease, _ttl = client.grant(60)
        yield Keys(settings, client, lease)
        with contextlib.suppress(EtcdError):  # a test left etcd down: the cluster goes anyway
            client.revoke(lease)


def test_the_first_sync_reads_every_host_key(keys: Keys) -> None:
    keys.put("h1", "h2")
    keys.client.put(keys.settings.prefix + "other/h3", b"not a host key")
    keys.client.put(hosts_prefix(keys.settings.prefix), b"no host named")
    watch, clock = new_watch(keys.settings)
    revision = watch.sync(keys.client)
    assert revision == keys.client.get_prefix(keys.settings.prefix)[0]
    view = watch.view()
    assert (view.synced, view.alive, view.gone_since, view.error, view.started_at) == (
        True,
        {"h1", "h2"},
        {},
        None,
        T0,
    )
    # A host whose key is absent at the first read counts as gone from then on: a
    # restarted controller waits the margin again, never less.
    assert view.of("h3") == LeaseObservation(alive=False, gone_since=T0)
    assert clock.changes == [T0]  # synced: a change of its own


def test_a_later_sync_sees_a_key_gone_and_back(keys: Keys) -> None:
    keys.put("h1", "h2")
    watch, clock = new_watch(keys.settings)
    watch.sync(keys.client)
    keys.delete("h2")
    clock.now = at(10)
    watch.sync(keys.client)
    assert watch.view().of("h2") == LeaseObservation(alive=False, gone_since=at(10))
    # A resync (the watch ends whenever it idles) keeps the time the key was seen gone:
    # it does not put the restart off by another margin.
    clock.now = at(20)
    watch.sync(keys.client)
    view = watch.view()
    assert (view.of("h2"), view.of("h9"), view.started_at) == (
        LeaseObservation(alive=False, gone_since=at(10)),
        LeaseObservation(alive=False, gone_since=T0),
        T0,
    )
    keys.put("h2")
    clock.now = at(30)
    watch.sync(keys.client)
    assert (watch.view().of("h2"), watch.view().gone_since) == (ALIVE, {})


def test_the_watch_from_the_sync_revision_misses_nothing(keys: Keys) -> None:
    keys.put("h1", "h2")
    watch, clock = new_watch(keys.settings)
    revision = watch.sync(keys.client)
    # Changes between the read and the watch's start come with the watch.
    keys.delete("h1")
    keys.put("h3")
    clock.now = at(5)
    ended: list[BaseException] = []

    def run() -> None:
        with EtcdClient(keys.settings) as client:
            try:
                watch.watch(client, revision)
            except EtcdError as exc:  # the watch ends when it idles
                ended.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert wait_until(lambda: watch.view().alive == {"h2", "h3"}), watch.view()
        assert watch.view().of("h1") == LeaseObservation(alive=False, gone_since=at(5))
        clock.now = at(8)
        keys.client.revoke(keys.lease)  # etcd deletes every key bound to the lease
        assert wait_until(lambda: not watch.view().alive), watch.view()
        assert watch.view().gone_since == {"h1": at(5), "h2": at(8), "h3": at(8)}
    finally:
        thread.join(timeout=SETTLE_S)
    assert ended and not thread.is_alive()


def test_a_lease_that_expires_in_etcd_is_seen_gone(keys: Keys) -> None:
    short, _ttl = keys.client.grant(2)
    keys.client.put(host_key(keys.settings.prefix, "h1"), b"{}", lease=short)
    keys.put("h2")
    watch, clock = new_watch(keys.settings)
    watch.start()
    try:
        assert wait_until(lambda: clock.changes == [T0])  # synced, and told so
        clock.now = at(60)  # whenever etcd expires it, the watch stamps it with its clock
        assert wait_until(lambda: watch.view().of("h1").alive is False), watch.view()
        assert watch.view().of("h1") == LeaseObservation(alive=False, gone_since=at(60))
        assert watch.view().of("h2") == ALIVE
        assert wait_until(lambda: at(60) in clock.changes)  # called after the view moved
    finally:
        watch.stop()


def test_an_unreachable_etcd_leaves_every_lease_unknown(keys: Keys) -> None:
    settings = make_settings(f"http://127.0.0.1:{free_port()}", prefix=keys.settings.prefix)
    watch, clock = new_watch(settings)
    watch.start()
    try:
        assert wait_until(lambda: watch.view().error is not None)
        view = watch.view()
        assert (view.synced, view.of("h1")) == (False, UNKNOWN)
        assert "unreachable" in view.error
        assert clock.changes == []  # never synced, so nothing changed
    finally:
        watch.stop()


def test_losing_etcd_makes_every_lease_unknown_until_it_is_back(
    etcd: EtcdCluster, keys: Keys
) -> None:
    keys.put("h1")
    watch, clock = new_watch(keys.settings)
    watch.start()
    try:
        assert wait_until(lambda: watch.view().of("h1") == ALIVE)
        assert wait_until(lambda: clock.changes == [T0])  # synced, and told so
        clock.now = at(10)
        etcd.kill_member(0)
        assert wait_until(lambda: not watch.view().synced), watch.view()
        view = watch.view()
        assert (view.of("h1"), view.of("h9")) == (UNKNOWN, UNKNOWN)
        assert view.error
        # Synced, then lost: each wakes the loop (called just after the view moved).
        assert wait_until(lambda: clock.changes == [T0, at(10)]), clock.changes

        clock.now = at(20)
        etcd.start_member(0)
        assert wait_until(lambda: watch.view().synced), watch.view()
        view = watch.view()
        assert (view.of("h1"), view.error, view.started_at) == (ALIVE, None, T0)
        assert wait_until(lambda: clock.changes[-1] == at(20)), clock.changes
    finally:
        watch.stop()
        etcd.start_member(0)


def test_a_key_back_and_gone_again_while_the_watch_was_out_of_sync_waits_the_margin_again(
    etcd3: EtcdCluster,
) -> None:
    prefix = f"/test-{uuid.uuid4().hex[:8]}/"
    watched = make_settings(etcd3.endpoints[0], prefix=prefix)  # the controller's member only
    other = make_settings(etcd3.endpoints[1:], prefix=prefix)
    watch, clock = new_watch(watched)
    with EtcdClient(other) as client:
        lease, _ttl = client.grant(60)
        keys = Keys(other, client, lease)
        keys.put("h1")
        watch.start()
        try:
            assert wait_until(lambda: watch.view().of("h1") == ALIVE)
            clock.now = at(10)
            keys.delete("h1")  # h1 failed once: its key went at +10 s
            assert wait_until(lambda: watch.view().of("h1").alive is False)
            etcd3.kill_member(0)
            assert wait_until(lambda: not watch.view().synced), watch.view()
            # Meanwhile h1 came back, held a new lease, and lost it again just now.
            keys.put("h1")
            keys.delete("h1")
            clock.now = at(600)
            etcd3.start_member(0)
            assert wait_until(lambda: watch.view().synced), watch.view()
            # Nothing the watch saw says when the key went again: at the earliest, now.
            assert watch.view().of("h1") == LeaseObservation(alive=False, gone_since=at(600))
        finally:
            watch.stop()
            etcd3.start_member(0)
            client.revoke(lease)
