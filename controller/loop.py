"""The reconcile loop: sources -> store -> plan -> execute -> observe -> status.

Level-triggered: a source change, an agent event, an operator's "reconcile now" or
the resync timer only wake the loop; every pass re-reads the whole desired and
observed picture, so a lost trigger or a crash at any point is repaired by the
next pass. A pass ends in one of three ways: done (requeue after the jittered
resync interval), work in flight (requeue after `busy_requeue_s`: a migration or
boot is progressing), or failures (requeue with backoff).
"""

from __future__ import annotations

import gc
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Protocol

from arbiter import EtcdSettings
from controller.agentpool import AgentPool
from controller.agents import AgentClient, AgentUnavailable
from controller.balloons import BalloonKeeper
from controller.conditions import set_condition
from controller.execute import Executor, Outcome
from controller.fencereports import FenceReporter
from controller.leasewatch import HostLeaseWatch, LeaseView
from controller.observe import HostRead, pick_readers, poll_hosts, read_observed
from controller.plan import ActionType, Desired, Plan, PolicyContext, plan
from controller.plan.model import Action, ObjectVerdict, Observed
from controller.sources.base import Snapshot, SourceError
from controller.status import build_statuses
from controller.store import NotFound, Store, StoredObject, StoreError
from controller.store.status import STATUS_CHUNK
from schemas.host import Fencing, Host
from schemas.meta import Condition, ConditionStatus, ConditionType, ObjectStatus
from schemas.policy import SchedulingPolicy, SchedulingPolicySpec
from schemas.storagepool import StoragePool

log = logging.getLogger(__name__)

SOURCE_APPLIED = "ApplySucceeded"
"""The source's newest revision was validated and stored as the desired state."""
SOURCE_INVALID = "ValidationFailed"
"""The source's newest revision has invalid manifests; the last good revision stays applied."""
SOURCE_UNREACHABLE = "SourceUnreachable"
"""The source could not be read (repository or directory unavailable)."""
RECONCILIATION_FAILED = "ReconciliationFailed"
"""An unexpected error ended the pass; it is logged and the pass is retried."""


class Source(Protocol):
    """What the loop needs of a source (directory, git).

    `revision` is the cheap check a poller makes: the revision the source holds now,
    without loading it (a directory's content hash, a git branch's remote head).
    """

    name: str

    def snapshot(self) -> Snapshot: ...

    def revision(self) -> str: ...


@dataclass(frozen=True)
class SourceSetting:
    """A source and how it is applied: `prune` deletes objects removed from it; with
    `poll_s`, a running loop checks the source's revision that often and starts a pass
    as soon as it moved (None: only passes and other triggers read it)."""

    source: Source
    type: str
    key_name: str
    prune: bool = False
    settings: dict[str, str] = field(default_factory=dict)
    poll_s: float | None = None

    @property
    def key(self) -> str:
        """Return the owner key its objects carry, e.g. "dir:demo"."""
        return f"{self.type}:{self.key_name}"


@dataclass(frozen=True)
class PassResult:
    """What one pass did and when the next one should run (seconds)."""

    plan: Plan
    outcomes: list[Outcome]
    requeue_after_s: float
    not_ready: list[str]
    elapsed_s: float
    replanned: bool = True
    """False when the pass found nothing changed since a quiet pass and did not plan."""
    left: int = 0
    """Actions still to do once this pass acted: the plan made from the hosts read again
    after its actions (its own plan's size when it did not act)."""

    @property
    def converged(self) -> bool:
        """The pass found nothing to do and every object Ready."""
        return self.plan.empty and not self.not_ready

    @property
    def settled(self) -> bool:
        """The pass left the fleet as desired: read again after its actions, nothing was
        left to do and every object was Ready (converged, one pass sooner)."""
        return self.left == 0 and not self.not_ready

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok and not o.skipped]


def utc_now() -> datetime:
    return datetime.now(UTC)


INTERRUPTED_PLAN = "interrupted: the pass running it stopped before it finished"


@dataclass(frozen=True)
class QuietPass:
    """A full pass that planned no action, wrote nothing to the store (its revision did
    not move) and whose plan does not depend on the clock (Plan.clock_bound).

    Planning is a function of the store's content and the time; with neither moving,
    the next pass would plan and write exactly the same. So while the store's revision
    and the sources' applied revisions stay the same, passes only read the hosts that
    are due (which moves the revision if a host changed) and return this result.
    """

    revision: int
    applied: tuple[str | None, ...]
    at: float
    plan: Plan
    not_ready: list[str]
    desired: Desired
    policy: PolicyContext


