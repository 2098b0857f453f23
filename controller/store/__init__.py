"""Corral's store: desired objects, status, observed hosts, events, plans, sources, changes.

SQLite by default (a file under the state dir), PostgreSQL by URL; the schema is
kept by alembic migrations that `open_store` runs itself.
"""

from controller.store.engine import default_state_dir, redact, resolve_url
from controller.store.errors import (
    Conflict,
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
