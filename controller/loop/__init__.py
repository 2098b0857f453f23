"""The reconcile loop in parts: sources -> store -> plan -> execute -> observe -> status.

- `sources`: apply each source's newest valid revision; the source poller (a trigger)
- `desired`: the pass's Desired and which SchedulingPolicy governs each host
- `hosts`: which hosts are due, polling them, shared-pool readers, agents by host name
- `history`: plan records, outcomes and their events (OutcomeRecorder)
- `status`: statuses from verdicts, condition events, tombstone purges
- `quiet`: the quiet-pass shortcut (QuietPass)
- `runner`: the run loop, its triggers and timing (requeue, sleep, heap freeze)
- `controller`: the Controller composing them into one pass
"""

from controller.loop.controller import Controller, utc_now
from controller.loop.desired import desired_state, policy_context
from controller.loop.history import (
    INTERRUPTED_PLAN,
    ActionRecords,
    OutcomeRecorder,
    PlanHistory,
    plan_action_record,
    summarize_plan,
)
from controller.loop.hosts import HostAgents, HostPoller, HostReads, PassFleet, shared_pool_hosts
from controller.loop.messages import plural, short
from controller.loop.quiet import QuietPass, QuietSlot
from controller.loop.result import PassResult
from controller.loop.runner import (
    RECONCILIATION_FAILED,
    Requeue,
    Runner,
    freeze_heap,
    store_revision,
)
from controller.loop.sources import (
    SOURCE_APPLIED,
    SOURCE_INVALID,
    SOURCE_UNREACHABLE,
    AppliedRevisions,
    Source,
    SourceApplier,
    SourceSetting,
    poll_sources,
)
from controller.loop.status import SettledStatus, StatusWriter

__all__ = [
    "INTERRUPTED_PLAN",
    "RECONCILIATION_FAILED",
    "SOURCE_APPLIED",
    "SOURCE_INVALID",
    "SOURCE_UNREACHABLE",
    "ActionRecords",
    "AppliedRevisions",
    "Controller",
    "HostAgents",
    "HostPoller",
    "HostReads",
    "OutcomeRecorder",
    "PassFleet",
    "PassResult",
    "PlanHistory",
    "QuietPass",
    "QuietSlot",
    "Requeue",
    "Runner",
    "SettledStatus",
    "Source",
    "SourceApplier",
    "SourceSetting",
    "StatusWriter",
    "desired_state",
    "freeze_heap",
    "plan_action_record",
    "plural",
    "policy_context",
    "poll_sources",
    "shared_pool_hosts",
    "short",
    "store_revision",
    "summarize_plan",
    "utc_now",
]
