"""The Store: every read and write of Corral's state, each in one short transaction.

`open_store(url)` returns a ready Store: it connects (StoreUnavailable names the URL,
password redacted, when it cannot) and upgrades the schema to the newest revision.
Writes that change objects, status, events, observed hosts or sources append to the
change log in the same transaction, so `changes_since(n)` tells a watcher exactly
what changed after it last looked.
"""

from __future__ import annotations

import fcntl
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL, Connection, Engine

from controller.store import (
    changes,
    events,
    fencing,
    object_reads,
    object_writes,
    observed,
    plans,
    snapshot,
    sources,
    status,
)
from controller.store.changes import ChangeDraft
from controller.store.engine import WRITE_OPTION, make_engine, mapped_errors, redact, resolve_url
from controller.store.errors import StoreBusy
from controller.store.migrate import upgrade_to_head
from controller.store.records import (
    ApplyResult,
    Change,
    EventRecord,
    ObservedHost,
    Page,
    PlanRecord,
    SourceRecord,
    StoredObject,
    StoredStatus,
)
from schemas.kinds import AnyResource
from schemas.meta import LabelSelector

Clock = Callable[[], datetime]
EVENT_WINDOW = timedelta(minutes=10)
APPLY_ATTEMPTS = 3


def utc_now() -> datetime:
    """Return the current time in UTC."""
    return datetime.now(UTC)


