"""Applying sources: each source's newest valid revision into the store, with the
source's status and events; and the poller that starts a pass when a source moves.

An invalid revision changes nothing: the last good one stays applied and the source
reports Stalled with every file:line error. Objects that other writers put in the store
(the REST API, the Kubernetes operator) do not pass through here.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from controller.conditions import set_condition
from controller.loop.messages import plural, short
from controller.sources.base import Snapshot, SourceError
from controller.store import NotFound, Store, StoreError
from schemas.meta import Condition, ConditionStatus, ConditionType

log = logging.getLogger(__name__)

SOURCE_APPLIED = "ApplySucceeded"
"""The source's newest revision was validated and stored as the desired state."""
SOURCE_INVALID = "ValidationFailed"
"""The source's newest revision has invalid manifests; the last good revision stays applied."""
SOURCE_UNREACHABLE = "SourceUnreachable"
"""The source could not be read (repository or directory unavailable)."""


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


class AppliedRevisions:
    """The revision this controller last applied of each source, and when (monotonic s).

    Cross-pass state. Owner: SourceApplier. An entry is renewed each time its source's
    revision is applied (valid, stored); nothing else drops it (one entry per configured
    source, for the controller's life). It lets a pass skip loading a source that still
    holds that revision for `source_resync_s`.
    """

    def __init__(self) -> None:
        self._at: dict[str, tuple[str, float]] = {}

    def note(self, key: str, revision: str) -> None:
        """Remember that `revision` of source `key` was applied now."""
        self._at[key] = (revision, time.monotonic())

    def recent(self, key: str, within_s: float) -> str | None:
        """Return the revision of `key` applied less than `within_s` ago, else None."""
        applied = self._at.get(key)
        if applied is None or time.monotonic() - applied[1] >= within_s:
            return None
        return applied[0]


class SourceApplier:
    """Applies a controller's sources to the store and writes each source's status."""

    def __init__(
        self,
        store: Store,
        sources: Sequence[SourceSetting],
        identity: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.store = store
        self.sources = list(sources)
        self.identity = identity
        self.clock = clock
        self.applied = AppliedRevisions()

    def register(self) -> None:
        """Record each source and its settings in the store (shown by `corral source`)."""
        for setting in self.sources:
            self.store.put_source(
                setting.key_name, setting.type, {**setting.settings, "prune": setting.prune}
            )

    def applied_revisions(self) -> tuple[str | None, ...]:
        """Return the revision the store holds as applied for each source, in order."""
        return tuple(self.store.get_source(s.key_name).last_applied_revision for s in self.sources)

    def sync(self, resync_s: float | None) -> list[Snapshot]:
        """Apply every source's newest valid revision; return the snapshots read.

        A source whose revision has not moved since this controller applied it less than
        `resync_s` ago is not loaded again (None: every source is loaded every time).
        """
        snapshots = []
        for setting in self.sources:
            now = self.clock()
            if self._unchanged(setting, resync_s):
                continue
            try:
                snapshot = setting.source.snapshot()
            except SourceError as exc:
                self._write_status(
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
            if snapshot.ok:
                self._apply(setting, snapshot, now)
            else:
                self._refuse(setting, snapshot, now)
        return snapshots

    def _apply(self, setting: SourceSetting, snapshot: Snapshot, now: datetime) -> None:
        record = self.store.get_source(setting.key_name)
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
            message += "; owned by other sources: " + ", ".join(str(c) for c in result.conflicts)
        self._write_status(
            setting, snapshot, ConditionStatus.TRUE, SOURCE_APPLIED, message, now, applied=True
        )

    def _refuse(self, setting: SourceSetting, snapshot: Snapshot, now: datetime) -> None:
        record = self.store.get_source(setting.key_name)
        errors = [str(e) for e in snapshot.result.errors]
        invalid = f"Revision {short(snapshot.revision)} is invalid ({plural(len(errors), 'error')})"
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
        self._write_status(
            setting,
            snapshot,
            ConditionStatus.FALSE,
            SOURCE_INVALID,
            f"{invalid}; {kept}. First: {errors[0]}",
            now,
            stalled=True,
            errors=errors,
        )

    def _unchanged(self, setting: SourceSetting, resync_s: float | None) -> bool:
        """Return True when the source still holds the revision this controller applied
        less than `resync_s` ago (loading 10,000 manifests again would change nothing).
        Any doubt (no resync interval, unreadable revision) reads the source."""
        if resync_s is None:
            return False
        applied = self.applied.recent(setting.key, resync_s)
        if applied is None:
            return False
        try:
            return setting.source.revision() == applied
        except SourceError:
            return False

    def _write_status(
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
            self.applied.note(setting.key, snapshot.revision)
        elif "appliedRevision" in previous:
            status["appliedRevision"] = previous["appliedRevision"]
        revision = snapshot.revision if snapshot else record.last_attempted_revision
        self.store.record_source_attempt(setting.key_name, revision, status)


def poll_sources(
    settings: Sequence[SourceSetting],
    store: Store,
    trigger: Callable[[], None],
    stop: threading.Event,
) -> None:
    """Call `trigger` whenever a polled source's revision differs from the last one a pass
    attempted, each source every `poll_s`, until `stop` is set. A source that cannot be
    read is left to the next pass to report."""
    due = {s.key: 0.0 for s in settings}
    while not stop.is_set():
        for setting in settings:
            if time.monotonic() < due[setting.key]:
                continue
            due[setting.key] = time.monotonic() + float(setting.poll_s or 0.0)
            try:
                revision = setting.source.revision()
                attempted = store.get_source(setting.key_name).last_attempted_revision
            except (SourceError, StoreError, NotFound) as exc:
                log.debug("polling %s failed: %s", setting.source.name, exc)
                continue
            if revision != attempted:
                trigger()
        stop.wait(max(0.01, min(due.values()) - time.monotonic()))