class Controller:
    """One controller: applies its sources and reconciles the fleet through the agents."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[SourceSetting],
        pool: AgentPool,
        *,
        identity: str = "corral-controller",
        resync_s: float = 30.0,
        busy_requeue_s: float = 1.0,
        max_parallel: int = 8,
        clock: Callable[[], datetime] = utc_now,
        observe_interval_s: float = 0.0,
        source_resync_s: float | None = None,
        replan_s: float = 60.0,
        etcd: EtcdSettings | None = None,
    ) -> None:
        """`observe_interval_s`: a pass re-reads a host's agent when its last read is older
        than this, or when the previous pass acted on it (0: every host, every pass).
        `source_resync_s`: a source whose revision has not moved is loaded and applied
        again only this often (None: every pass).
        `replan_s`: while nothing changes (see QuietPass) a pass does not plan again, but
        at least this often it does (0: every pass plans).
        `etcd`: where the hosts keep their fencing leases; None (a single host) turns HA
        restarts elsewhere off (controller.ha NoArbiter)."""
        self.store = store
        self.sources = list(sources)
        self.pool = pool
        self.identity = identity
        self.resync_s = resync_s
        self.busy_requeue_s = busy_requeue_s
        self.clock = clock
        self.observe_interval_s = observe_interval_s
        self.source_resync_s = source_resync_s
        self.replan_s = replan_s
        self._quiet: QuietPass | None = None
        # A plan recorded by a pass that died (this process's, or an earlier controller's)
        # stays open; the first pass, and the pass after one that died, close them.
        self._plans_may_be_open = True
        self._applied_at: dict[str, tuple[str, float]] = {}
        self._observed_at: dict[str, float] = {}
        self._touched: set[str] = set()
        self._pass_host_names: dict[str, Host] = {}
        self._shared_candidates: dict[str, list[str]] = {}
        self._readers: dict[str, str] = {}
        self._last_reads: dict[str, HostRead] = {}
        self._settled: dict[tuple[str, str], SettledStatus] = {}
        self.executor = Executor(
            self._client_for_name, fencing_for=self._fencing_for, max_parallel=max_parallel
        )
        # Every mutating agent call carries this term's epoch: an agent that has seen a
        # newer one refuses it, so a deposed leader waking mid-plan cannot act.
        self.term = 1
        pool.epoch = lambda: self.term
        self.lease_watch = (
            HostLeaseWatch(etcd, on_change=self._lease_changed) if etcd is not None else None
        )
        self.balloons = BalloonKeeper(store, self._client_for_name, identity)
        self.fence_reports = FenceReporter(store, identity)
        self._wake = threading.Event()
        self._failures = 0
        for setting in self.sources:
            self.store.put_source(
                setting.key_name, setting.type, {**setting.settings, "prune": setting.prune}
            )

    # --- sources -----------------------------------------------------------------------

    def sync_sources(self) -> list[Snapshot]:
        """Apply every source's newest valid revision; return the snapshots read.

        An invalid revision changes nothing: the last good one stays applied and the
        source reports Stalled with every file:line error.
        """
        snapshots = []
        for setting in self.sources:
            now = self.clock()
            if self._source_unchanged(setting):
                continue
            try:
                snapshot = setting.source.snapshot()
            except SourceError as exc:
                self._source_status(
                    setting,
                    None,
                    ConditionStatus.FALSE,
                    SOURCE_UNREACHABLE,
                    exc.message,
                    now,
                    stalled=False,
                )
                continue
            snapshots.append(snapshot)
            record = self.store.get_source(setting.key_name)
            if snapshot.ok:
                objects = [loaded.resource for loaded in snapshot.result.objects]
                result = self.store.apply_snapshot(
                    setting.key, snapshot.revision, objects, prune=setting.prune
                )
                if result.changed or record.last_applied_revision != snapshot.revision:
                    self.store.record_event(
                        "Source",
                        setting.key_name,
                        "Normal",
                        SOURCE_APPLIED,
                        f"Applied revision {short(snapshot.revision)}: {result.summary()}",
                        identity=self.identity,
                    )
                message = f"Applied revision {short(snapshot.revision)} ({len(objects)} objects)"
                if result.conflicts:
                    message += "; owned by other sources: " + ", ".join(
                        str(c) for c in result.conflicts
                    )
                self._source_status(
                    setting,
                    snapshot,
                    ConditionStatus.TRUE,
                    SOURCE_APPLIED,
                    message,
                    now,
                    applied=True,
                )
            else:
                errors = [str(e) for e in snapshot.result.errors]
                invalid = (
                    f"Revision {short(snapshot.revision)} is invalid"
                    f" ({plural(len(errors), 'error')})"
                )
                kept = (
                    f"revision {short(record.last_applied_revision)} stays applied"
                    if record.last_applied_revision
                    else "nothing is applied yet"
                )
                if record.last_attempted_revision != snapshot.revision:
                    self.store.record_event(
                        "Source",
                        setting.key_name,
                        "Warning",
                        SOURCE_INVALID,
                        f"{invalid}; {kept}: {errors[0]}",
                        identity=self.identity,
                    )
                self._source_status(
                    setting,
                    snapshot,
                    ConditionStatus.FALSE,
                    SOURCE_INVALID,
                    f"{invalid}; {kept}. First: {errors[0]}",
                    now,
                    stalled=True,
                    errors=errors,
                )
        return snapshots

    def _source_unchanged(self, setting: SourceSetting) -> bool:
        """Return True when the source still holds the revision this controller applied
        less than `source_resync_s` ago (loading 10,000 manifests again would change
        nothing). Any doubt (no resync interval, unreadable revision) reads the source."""
        if self.source_resync_s is None:
            return False
        applied = self._applied_at.get(setting.key)
        if applied is None or time.monotonic() - applied[1] >= self.source_resync_s:
            return False
        try:
            return setting.source.revision() == applied[0]
        except SourceError:
            return False

    def _source_status(
        self,
        setting: SourceSetting,
        snapshot: Snapshot | None,
        ready: ConditionStatus,
        reason: str,
        message: str,
        now: datetime,
        *,
        stalled: bool = False,
        applied: bool = False,
        errors: list[str] | None = None,
    ) -> None:
        record = self.store.get_source(setting.key_name)
        previous = record.status or {}
        conditions = [Condition.model_validate(c) for c in previous.get("conditions", [])]
        if stalled:
            conditions = set_condition(
                conditions,
                ConditionType.STALLED.value,
                ConditionStatus.TRUE,
                reason,
                message,
                generation=None,
                now=now,
            )
        else:
            conditions = [c for c in conditions if c.type != ConditionType.STALLED.value]
        conditions = set_condition(
            conditions, ConditionType.READY.value, ready, reason, message, generation=None, now=now
        )
        status = {
            "conditions": [c.model_dump(mode="json", by_alias=True) for c in conditions],
            "errors": errors or [],
            "detail": snapshot.detail if snapshot else previous.get("detail", {}),
        }
        if applied and snapshot is not None:
            status["appliedRevision"] = snapshot.revision
            self._applied_at[setting.key] = (snapshot.revision, time.monotonic())
        elif "appliedRevision" in previous:
            status["appliedRevision"] = previous["appliedRevision"]
        revision = snapshot.revision if snapshot else record.last_attempted_revision
        self.store.record_source_attempt(setting.key_name, revision, status)

    # --- one pass ----------------------------------------------------------------------

    def reconcile(self) -> PassResult:
        """Run one pass over the whole fleet and return what it did."""
        start = time.monotonic()
        self.sync_sources()
        quiet = self._quiet_pass(start)
        if quiet is not None:
            return quiet
        if self._plans_may_be_open:
            closed = self.store.finish_open_plans(INTERRUPTED_PLAN)
            if closed:
                log.warning("closed %s left unfinished by a pass that died", plural(closed, "plan"))
            self._plans_may_be_open = False
        before = self._store_revision()
        applied = self._applied_revisions()
        stored = self.store.list().items
        deleted = self.store.list_deleted()
        hosts = [s.obj for s in stored if isinstance(s.obj, Host)]
        self._pass_host_names = {h.metadata.name: h for h in hosts}
        self._shared_candidates = shared_pool_hosts(stored, hosts)
        self._poll(self._due_hosts(hosts))
        desired = self._desired(stored, deleted)
        policy = policy_context(stored)
        observed = self._observed()
        self.fence_reports.report(observed, self._pass_host_names)
        first = plan(desired, observed, policy)
        outcomes: list[Outcome] = []
        if first.actions:
            self._plans_may_be_open = True
            plan_id = self.store.record_plan(
                ActionRecords(first.actions),
                source=self.sources[0].key if self.sources else None,
                revision=desired.revision,
                summary=summarize_plan(first),
            )
            recorder = OutcomeRecorder(self.store, plan_id, self.identity)
            try:
                outcomes = self.executor.run(first, recorder.add)
            finally:
                recorder.flush()
            failed = sum(1 for o in outcomes if not o.ok)
            self.store.finish_plan(plan_id, f"{len(outcomes) - failed} ok, {failed} failed")
            self._plans_may_be_open = False
            for outcome in outcomes:
                if outcome.ok and outcome.action.type is ActionType.FENCE_HOST:
                    # A confirmed power fence is what makes the host's HA VMs safe to
                    # restart (controller.ha): it must outlive this process.
                    fenced = outcome.action.host or outcome.action.target[1]
                    self.store.record_power_fenced(fenced, self.clock())
            # Status is written from what the agents report after acting, never from
            # what the plan hoped: re-read the hosts, then plan again (pure) for verdicts.
            touched = {a.host for a in first.actions if a.host}
            self._touched = touched
            self._poll([h for h in hosts if h.metadata.name in touched])
            observed = self._observed()
            verdict_plan = plan(desired, observed, policy)
        else:
            verdict_plan = first
        failures = {o.action.target: o.error or "failed" for o in outcomes if not o.ok}
        not_ready = self._write_status(stored, deleted, verdict_plan, failures, desired)
        # The balloon keeper reads hosts' states, which only agent polls write, and none
        # ran since `observed` was read; a purged tombstone may drop a host's, so then
        # the store is read again.
        observed = self._observed() if deleted else replace(observed, now=self.clock())
        self.balloons.run(desired, observed, policy)
        # A pass that acted on nothing, wrote nothing and does not depend on the clock
        # would be repeated exactly by the next one while nothing changes.
        unchanged = before >= 0 and self._store_revision() == before
        self._quiet = (
            QuietPass(before, applied, time.monotonic(), verdict_plan, not_ready, desired, policy)
            if unchanged and not first.actions and not verdict_plan.clock_bound
            else None
        )
        return PassResult(
            plan=first,
            outcomes=outcomes,
            requeue_after_s=self._requeue_after(first, outcomes, verdict_plan),
            not_ready=not_ready,
            elapsed_s=time.monotonic() - start,
            left=len(verdict_plan.actions),
        )

    def _quiet_pass(self, start: float) -> PassResult | None:
        """Return the result of the last full pass again when nothing it read has changed
        since (see QuietPass), after reading the hosts that are due; else None."""
        quiet, self._quiet = self._quiet, None
        if quiet is None or time.monotonic() - quiet.at >= self.replan_s:
            return None
        self._poll(self._due_hosts(list(self._pass_host_names.values())))
        if self._store_revision() != quiet.revision or self._applied_revisions() != quiet.applied:
            return None
        self._quiet = quiet
        policy = quiet.policy
        if any(p.memory_balloon.enabled for p in (policy.default, *policy.by_host.values())):
            self.balloons.run(quiet.desired, self._observed(), policy)
        return PassResult(
            plan=quiet.plan,
            outcomes=[],
            requeue_after_s=self._requeue_after(quiet.plan, [], quiet.plan),
            not_ready=quiet.not_ready,
            elapsed_s=time.monotonic() - start,
            replanned=False,
            left=len(quiet.plan.actions),
        )

    def _applied_revisions(self) -> tuple[str | None, ...]:
        return tuple(self.store.get_source(s.key_name).last_applied_revision for s in self.sources)

    def _due_hosts(self, hosts: list[Host]) -> list[Host]:
        """Return the hosts this pass must read: every host whose last read is older than
        `observe_interval_s`, and the hosts the previous pass acted on."""
        now = time.monotonic()
        touched, self._touched = self._touched, set()
        return [
            h
            for h in hosts
            if h.metadata.name in touched
            or now - self._observed_at.get(h.metadata.name, -1e18) >= self.observe_interval_s
        ]

    def _poll(self, hosts: list[Host]) -> None:
        """Read `hosts`, and with them the one host that lists each shared pool's volumes
        (the others leave those out: at 1,000 hosts, every host listing every shared
        volume would make each read as large as the whole fleet's storage)."""
        if not hosts:
            return
        fleet = self._pass_host_names
        todo, reads = list(hosts), {}
        for _ in range(3):
            readers = pick_readers(self._shared_candidates, self._readers, self._fit)
            names = {h.metadata.name for h in todo} | set(reads)
            todo += [fleet[r] for r in sorted(set(readers.values()) - names) if r in fleet]
            done = poll_hosts(
                self.store,
                todo,
                self._client_for,
                omit_volumes=lambda n, r=readers: frozenset(p for p, h in r.items() if h != n),
            )
            reads.update(done)
            self._last_reads.update(done)
            self._readers = readers
            # A reader that failed, or lacks the pool, is replaced, and the new one read
            # in full before the pass plans on what it listed.
            again = pick_readers(self._shared_candidates, readers, self._fit)
            todo = [
                fleet[h]
                for pool, h in sorted(again.items())
                if h in fleet and readers.get(pool) != h
            ]
            if not todo:
                break
        now = time.monotonic()
        for name in reads:
            self._observed_at[name] = now

    def _fit(self, host: str, pool: str) -> bool:
        """Return True if `host` may list `pool`'s volumes: not read yet, or its last read
        answered with the pool active."""
        read = self._last_reads.get(host)
        return read is None or (read.error is None and pool in read.active_pools)

    def _desired(self, stored: list[StoredObject], deleted: list[StoredObject]) -> Desired:
        revisions = sorted({s.revision for s in stored if s.revision})
        applied = [self.store.get_source(s.key_name).last_applied_revision for s in self.sources]
        revision = next((r for r in applied if r), revisions[-1] if revisions else None)
        return Desired(
            objects={(s.kind, s.name): s.obj for s in stored},
            revision=revision,
            deleted=frozenset((s.kind, s.name) for s in deleted),
        )

    def _write_status(
        self,
        stored: list[StoredObject],
        deleted: list[StoredObject],
        verdicts: Plan,
        failures: dict[tuple[str, str], str],
        desired: Desired,
    ) -> list[str]:
        by_key = {(s.kind, s.name): s for s in stored}
        now = self.clock()
        live = {k: v for k, v in verdicts.verdicts.items() if k in by_key}
        settled = {
            k: by_key[k].obj.status
            for k, v in live.items()
            if k not in failures and self._is_settled(k, by_key[k], v)
        }
        todo = [(k, v) for k, v in live.items() if k not in settled]
        self._settled = {k: v for k, v in self._settled.items() if k in settled}
        not_ready = [f"{k[0]}/{k[1]}" for k, s in settled.items() if not _ready(s)]
        # Built, compared and written a chunk at a time: 10,000 new statuses and their
        # JSON never exist all at once.
        for at in range(0, len(todo), STATUS_CHUNK):
            not_ready += self._write_statuses(
                dict(todo[at : at + STATUS_CHUNK]), by_key, live, failures, now
            )
        # A deleted object whose traces are all gone from the hosts is purged for good.
        pending = {a.target for a in verdicts.actions}
        for tomb in deleted:
            key = (tomb.kind, tomb.name)
            verdict = verdicts.verdicts.get(key)
            if key not in pending and (verdict is None or verdict.ready):
                self.store.purge(*key)
                self.store.record_event(
                    key[0],
                    key[1],
                    "Normal",
                    "Deleted",
                    f"{key[0]}/{key[1]} is gone from every host",
                    identity=self.identity,
                )
        return sorted(not_ready)

    def _write_statuses(
        self,
        verdicts: dict[tuple[str, str], ObjectVerdict],
        by_key: dict[tuple[str, str], StoredObject],
        live: dict[tuple[str, str], ObjectVerdict],
        failures: dict[tuple[str, str], str],
        now: datetime,
    ) -> list[str]:
        """Build, compare and write the statuses of `verdicts` in one transaction, with
        their condition events; return the objects that are not Ready."""
        statuses = build_statuses(
            verdicts,
            previous={k: by_key[k].obj.status for k in verdicts},
            generations={k: by_key[k].generation for k in verdicts},
            revisions={k: by_key[k].revision for k in verdicts},
            failures=failures,
            now=now,
        )
        not_ready: list[str] = []
        changed: dict[tuple[str, str], dict] = {}
        changes: list[tuple[str, str, str, str, str]] = []
        for key, status in statuses.items():
            previous = by_key[key].obj.status
            # An equal status would be hashed and compared by the store only to be
            # skipped: at 10,000 objects that is most of a no-op pass.
            if status != previous:
                changed[key] = status.model_dump(mode="json", by_alias=True)
            elif key not in failures:
                record = by_key[key]
                self._settled[key] = SettledStatus(
                    previous, live[key], record.generation, record.revision
                )
            if not _ready(status):
                not_ready.append(f"{key[0]}/{key[1]}")
            event = self._condition_event(key, previous, status)
            if event is not None:
                changes.append(event)
        if changed:
            self.store.put_statuses(changed)
        if changes:
            self.store.record_events(changes, identity=self.identity)
        return not_ready

    def _is_settled(
        self, key: tuple[str, str], record: StoredObject, verdict: ObjectVerdict
    ) -> bool:
        """Return True when the object's stored status is the very one the last pass found
        already right, for an equal verdict, generation and revision: building it again
        would give an equal status whatever the time (a condition's lastTransitionTime
        moves only when the condition does)."""
        seen = self._settled.get(key)
        return (
            seen is not None
            and seen.status is record.obj.status
            and seen.generation == record.generation
            and seen.revision == record.revision
            and (seen.verdict is verdict or seen.verdict == verdict)
        )

    def _condition_event(self, key, previous, status) -> tuple[str, str, str, str, str] | None:
        """Return the event to record when the Ready or Stalled condition changes reason or
        status, as (kind, name, type, reason, message); None when neither changed."""
        for type_ in (ConditionType.STALLED.value, ConditionType.READY.value):
            new = status.condition(type_)
            old = previous.condition(type_) if previous is not None else None
            if new is None or (
                old is not None and (old.status, old.reason) == (new.status, new.reason)
            ):
                continue
            if type_ == ConditionType.STALLED.value and new.status is not ConditionStatus.TRUE:
                continue
            warning = type_ == ConditionType.STALLED.value or (
                new.status is ConditionStatus.FALSE
                and old is not None
                and old.status is ConditionStatus.TRUE
            )
            return (key[0], key[1], "Warning" if warning else "Normal", new.reason, new.message)
        return None

    def _requeue_after(self, first: Plan, outcomes: list[Outcome], after: Plan) -> float:
        if any(not o.ok and not o.skipped for o in outcomes):
            self._failures += 1
            return min(60.0, 2.0**self._failures)
        self._failures = 0
        if first.actions or after.actions:
            return self.busy_requeue_s
        return self.resync_s * random.uniform(0.9, 1.1)

    # --- agents ------------------------------------------------------------------------

    def leases(self) -> LeaseView | None:
        """Return the hosts' etcd leases as the watch sees them (None: no arbiter)."""
        return self.lease_watch.view() if self.lease_watch is not None else None

    def _observed(self) -> Observed:
        return read_observed(self.store, self.clock(), self.leases())

    def _lease_changed(self) -> None:
        # A host's lease went or came back: the last pass's verdicts no longer hold.
        self._quiet = None
        self.trigger()

    def _client_for(self, host: Host) -> AgentClient:
        return self.pool.client(host.metadata.name, host.spec.address)

    def _host_named(self, name: str) -> Host:
        """Return the desired Host `name` as this pass read it (the plan was made from
        that very object; reading it again per action cost a query per agent call)."""
        host = self._pass_host_names.get(name)
        if host is not None:
            return host
        obj = self.store.get("Host", name).obj
        assert isinstance(obj, Host)
        return obj

    def _fencing_for(self, name: str) -> Fencing:
        try:
            return self._host_named(name).spec.fencing
        except NotFound:
            return Fencing()

    def _client_for_name(self, name: str) -> AgentClient:
        try:
            host = self._host_named(name)
        except NotFound:
            raise AgentUnavailable("not a desired host", host=name) from None
        return self._client_for(host)

    # --- running -----------------------------------------------------------------------

    def trigger(self) -> None:
        """Wake the loop now (a source changed, an agent event, an operator asked)."""
        self._wake.set()

    def run(
        self,
        stop: threading.Event,
        on_pass: Callable[[PassResult], None] | None = None,
    ) -> None:
        """Reconcile until `stop` is set; watch the hosts' etcd leases and poll sources on
        their own threads."""
        if self.lease_watch is not None:
            self.lease_watch.start()
        polled = [s for s in self.sources if s.poll_s]
        poller = threading.Thread(
            target=self._poll_sources, args=(polled, stop), name="source-poller", daemon=True
        )
        if polled:
            poller.start()
        frozen = False
        try:
            while not stop.is_set():
                self._wake.clear()
                try:
                    result = self.reconcile()
                    delay = result.requeue_after_s
                    if not frozen:
                        freeze_heap()
                        frozen = True
                    if on_pass:
                        on_pass(result)
                    # Let the pass's plan go before the next pass builds its own: a busy
                    # pass's actions hold what it planned (10,000 domain specs at scale).
                    del result
                except StoreError as exc:
                    log.error("pass failed: the store is unavailable: %s", exc)
                    delay = 5.0
                except Exception:
                    log.exception("%s: pass failed", RECONCILIATION_FAILED)
                    delay = 5.0
                self._sleep(stop, delay)
        finally:
            if self.lease_watch is not None:
                self.lease_watch.stop()
            if poller.is_alive():
                poller.join(timeout=5)

    def _poll_sources(self, settings: list[SourceSetting], stop: threading.Event) -> None:
        """Trigger a pass whenever a polled source's revision differs from the last one a
        pass attempted. A source that cannot be read is left to the next pass to report."""
        due = {s.key: 0.0 for s in settings}
        while not stop.is_set():
            for setting in settings:
                if time.monotonic() < due[setting.key]:
                    continue
                due[setting.key] = time.monotonic() + float(setting.poll_s or 0.0)
                try:
                    revision = setting.source.revision()
                    attempted = self.store.get_source(setting.key_name).last_attempted_revision
                except (SourceError, StoreError, NotFound) as exc:
                    log.debug("polling %s failed: %s", setting.source.name, exc)
                    continue
                if revision != attempted:
                    self.trigger()
            stop.wait(max(0.01, min(due.values()) - time.monotonic()))

    def _sleep(self, stop: threading.Event, delay: float) -> None:
        """Wait `delay` seconds, or less when triggered, when another writer changed the
        store (the API, `corral reconcile`), or when the store answers again after it did
        not: any such change is a reason to look again (what happened on the hosts while
        the store was away does not show in its revision)."""
        seen = self._store_revision()
        away = False
        deadline = time.monotonic() + delay
        next_check = time.monotonic() + 1.0
        while not stop.is_set() and time.monotonic() < deadline:
            if self._wake.wait(min(0.2, max(0.0, deadline - time.monotonic()))):
                return
            if time.monotonic() >= next_check:
                next_check = time.monotonic() + 1.0
                revision = self._store_revision()
                if revision > seen or (away and revision >= 0):
                    return
                away = revision < 0

    def _store_revision(self) -> int:
        try:
            return self.store.revision()
        except StoreError:
            return -1


class OutcomeRecorder:
    """Records a plan's outcomes and their events in batches, as the executor reports them.

    One transaction per outcome and one per event cost more than the agent calls at
    fleet scale. A crash loses at most the last unflushed batch of history: the next
    pass re-reads the hosts and plans from what they report, never from this record.
    """

    def __init__(
        self, store: Store, plan_id: int, identity: str, batch: int = 200, every_s: float = 1.0
    ) -> None:
        self.store = store
        self.plan_id = plan_id
        self.identity = identity
        self.batch = batch
        self.every_s = every_s
        self._outcomes: list[tuple[int, bool, str | None]] = []
        self._events: list[tuple[str, str, str, str, str]] = []
        self._flushed = time.monotonic()

    def add(self, outcome: Outcome) -> None:
        """Take one outcome; write the batch when it is full or old enough."""
        action = outcome.action
        self._outcomes.append((outcome.index, outcome.ok, outcome.error))
        if not outcome.skipped:
            kind, name = action.target
            if outcome.ok:
                self._events.append((kind, name, "Normal", action.reason, action.message))
            else:
                self._events.append(
                    (
                        kind,
                        name,
                        "Warning",
                        f"{action.type.value}Failed",
                        f"{action.message} — failed: {outcome.error}",
                    )
                )
        if len(self._outcomes) >= self.batch or time.monotonic() - self._flushed >= self.every_s:
            self.flush()

    def flush(self) -> None:
        """Write every outcome and event taken since the last flush."""
        outcomes, self._outcomes = self._outcomes, []
        events, self._events = self._events, []
        self._flushed = time.monotonic()
        if outcomes:
            self.store.record_outcomes(self.plan_id, outcomes)
        if events:
            self.store.record_events(events, identity=self.identity)


def shared_pool_hosts(stored: list[StoredObject], hosts: list[Host]) -> dict[str, list[str]]:
    """Return each desired shared pool -> the desired hosts it is on, in name order."""
    ordered = sorted(hosts, key=lambda h: h.metadata.name)
    return {
        s.name: [
            h.metadata.name for h in ordered if s.obj.spec.host_selector.matches(h.metadata.labels)
        ]
        for s in stored
        if isinstance(s.obj, StoragePool) and s.obj.spec.shared
    }


def policy_context(stored: list[StoredObject]) -> PolicyContext:
    """Return which SchedulingPolicy governs each host (the first whose selector matches)."""
    policies = sorted(
        (s.obj for s in stored if isinstance(s.obj, SchedulingPolicy)),
        key=lambda p: p.metadata.name,
    )
    by_host: dict[str, SchedulingPolicySpec] = {}
    for s in stored:
        if isinstance(s.obj, Host):
            for policy in policies:
                if policy.spec.host_selector.matches(s.obj.metadata.labels):
                    by_host[s.name] = policy.spec
                    break
    return PolicyContext(by_host=by_host)


@dataclass(frozen=True)
class SettledStatus:
    """A stored status a pass rebuilt unchanged, with the inputs it was rebuilt from."""

    status: ObjectStatus
    verdict: ObjectVerdict
    generation: int | None
    revision: str | None


def _ready(status: ObjectStatus) -> bool:
    """Return True when the status's Ready condition is True."""
    ready = status.condition(ConditionType.READY.value)
    return ready is not None and ready.status is ConditionStatus.TRUE


def freeze_heap() -> None:
    """Collect garbage once, then move every surviving object out of the collector's view.

    After the first pass the heap holds the fleet: stored objects, parsed host states and
    the planner's memos, hundreds of thousands of objects that live as long as the process.
    A full collection traverses all of them (1-1.5 s at 10,000 VMs); frozen, it skips them.
    Frozen objects are still freed by reference counting when dropped.
    """
    gc.collect()
    gc.freeze()


def plan_action_record(action) -> dict:
    """Return an action as the JSON the plan history keeps."""
    return {
        "type": action.type.value,
        "target": f"{action.target[0]}/{action.target[1]}",
        "host": action.host,
        "reason": action.reason,
        "message": action.message,
        "wave": action.wave,
        "disruptive": action.disruptive,
        "diff": list(action.diff),
    }


class ActionRecords(Sequence[dict]):
    """A plan's actions as plan_action_record makes them, each made when read: the store
    serialises a plan of 30,000 actions one record at a time, never holding them all."""

    def __init__(self, actions: Sequence[Action]) -> None:
        self.actions = actions

    def __len__(self) -> int:
        return len(self.actions)

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return [plan_action_record(a) for a in self.actions[index]]
        return plan_action_record(self.actions[index])


def summarize_plan(p: Plan) -> str:
    """Return "3 actions: 1 DefineVM, 2 StartVM"."""
    counts: dict[str, int] = {}
    for action in p.actions:
        counts[action.type.value] = counts.get(action.type.value, 0) + 1
    parts = ", ".join(f"{n} {t}" for t, n in sorted(counts.items()))
    return f"{len(p.actions)} actions: {parts}"


def plural(count: int, noun: str) -> str:
    """Return "1 error" or "3 errors"."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def short(revision: str | None) -> str:
    """Return a revision shortened for messages (12 characters of a SHA)."""
    if not revision:
        return "none"
    return revision[:19] if revision.startswith("sha256:") else revision[:12]
