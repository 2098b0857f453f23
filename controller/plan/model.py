"""The planner's inputs and outputs: Desired, Observed, Action, Plan, ObjectVerdict.

These are plain frozen data. The planner (`controller.plan.plan`) is a pure function
of them: equal inputs give an equal plan, and nothing to do gives an empty plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from agentapi import HostState
from schemas.kinds import AnyResource
from schemas.policy import SchedulingPolicySpec

ObjectKey = tuple[str, str]
"""(kind, name) of a desired object."""


@dataclass(frozen=True)
class Desired:
    """Every desired object, keyed by (kind, name), and the revision they came from.

    `deleted` holds objects removed from their source (pruned, or deleted through the
    API) whose traces on hosts must still be removed; the store keeps them as
    tombstones until a plan for them is empty.
    """

    objects: dict[ObjectKey, AnyResource]
    revision: str | None = None
    deleted: frozenset[ObjectKey] = frozenset()
    requests: dict[ObjectKey, str] = field(default_factory=dict)
    """Explicit operator requests not carried by the spec: ("VirtualMachine", n) -> "start"."""


@dataclass(frozen=True)
class LeaseObservation:
    """A host's fencing lease in etcd as the controller's watch sees it (controller.leasewatch).

    `alive` is None while the watch is out of sync with etcd: then nothing is known
    either way. `gone_since` is when the watch saw the key go (or, after a controller
    start, first found it absent): the lease had expired in etcd by then.
    """

    alive: bool | None
    gone_since: datetime | None = None


@dataclass(frozen=True)
class HostObservation:
    """What the controller knows about one host's agent at `Observed.now`.

    `state` is the last full state the agent reported (None if never reached);
    `reachable` says whether the latest call succeeded. `lease` is the host's etcd
    lease, or None when the controller has no arbiter (no etcd configured).
    """

    name: str
    reachable: bool
    state: HostState | None = None
    last_seen: datetime | None = None
    error: str | None = None
    lease: LeaseObservation | None = None
    power_fenced_at: datetime | None = None


@dataclass(frozen=True)
class Observed:
    """The observed picture of the fleet at one instant."""

    hosts: dict[str, HostObservation]
    now: datetime


class ActionType(StrEnum):
    """Every kind of step the executor can take; each maps to one agent call."""

    DEFINE_NETWORK = "DefineNetwork"
    START_NETWORK = "StartNetwork"
    DELETE_NETWORK = "DeleteNetwork"
    DEFINE_POOL = "DefinePool"
    DELETE_POOL = "DeletePool"
    CREATE_VOLUME = "CreateVolume"
    RESIZE_VOLUME = "ResizeVolume"
    DELETE_VOLUME = "DeleteVolume"
    DEFINE_VM = "DefineVM"
    START_VM = "StartVM"
    STOP_VM = "StopVM"
    DESTROY_VM = "DestroyVM"
    UNDEFINE_VM = "UndefineVM"
    MIGRATE_VM = "MigrateVM"
    CANCEL_MIGRATION = "CancelMigration"
    FENCE_HOST = "FenceHost"
    CREATE_SNAPSHOT = "CreateSnapshot"
    DELETE_SNAPSHOT = "DeleteSnapshot"


@dataclass(frozen=True)
class Action:
    """One step: what to do, on which host, for which object, and why.

    `payload` is the agent request body: an agentapi wire model as JSON (a
    DomainSpec for DefineVM, kept as the model itself: plan.payload.ModelPayload).
    `diff` is the RFC 6902 patch from the observed to the desired state for changed
    objects. Actions of the same `wave`
    may run concurrently; a wave starts only after every earlier wave succeeded for
    the objects it depends on.
    """

    type: ActionType
    target: ObjectKey
    host: str | None
    reason: str
    message: str
    wave: int = 0
    payload: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=True)
    diff: Sequence[dict[str, Any]] = field(default=(), hash=False, compare=True)
    disruptive: bool = False
    params: dict[str, str] = field(default_factory=dict, hash=False, compare=True)
    """Names the agent call needs besides the target: {"pool": ...} for a volume,
    {"destination": host} for a migration."""

    @property
    def ref(self) -> str:
        return f"{self.target[0]}/{self.target[1]}"


@dataclass(frozen=True)
class ObjectVerdict:
    """The planner's conclusion about one object, from which the loop writes its status.

    `ready` True: observed equals desired. False with `stalled`: nothing will change
    until the spec or the fleet does (e.g. NoHostFits). False and not stalled: actions
    are planned or in flight (Reconciling). `fields` carries kind-specific status
    (phase, host, scheduling verdicts, restartRequired, migration progress).
    """

    key: ObjectKey
    ready: bool
    reason: str
    message: str
    stalled: bool = False
    fields: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)


@dataclass(frozen=True)
class Plan:
    """An ordered list of actions and a verdict for every desired or deleted object."""

    actions: tuple[Action, ...]
    verdicts: dict[ObjectKey, ObjectVerdict] = field(default_factory=dict, hash=False)
    revision: str | None = None
    clock_bound: bool = False
    """True when time alone may change this plan for the same inputs: a host not
    answering (its failure and lease expiry are due at times), a migration in flight
    (its timeout), a power-saving window. A loop may reuse a plan only if this is False."""

    @property
    def empty(self) -> bool:
        return not self.actions


@dataclass(frozen=True)
class PolicyContext:
    """The scheduling policy in force per host (hosts no policy selects get the default)."""

    by_host: dict[str, SchedulingPolicySpec]
    default: SchedulingPolicySpec = field(default_factory=SchedulingPolicySpec)

    def for_host(self, host: str) -> SchedulingPolicySpec:
        return self.by_host.get(host, self.default)
