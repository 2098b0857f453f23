"""What the store hands back: frozen records, never live ORM rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from schemas.kinds import AnyResource


class ObjectRef(NamedTuple):
    """(kind, name) of an object; str() gives "Kind/name"."""

    kind: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class StoredObject:
    """A desired object as stored: the validated model and the store's bookkeeping.

    `obj.metadata.generation` and `.resource_version` are filled from the row and
    `obj.status` from the status table (None when no status was written yet).
    `revision` is the source revision at which the object last changed.
    `deleted_at` is set on tombstones (objects deleted but not yet purged).
    """

    obj: AnyResource
    source: str
    revision: str | None
    generation: int
    resource_version: int
    status_version: int | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None

    @property
    def kind(self) -> str:
        return self.obj.kind

    @property
    def name(self) -> str:
        return self.obj.metadata.name

    @property
    def ref(self) -> ObjectRef:
        return ObjectRef(self.obj.kind, self.obj.metadata.name)


@dataclass(frozen=True)
class OwnershipConflict:
    """An object of a snapshot that another source already owns; it was left untouched."""

    kind: str
    name: str
    owner: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name} (owned by {self.owner})"


@dataclass(frozen=True)
class ApplyResult:
    """What `apply_snapshot` did, object by object."""

    created: list[ObjectRef] = field(default_factory=list)
    updated: list[ObjectRef] = field(default_factory=list)
    unchanged: list[ObjectRef] = field(default_factory=list)
    deleted: list[ObjectRef] = field(default_factory=list)
    skipped_protected: list[ObjectRef] = field(default_factory=list)
    conflicts: list[OwnershipConflict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Return True when the store was written (created, updated or deleted anything)."""
        return bool(self.created or self.updated or self.deleted)

    def summary(self) -> str:
        """Return a one-line count of every outcome, e.g. "3 created, 1 updated, ..."."""
        parts = [
            f"{len(self.created)} created",
            f"{len(self.updated)} updated",
            f"{len(self.unchanged)} unchanged",
            f"{len(self.deleted)} deleted",
        ]
        if self.skipped_protected:
            parts.append(f"{len(self.skipped_protected)} protected from prune")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} owned by other sources")
        return ", ".join(parts)


@dataclass(frozen=True)
class Page:
    """One page of a listing; `continue_token` is None on the last page."""

    items: list[StoredObject]
    continue_token: str | None = None


@dataclass(frozen=True)
class StoredStatus:
    """An object's status document and its own resource version."""

    status: dict[str, Any]
    resource_version: int
    updated_at: datetime


@dataclass(frozen=True)
class ObservedHost:
    """The latest observation of one host's agent and its confirmed power fence.

    `state` is the agent's full HostState as a JSON dict (None if never reached), or,
    from `Store.list_observed(decode=...)`, what `decode` made of that dict. Its free
    memory, event counter, lease countdown and guest-information times are as of the
    last change of anything else (controller.store.observed.material_hash).
    """

    host: str
    reachable: bool
    state: dict[str, Any] | Any | None
    last_seen: datetime | None
    last_error: str | None
    power_fenced_at: datetime | None
    updated_at: datetime
    state_hash: str | None = None


@dataclass(frozen=True)
class EventRecord:
    """One event; `count` repeats were seen between `first_seen` and `last_seen`."""

    id: int
    type: str
    reason: str
    message: str
    kind: str
    name: str
    count: int
    first_seen: datetime
    last_seen: datetime
    component: str
    identity: str | None


@dataclass(frozen=True)
class ActionOutcome:
    """How one action of a plan ended."""

    ok: bool
    error: str | None
    at: datetime


@dataclass(frozen=True)
class PlanRecord:
    """A stored plan: its actions and, aligned with them, their outcomes (None: not run)."""

    id: int
    created_at: datetime
    finished_at: datetime | None
    source: str | None
    revision: str | None
    actions: list[dict[str, Any]]
    outcomes: list[ActionOutcome | None]
    summary: str

    @property
    def failed(self) -> list[int]:
        """Return the indexes of the actions that failed."""
        return [i for i, o in enumerate(self.outcomes) if o is not None and not o.ok]


@dataclass(frozen=True)
class SourceRecord:
    """A configured source and how far it got."""

    name: str
    type: str
    settings: dict[str, Any]
    last_applied_revision: str | None
    last_attempted_revision: str | None
    status: dict[str, Any] | None
    updated_at: datetime

    @property
    def key(self) -> str:
        """Return the owner key its objects carry, e.g. "git:origin"."""
        return source_key(self.type, self.name)


def source_key(type_: str, name: str) -> str:
    """Return the owner key objects of a configured source carry: "<type>:<name>"."""
    return f"{type_}:{name}"


@dataclass(frozen=True)
class Change:
    """One entry of the change log.

    `topic` is object, status, event, observed or source; `op` is created, updated,
    deleted or purged. `resource_version` is the new version of the object or status,
    the event's id for events, None for observed hosts and sources.
    """

    seq: int
    topic: str
    op: str
    kind: str
    name: str
    resource_version: int | None
    at: datetime
