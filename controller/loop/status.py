"""Writing status and events: each object's status from the pass's verdicts, an event when
its Ready or Stalled condition changes, and the purge of tombstones whose traces are gone."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from controller.plan import Plan
from controller.plan.model import ObjectVerdict
from controller.status import build_statuses
from controller.store import Store, StoredObject
from controller.store.status import STATUS_CHUNK
from schemas.meta import ConditionStatus, ConditionType, ObjectStatus

Key = tuple[str, str]
Event = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class SettledStatus:
    """A stored status a pass rebuilt unchanged, with the inputs it was rebuilt from."""

    status: ObjectStatus
    verdict: ObjectVerdict
    generation: int | None
    revision: str | None


class StatusWriter:
    """Writes the statuses a pass's verdicts give, and the events their changes make.

    Cross-pass state: `settled`, the statuses the last full pass found already right. An
    object whose stored status is still that very one, for an equal verdict, generation
    and revision, is not built again. Owner: this writer. Each full pass keeps only the
    entries it found settled again; every other entry is dropped (quiet passes write
    nothing and leave it as it is).
    """

    def __init__(self, store: Store, identity: str, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.identity = identity
        self.clock = clock
        self.settled: dict[Key, SettledStatus] = {}

    def write(
        self,
        stored: list[StoredObject],
        deleted: list[StoredObject],
        verdicts: Plan,
        failures: dict[Key, str],
    ) -> list[str]:
        """Write the statuses that changed, in chunks, with their events; purge tombstones
        with no pending action and a Ready verdict. Return the objects not Ready, sorted."""
        by_key = {(s.kind, s.name): s for s in stored}
        now = self.clock()
        live = {k: v for k, v in verdicts.verdicts.items() if k in by_key}
        settled = {
            k: by_key[k].obj.status
            for k, v in live.items()
            if k not in failures and self._is_settled(k, by_key[k], v)
        }
        todo = [(k, v) for k, v in live.items() if k not in settled]
        self.settled = {k: v for k, v in self.settled.items() if k in settled}
        not_ready = [f"{k[0]}/{k[1]}" for k, s in settled.items() if not is_ready(s)]
        # Built, compared and written a chunk at a time: 10,000 new statuses and their
        # JSON never exist all at once.
        for at in range(0, len(todo), STATUS_CHUNK):
            not_ready += self._write_chunk(
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

    def _write_chunk(
        self,
        verdicts: dict[Key, ObjectVerdict],
        by_key: dict[Key, StoredObject],
        live: dict[Key, ObjectVerdict],
        failures: dict[Key, str],
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
        changed: dict[Key, dict] = {}
        changes: list[Event] = []
        for key, status in statuses.items():
            previous = by_key[key].obj.status
            # An equal status would be hashed and compared by the store only to be
            # skipped: at 10,000 objects that is most of a no-op pass.
            if status != previous:
                changed[key] = status.model_dump(mode="json", by_alias=True)
            elif key not in failures:
                record = by_key[key]
                self.settled[key] = SettledStatus(
                    previous, live[key], record.generation, record.revision
                )
            if not is_ready(status):
                not_ready.append(f"{key[0]}/{key[1]}")
            event = condition_event(key, previous, status)
            if event is not None:
                changes.append(event)
        if changed:
            self.store.put_statuses(changed)
        if changes:
            self.store.record_events(changes, identity=self.identity)
        return not_ready

    def _is_settled(self, key: Key, record: StoredObject, verdict: ObjectVerdict) -> bool:
        """Return True when the object's stored status is the very one the last pass found
        already right, for an equal verdict, generation and revision: building it again
        would give an equal status whatever the time (a condition's lastTransitionTime
        moves only when the condition does)."""
        seen = self.settled.get(key)
        return (
            seen is not None
            and seen.status is record.obj.status
            and seen.generation == record.generation
            and seen.revision == record.revision
            and (seen.verdict is verdict or seen.verdict == verdict)
        )


def condition_event(key: Key, previous: ObjectStatus | None, status: ObjectStatus) -> Event | None:
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


def is_ready(status: ObjectStatus) -> bool:
    """Return True when the status's Ready condition is True."""
    ready = status.condition(ConditionType.READY.value)
    return ready is not None and ready.status is ConditionStatus.TRUE
