"""The Controller: one pass over the whole fleet, composed of the loop's parts.

Level-triggered: a source change, an agent event, an operator's "reconcile now" or
the resync timer only wake the loop; every pass re-reads the whole desired and
observed picture, so a lost trigger or a crash at any point is repaired by the
next pass. A pass ends in one of three ways: done (requeue after the jittered
resync interval), work in flight (requeue after `busy_requeue_s`: a migration or
boot is progressing), or failures (requeue with backoff).

The Controller keeps per-pass state in `reconcile`'s locals. What must outlive a pass
lives in small named places, each with its owner and the rule that drops it:

- `quiet` (quiet.QuietSlot): the last quiet pass;
- `source_applier.applied` (sources.AppliedRevisions): each source's applied revision;
- `hosts.fleet` (hosts.PassFleet) and `hosts.reads` (hosts.HostReads): the last full
  pass's hosts, and what each read of a host's agent gave;
- `status.settled` (status.StatusWriter): statuses found already right;
- `history.may_be_open` (history.PlanHistory): whether a dead pass may have left a plan open;
- `requeue.failures` (runner.Requeue): failed passes in a row;
- `runner.wake` (runner.Runner): a trigger not yet served;
- `term`: the leader term, set by controller.leader at the start of each term.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from arbiter import EtcdSettings
from controller.agentpool import AgentPool
from controller.balloons import BalloonKeeper
from controller.execute import Executor, Outcome
from controller.fencereports import FenceReporter
from controller.leasewatch import HostLeaseWatch, LeaseView
from controller.loop.desired import desired_state, policy_context
from controller.loop.history import PlanHistory
from controller.loop.hosts import HostAgents, HostPoller, PassFleet
from controller.loop.quiet import QuietPass, QuietSlot
from controller.loop.result import PassResult
from controller.loop.runner import Requeue, Runner, store_revision
from controller.loop.sources import SourceApplier, SourceSetting
from controller.loop.status import StatusWriter
from controller.observe import read_observed
from controller.plan import ActionType, Plan, plan
from controller.plan.model import Observed
from controller.sources.base import Snapshot
from controller.store import Store
from schemas.host import Host


def utc_now() -> datetime:
    return datetime.now(UTC)


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
        restarts elsewhere off (controller.ha NoArbiter).
        The intervals are read at each pass, so they may be changed between passes."""
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
        self.source_applier = SourceApplier(store, self.sources, identity, clock)
        self.agents = HostAgents(store, pool, lambda: self.hosts.fleet)
        self.hosts = HostPoller(store, self.agents.client_for)
        self.status = StatusWriter(store, identity, clock)
        self.history = PlanHistory(store, identity)
        self.quiet = QuietSlot()
        self.requeue = Requeue()
        self.executor = Executor(
            self.agents.client_for_name,
            fencing_for=self.agents.fencing_for,
            max_parallel=max_parallel,
        )
        # Every mutating agent call carries this term's epoch: an agent that has seen a
        # newer one refuses it, so a deposed leader waking mid-plan cannot act.
        self.term = 1
        pool.epoch = lambda: self.term
        self.lease_watch = (
            HostLeaseWatch(etcd, on_change=self._lease_changed) if etcd is not None else None
        )
        self.balloons = BalloonKeeper(store, self.agents.client_for_name, identity)
        self.fence_reports = FenceReporter(store, identity)
        self.runner = Runner(lambda: self.reconcile(), store, self.sources, self.lease_watch)
        self.source_applier.register()

    # --- one pass ----------------------------------------------------------------------

    def sync_sources(self) -> list[Snapshot]:
        """Apply every source's newest valid revision; return the snapshots read.

        An invalid revision changes nothing: the last good one stays applied and the
        source reports Stalled with every file:line error.
        """
        return self.source_applier.sync(self.source_resync_s)

    def reconcile(self) -> PassResult:
        """Run one pass over the whole fleet and return what it did."""
        start = time.monotonic()
        self.sync_sources()
        quiet = self._quiet_pass(start)
        if quiet is not None:
            return quiet
        self.history.close_interrupted()
        before = store_revision(self.store)
        applied = self.source_applier.applied_revisions()
        stored = self.store.list().items
        deleted = self.store.list_deleted()
        hosts = [s.obj for s in stored if isinstance(s.obj, Host)]
        self.hosts.fleet = PassFleet.of(stored, hosts)
        self.hosts.poll(self.hosts.due(hosts, self.observe_interval_s))
        desired = desired_state(stored, deleted, self.source_applier.applied_revisions())
        policy = policy_context(stored)
        observed = self._observed()
        self.fence_reports.report(observed, self.hosts.fleet.hosts)
        first = plan(desired, observed, policy)
        outcomes: list[Outcome] = []
        if first.actions:
            outcomes = self.history.run(
                first,
                self.executor.run,
                source=self.sources[0].key if self.sources else None,
                revision=desired.revision,
            )
            self._record_power_fences(outcomes)
            # Status is written from what the agents report after acting, never from
            # what the plan hoped: re-read the hosts, then plan again (pure) for verdicts.
            touched = {a.host for a in first.actions if a.host}
            self.hosts.touch(touched)
            self.hosts.poll([h for h in hosts if h.metadata.name in touched])
            observed = self._observed()
            verdict_plan = plan(desired, observed, policy)
        else:
            verdict_plan = first
        failures = {o.action.target: o.error or "failed" for o in outcomes if not o.ok}
        not_ready = self.status.write(stored, deleted, verdict_plan, failures)
        # The balloon keeper reads hosts' states, which only agent polls write, and none
        # ran since `observed` was read; a purged tombstone may drop a host's, so then
        # the store is read again.
        observed = self._observed() if deleted else replace(observed, now=self.clock())
        self.balloons.run(desired, observed, policy)
        # A pass that acted on nothing, wrote nothing and does not depend on the clock
        # would be repeated exactly by the next one while nothing changes.
        unchanged = before >= 0 and store_revision(self.store) == before
        self.quiet.keep(
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
        quiet = self.quiet.take(self.replan_s)
        if quiet is None:
            return None
        fleet = list(self.hosts.fleet.hosts.values())
        self.hosts.poll(self.hosts.due(fleet, self.observe_interval_s))
        if not quiet.still_holds(
            store_revision(self.store), self.source_applier.applied_revisions()
        ):
            return None
        self.quiet.keep(quiet)
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

    def _record_power_fences(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            if outcome.ok and outcome.action.type is ActionType.FENCE_HOST:
                # A confirmed power fence is what makes the host's HA VMs safe to
                # restart (controller.ha): it must outlive this process.
                fenced = outcome.action.host or outcome.action.target[1]
                self.store.record_power_fenced(fenced, self.clock())

    def _requeue_after(self, first: Plan, outcomes: list[Outcome], after: Plan) -> float:
        return self.requeue.after(
            first, outcomes, after, busy_s=self.busy_requeue_s, resync_s=self.resync_s
        )

    def _observed(self) -> Observed:
        return read_observed(self.store, self.clock(), self.leases())

    # --- leases ------------------------------------------------------------------------

    def leases(self) -> LeaseView | None:
        """Return the hosts' etcd leases as the watch sees them (None: no arbiter)."""
        return self.lease_watch.view() if self.lease_watch is not None else None

    def _lease_changed(self) -> None:
        # A host's lease went or came back: the last pass's verdicts no longer hold.
        self.quiet.forget()
        self.trigger()

    # --- running -----------------------------------------------------------------------

    def trigger(self) -> None:
        """Wake the loop now (a source changed, an agent event, an operator asked)."""
        self.runner.trigger()

    def run(
        self,
        stop: threading.Event,
        on_pass: Callable[[PassResult], None] | None = None,
    ) -> None:
        """Reconcile until `stop` is set; watch the hosts' etcd leases and poll sources on
        their own threads (runner.Runner)."""
        self.runner.run(stop, on_pass)
