"""Corral's store: desired objects, status, observed hosts, events, plans, sources, changes.

SQLite by default (a file under the state dir), PostgreSQL by URL; the schema is
kept by alembic migrations that `open_store` runs itself.

A reconcile pass uses it like this::

    store = open_store(url)                                  # StoreUnavailable if down
    result = store.apply_snapshot("git:origin", sha, objects, prune=True)
    desired = store.list().items                             # live objects + status
    deleted = store.list_deleted()                           # tombstones to clean up
    hosts = store.list_observed()                            # last HostState + leases
    plan_id = store.record_plan(plan.actions, "git:origin", sha)
    store.record_outcome(plan_id, 0, ok=True)
    store.put_status(kind, name, status)                     # False: nothing changed
    store.purge(kind, name)                                  # once its plan is empty
    seq = store.revision(); ...; store.changes_since(seq)    # what changed since

Deleted objects stay as tombstones (`deleted_at` set) until purged, so the loop can
still remove their traces from hosts; their status goes with them.
"""

from controller.store.engine import default_state_dir, redact, resolve_url
from controller.store.errors import (
    Conflict,
    Fenced,
    InvalidInput,
    NotFound,
    OwnedElsewhere,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)
from controller.store.records import (
    ActionOutcome,
    ApplyResult,
    Change,
    EventRecord,
    ObjectRef,
    ObservedHost,
    OwnershipConflict,
    Page,
    PlanRecord,
    SourceRecord,
    StoredObject,
    StoredStatus,
    source_key,
)
from controller.store.store import Store, open_store

__all__ = [
    "ActionOutcome",
    "ApplyResult",
    "Change",
    "Conflict",
    "EventRecord",
    "Fenced",
    "InvalidInput",
    "NotFound",
    "ObjectRef",
    "ObservedHost",
    "OwnedElsewhere",
    "OwnershipConflict",
    "Page",
    "PlanRecord",
    "SourceRecord",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "StoredObject",
    "StoredStatus",
    "default_state_dir",
    "open_store",
    "redact",
    "resolve_url",
    "source_key",
]