class Store:
    """Corral's state in SQLite or PostgreSQL; see the module docstring for the contract."""

    def __init__(
        self,
        engine: Engine,
        url: URL,
        clock: Clock = utc_now,
        event_window: timedelta = EVENT_WINDOW,
    ) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{WRITE_OPTION: True})
        self._url = url
        self._clock = clock
        self.event_window = event_window
        self._decoded = object_reads.DecodedRows()
        self._states: dict[str, tuple[str, dict[str, Any]]] = {}
        self._decoded_states: dict[Callable[[dict[str, Any]], Any], dict[str, tuple[str, Any]]] = {}
        self._plan_sizes: dict[int, int] = {}
        self._fencing_token: int | None = None

    def set_fencing_token(self, token: int | None) -> None:
        """Make every later write check that `token` is still the leader's (None: no check).

        A write whose token is stale raises Fenced and changes nothing: a deposed leader's
        late writes are refused (see controller.leader for how tokens are handed out).
        """
        self._fencing_token = token

    @property
    def url(self) -> str:
        """Return the database URL with its password redacted."""
        return redact(self._url)

    @property
    def engine(self) -> Engine:
        """Return the engine, for modules keeping their own tables in this database."""
        return self._engine

    @property
    def dialect(self) -> str:
        """Return "sqlite" or "postgresql"."""
        return self._engine.dialect.name

    def close(self) -> None:
        """Close every pooled connection."""
        self._engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with mapped_errors(self._url), self._engine.connect() as conn, conn.begin():
            yield conn

    @contextmanager
    def _write(
        self, fenced: bool = True
    ) -> Iterator[tuple[Connection, datetime, list[ChangeDraft]]]:
        """Yield (connection, now, drafts); drafts are appended to the change log at commit."""
        with mapped_errors(self._url), self._writer.connect() as conn, conn.begin():
            if fenced and self._fencing_token is not None:
                fencing.check_token(conn, self._fencing_token)
            now = self._clock()
            drafts: list[ChangeDraft] = []
            yield conn, now, drafts
            changes.record_changes(conn, drafts, now)

    # --- desired objects ---------------------------------------------------------------

    def apply_snapshot(
        self,
        source: str,
        revision: str | None,
        objects: Iterable[AnyResource],
        prune: bool = False,
    ) -> ApplyResult:
        """Make the stored objects of `source` equal `objects`; return what was done.

        See `snapshot.apply_snapshot`; also stamps the revision on the configured
        source "<type>:<name>" when there is one. A transaction that lost a race with
        another writer is retried whole; StoreBusy after APPLY_ATTEMPTS means retry later.
        """
        items = list(objects)
        attempt = 1
        while True:
            try:
                with self._write() as (conn, now, drafts):
                    result, written = snapshot.apply_snapshot(
                        conn, source, revision, items, prune, now
                    )
                    drafts.extend(written)
                return result
            except StoreBusy:
                if attempt >= APPLY_ATTEMPTS:
                    raise
                attempt += 1

    def get(self, kind: str, name: str, include_deleted: bool = False) -> StoredObject:
        """Return the object; raise NotFound (tombstones count as absent unless asked)."""
        with self._read() as conn:
            return object_reads.get_object(conn, kind, name, include_deleted)

    def list(
        self,
        kind: str | None = None,
        label_selector: LabelSelector | Mapping[str, str] | str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
        source: str | None = None,
    ) -> Page:
        """Return live objects by (kind, name); pass the page's continue_token for the next.

        A whole listing (no kind, selector, source or page) hands back the very records of
        the previous one for rows that did not change since.
        """
        whole = kind is None and label_selector is None and source is None
        cache = self._decoded if whole and limit is None and continue_token is None else None
        with self._read() as conn:
            return object_reads.list_objects(
                conn, kind, label_selector, source, limit, continue_token, cache=cache
            )

    def list_deleted(self, kind: str | None = None) -> list[StoredObject]:
        """Return the tombstones: deleted objects whose traces on hosts may remain."""
        with self._read() as conn:
            return object_reads.list_objects(conn, kind, deleted=True).items

    def put(
        self,
        obj: AnyResource,
        source: str,
        expected_version: int | None = None,
        revision: str | None = None,
        take_ownership: bool = False,
    ) -> StoredObject:
        """Create or update one object and return it as stored.

        `expected_version`: None writes unconditionally, 0 only creates, N updates only
        version N (Conflict otherwise). OwnedElsewhere unless `take_ownership`.
        """
        with self._write() as (conn, now, drafts):
            drafts.extend(
                object_writes.put_object(
                    conn, obj, source, expected_version, now, revision, take_ownership
                )
            )
            return object_reads.get_object(conn, obj.kind, obj.metadata.name)

    def delete(self, kind: str, name: str, expected_version: int | None = None) -> StoredObject:
        """Delete the object (it becomes a tombstone until purged); return the tombstone."""
        with self._write() as (conn, now, drafts):
            drafts.extend(object_writes.delete_object(conn, kind, name, expected_version, now))
            return object_reads.get_object(conn, kind, name, include_deleted=True)

    def purge(self, kind: str, name: str) -> bool:
        """Remove a tombstone and its status for good; return whether one was removed."""
        with self._write() as (conn, _now, drafts):
            written = object_writes.purge_object(conn, kind, name)
            drafts.extend(written)
            return bool(written)

    # --- status ------------------------------------------------------------------------

    def put_status(
        self, kind: str, name: str, status_: Any, expected_version: int | None = None
    ) -> bool:
        """Store the object's status if it changed; return whether it wrote."""
        with self._write() as (conn, now, drafts):
            written = status.put_status(conn, kind, name, status_, now, expected_version)
            drafts.extend(written)
            return bool(written)

    def put_statuses(self, items: Mapping[tuple[str, str], Any]) -> list[tuple[str, str]]:
        """Store many statuses in one transaction, each as `put_status`; return those written."""
        if not items:
            return []
        with self._write() as (conn, now, drafts):
            written = status.put_statuses(conn, items, now)
            drafts.extend(written)
            return [(d.kind, d.name) for d in written]

    def get_status(self, kind: str, name: str) -> StoredStatus | None:
        """Return the object's status and its version (None if never written)."""
        with self._read() as conn:
            return status.get_status(conn, kind, name)

    # --- observed hosts ----------------------------------------------------------------

    def put_observed(
        self,
        host: str,
        reachable: bool,
        state: Mapping[str, Any] | Any | None = None,
        error: str | None = None,
    ) -> bool:
        """Record an observation of a host; return whether state/reachability/error changed."""
        with self._write() as (conn, now, drafts):
            written = observed.put_observed(conn, host, reachable, now, state, error)
            drafts.extend(written)
            return bool(written)

    def record_power_fenced(self, host: str, at: datetime | None) -> None:
        """Record a confirmed power fence of the host (None clears it); raise NotFound."""
        with self._write() as (conn, _now, drafts):
            observed.record_power_fenced(conn, host, at)
            drafts.append(ChangeDraft("observed", "updated", "Host", host))

    def get_observed(self, host: str) -> ObservedHost:
        """Return the host's latest observation; raise NotFound."""
        with self._read() as conn:
            return observed.get_observed(conn, host)

    def list_observed(
        self, decode: Callable[[dict[str, Any]], Any] | None = None
    ) -> list[ObservedHost]:
        """Return every observed host; an unchanged state is the same dict as last time.

        With `decode`, each `state` is `decode(state dict)` instead, decoded once per
        state hash and the same value while unchanged; the dict itself is not kept (a
        fleet's states held both as dicts and decoded cost their size twice). Values are
        kept per `decode` function: pass one long-lived function, not a new one per call.
        """
        with self._read() as conn:
            if decode is None:
                return observed.list_observed(conn, self._states)
            states = self._decoded_states.setdefault(decode, {})
            return observed.list_observed(conn, states, decode)

    def put_observed_many(
        self, observations: Sequence[tuple[str, bool, Mapping[str, Any] | Any | None, str | None]]
    ) -> int:
        """Record (host, reachable, state, error) observations in one transaction, each as
        `put_observed` does; return how many moved."""
        with self._write() as (conn, now, drafts):
            moved = 0
            for host, reachable, state, error in observations:
                written = observed.put_observed(conn, host, reachable, now, state, error)
                drafts.extend(written)
                moved += bool(written)
            return moved

    def delete_observed(self, host: str) -> bool:
        """Forget a host's observation; return whether there was one."""
        with self._write() as (conn, _now, drafts):
            gone = observed.delete_observed(conn, host)
            if gone:
                drafts.append(ChangeDraft("observed", "deleted", "Host", host))
            return gone

    # --- events ------------------------------------------------------------------------

    def record_event(
        self,
        kind: str,
        name: str,
        type_: str,
        reason: str,
        message: str,
        component: str = "controller",
        identity: str | None = None,
    ) -> EventRecord:
        """Record an event (or count a repeat within `event_window`); return it."""
        with self._write() as (conn, now, drafts):
            event, written = events.record_event(
                conn,
                kind,
                name,
                type_,
                reason,
                message,
                component,
                identity,
                now,
                self.event_window,
            )
            drafts.extend(written)
            return event

    def record_events(self, items: Sequence[tuple[str, str, str, str, str]], **kw: Any) -> int:
        """Record (kind, name, type, reason, message) events in one transaction, each as
        `record_event` does (`component`, `identity` as keywords); return how many."""
        component = kw.get("component", "controller")
        identity = kw.get("identity")
        if not items:
            return 0
        with self._write() as (conn, now, drafts):
            drafts.extend(
                events.record_events(conn, list(items), component, identity, now, self.event_window)
            )
        return len(items)

    def list_events(
        self,
        kind: str | None = None,
        name: str | None = None,
        since: datetime | None = None,
        type_: str | None = None,
        limit: int = 100,
    ) -> list[EventRecord]:
        """Return events newest first, filtered by object, time and type."""
        with self._read() as conn:
            return events.list_events(conn, kind, name, since, type_, limit)

    def prune_events(self, before: datetime) -> int:
        """Delete events last seen before `before`; return how many."""
        with self._write() as (conn, _now, _drafts):
            return events.prune_events(conn, before)

    # --- plans -------------------------------------------------------------------------

    def record_plan(
        self,
        actions: Sequence[Any],
        source: str | None = None,
        revision: str | None = None,
        summary: str = "",
    ) -> int:
        """Store a plan's actions; return the plan id outcomes are recorded against."""
        with self._write() as (conn, now, _drafts):
            plan_id = plans.record_plan(conn, actions, source, revision, summary, now)
        if len(self._plan_sizes) >= 1000:
            self._plan_sizes.clear()
        self._plan_sizes[plan_id] = len(actions)
        return plan_id

    def record_outcome(self, plan_id: int, index: int, ok: bool, error: str | None = None) -> None:
        """Record how action `index` of the plan ended (again: replaced)."""
        self.record_outcomes(plan_id, [(index, ok, error)])

    def record_outcomes(
        self, plan_id: int, outcomes: Sequence[tuple[int, bool, str | None]]
    ) -> None:
        """Record (index, ok, error) outcomes of one plan in one transaction."""
        with self._write() as (conn, now, _drafts):
            plans.record_outcomes(conn, plan_id, outcomes, now, self._plan_sizes.get(plan_id))

    def finish_plan(self, plan_id: int, summary: str | None = None) -> None:
        """Mark the plan finished, with a final summary when given."""
        with self._write() as (conn, now, _drafts):
            plans.finish_plan(conn, plan_id, summary, now)

    def finish_open_plans(self, summary: str) -> int:
        """Mark every unfinished plan finished with `summary` (their pass died); return how
        many. Only the controller holding the lead runs plans, so it alone calls this."""
        with self._write() as (conn, now, _drafts):
            return plans.finish_open_plans(conn, summary, now)

    def get_plan(self, plan_id: int) -> PlanRecord:
        """Return the plan with its outcomes; raise NotFound."""
        with self._read() as conn:
            return plans.get_plan(conn, plan_id)

    def list_plans(self, source: str | None = None, limit: int = 20) -> list[PlanRecord]:
        """Return the newest plans first."""
        with self._read() as conn:
            return plans.list_plans(conn, source, limit)

    # --- sources -----------------------------------------------------------------------

    def put_source(self, name: str, type_: str, settings: Mapping[str, Any]) -> SourceRecord:
        """Create or reconfigure a source; return it (revisions and status are kept)."""
        with self._write() as (conn, now, drafts):
            drafts.extend(sources.put_source(conn, name, type_, settings, now))
            return sources.get_source(conn, name)

    def get_source(self, name: str) -> SourceRecord:
        """Return the source; raise NotFound."""
        with self._read() as conn:
            return sources.get_source(conn, name)

    def list_sources(self) -> list[SourceRecord]:
        """Return every configured source."""
        with self._read() as conn:
            return sources.list_sources(conn)

    def delete_source(self, name: str) -> None:
        """Remove a source's configuration; its objects stay."""
        with self._write() as (conn, _now, drafts):
            drafts.extend(sources.delete_source(conn, name))

    def record_source_attempt(self, name: str, revision: str | None, status_: Any = None) -> bool:
        """Record the revision last tried and the source's status; return whether it wrote."""
        with self._write() as (conn, now, drafts):
            written = sources.record_attempt(conn, name, revision, status_, now)
            drafts.extend(written)
            return bool(written)

    # --- leader election -----------------------------------------------------------------

    def claim_lead(self, identity: str, ttl_s: float) -> fencing.Term | None:
        """Take or keep the lead for `identity` for `ttl_s`; return the term (its epoch is the
        fencing token), or None while another holder's lease runs."""
        with self._write(fenced=False) as (conn, now, _drafts):
            return fencing.claim(conn, identity, _ms(now), int(ttl_s * 1000))

    def renew_lead(self, identity: str, epoch: int, ttl_s: float) -> fencing.Term | None:
        """Extend the lead of `identity` in term `epoch`; None when that term is over."""
        with self._write(fenced=False) as (conn, now, _drafts):
            return fencing.renew(conn, identity, epoch, _ms(now), int(ttl_s * 1000))

    def release_lead(self, identity: str, epoch: int) -> bool:
        """Give up the lead at once (a clean shutdown); return whether `identity` held it."""
        with self._write(fenced=False) as (conn, _now, _drafts):
            return fencing.release(conn, identity, epoch)

    def leader_term(self) -> fencing.Term:
        """Return the stored term: epoch, holder hash and lease expiry (unix ms)."""
        with self._write(fenced=False) as (conn, _now, _drafts):
            return fencing.read_term(conn)

    # --- change log --------------------------------------------------------------------

    def revision(self) -> int:
        """Return the number of the newest change (0 before any)."""
        with self._read() as conn:
            return changes.current_seq(conn)

    def changes_since(self, seq: int, limit: int = 1000) -> list[Change]:
        """Return changes numbered above `seq`, oldest first, at most `limit`.

        If `seq` is below the oldest kept change minus one (the log was trimmed), the
        watcher missed changes and must re-list; `oldest_change()` tells.
        """
        with self._read() as conn:
            return changes.changes_since(conn, seq, limit)

    def oldest_change(self) -> int | None:
        """Return the number of the oldest change kept (None when the log is empty)."""
        with self._read() as conn:
            return changes.oldest_seq(conn)

    def trim_changes(self, keep_after: int) -> int:
        """Delete changes numbered at or below `keep_after`; return how many."""
        with self._write() as (conn, _now, _drafts):
            return changes.trim_changes(conn, keep_after)


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)


def open_store(
    url: str | None = None,
    *,
    state_dir: Path | None = None,
    clock: Clock = utc_now,
) -> Store:
    """Return a Store on `url` (None: SQLite under the state dir), schema upgraded to head.

    Raises StoreUnavailable naming the URL (password redacted) when the database
    cannot be reached. Safe to call from several processes at once.
    """
    resolved = resolve_url(url, state_dir)
    engine = make_engine(resolved)
    try:
        with mapped_errors(resolved), _sqlite_opening(resolved):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            upgrade_to_head(engine)
    except BaseException:
        engine.dispose()
        raise
    return Store(engine, resolved, clock)


@contextmanager
def _sqlite_opening(url: URL) -> Iterator[None]:
    """Serialise opening one SQLite file across processes (a lock file beside it).

    Switching the journal mode and migrating need the database to themselves; under
    load, several controllers starting at once could wait past SQLite's busy timeout.
    PostgreSQL serialises migrations with an advisory lock instead.
    """
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        yield
        return
    lock_path = Path(f"{url.database}.open-lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
