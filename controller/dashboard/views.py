"""Pure: shape stored objects, events and plans into what the dashboard pages show. No I/O."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from controller.plan.admission import FleetAdmission, fleet_admission
from controller.store import StoredObject

NOT_READY_LIMIT = 200


@dataclass(frozen=True)
class Bar:
    """A capacity bar: used of total, in the unit shown."""

    label: str
    used: float
    total: float
    unit: str

    @property
    def percent(self) -> int:
        return min(100, round(self.used / self.total * 100)) if self.total else 0


@dataclass(frozen=True)
class HostRow:
    name: str
    phase: str
    maintenance: bool
    vms: int
    bars: tuple[Bar, ...]
    ready: str
    message: str


@dataclass(frozen=True)
class NotReady:
    kind: str
    name: str
    reason: str
    message: str


@dataclass(frozen=True)
class Overview:
    hosts: list[HostRow]
    phases: list[tuple[str, int]]
    not_ready: list[NotReady]
    vm_count: int
    admission: FleetAdmission | None = None


def _ready(stored: StoredObject) -> tuple[str, str, str]:
    status = stored.obj.status
    cond = status.condition("Ready") if status else None
    if cond is None:
        return "Unknown", "NotObserved", "the controller has not written a status yet"
    return cond.status.value, cond.reason, cond.message


def host_row(stored: StoredObject) -> HostRow:
    """Return a host's overview row with CPU and memory bars (allocated of allocatable)."""
    status = stored.obj.status
    bars: list[Bar] = []
    if status is not None and status.allocatable is not None:
        used = status.allocated
        bars.append(
            Bar("CPU", (used.cpu if used else 0) / 1000, status.allocatable.cpu / 1000, "cores")
        )
        bars.append(
            Bar(
                "Memory",
                (used.memory if used else 0) / 2**30,
                status.allocatable.memory / 2**30,
                "GiB",
            )
        )
    ready, _reason, message = _ready(stored)
    return HostRow(
        name=stored.name,
        phase=status.phase.value if status else "Pending",
        maintenance=bool(stored.obj.spec.maintenance),
        vms=status.vms if status else 0,
        bars=tuple(bars),
        ready=ready,
        message=message,
    )


def overview(objects: Iterable[StoredObject]) -> Overview:
    """Return the fleet overview: host rows, HA admission, VM counts by phase, everything not
    Ready."""
    items = list(objects)
    hosts = [host_row(o) for o in items if o.kind == "Host"]
    vms = [o for o in items if o.kind == "VirtualMachine"]
    phases = Counter(o.obj.status.phase.value if o.obj.status else "Pending" for o in vms)
    not_ready = []
    for o in items:
        ready, reason, message = _ready(o)
        if ready != "True":
            not_ready.append(NotReady(o.kind, o.name, reason, message))
    return Overview(
        hosts=sorted(hosts, key=lambda h: h.name),
        phases=sorted(phases.items()),
        not_ready=not_ready[:NOT_READY_LIMIT],
        vm_count=len(vms),
        admission=fleet_admission(
            (o.name, o.obj.status.ha_admission if o.obj.status else None)
            for o in items
            if o.kind == "Host"
        ),
    )


def status_doc(stored: StoredObject) -> dict[str, Any]:
    """Return the object's status as JSON data (empty before the first pass)."""
    status = stored.obj.status
    return status.model_dump(mode="json", by_alias=True, exclude_none=True) if status else {}


def spec_doc(stored: StoredObject) -> dict[str, Any]:
    """Return the object's spec as JSON data."""
    return stored.obj.spec.model_dump(mode="json", by_alias=True, exclude_none=True)


def actions_on(plans: Sequence[Any], ref: str, limit: int = 20) -> list[dict[str, Any]]:
    """Return the plan actions that targeted `ref` ("Kind/name"), newest first.

    For a host ("Host/name") that includes every action run on it (a VM migrated off it).
    """
    kind, _, name = ref.partition("/")
    found: list[dict[str, Any]] = []
    for plan in plans:
        for action, outcome in zip(plan.actions, plan.outcomes, strict=True):
            on_host = kind == "Host" and action.get("host") == name
            if action.get("target") != ref and not on_host:
                continue
            found.append(
                {
                    "plan": plan.id,
                    "at": plan.created_at,
                    "revision": plan.revision,
                    "type": action.get("type"),
                    "target": action.get("target"),
                    "host": action.get("host"),
                    "reason": action.get("reason"),
                    "message": action.get("message"),
                    "diff": action.get("diff") or [],
                    "ok": None if outcome is None else outcome.ok,
                    "error": None if outcome is None else outcome.error,
                }
            )
            if len(found) >= limit:
                return found
    return found


@dataclass(frozen=True)
class RevisionRow:
    """The plans of one source revision: when, what, and how it went."""

    source: str
    revision: str
    author: str | None
    subject: str | None
    plans: int
    actions: int
    failed: int
    pending: int
    summaries: list[str]
    first: Any
    last: Any

    @property
    def outcome(self) -> str:
        if self.failed:
            return "Failed"
        return "Pending" if self.pending else "Succeeded"


def revisions(plans: Sequence[Any], commits: dict[str, tuple[str, str]]) -> list[RevisionRow]:
    """Group plans (newest first) by (source, revision); `commits` maps revision -> (author,
    subject) where the source is a git repository the dashboard could read."""
    groups: dict[tuple[str, str], list[Any]] = {}
    for plan in plans:
        key = (plan.source or "-", plan.revision or "-")
        groups.setdefault(key, []).append(plan)
    rows = []
    for (source, revision), group in groups.items():
        outcomes = [o for p in group for o in p.outcomes]
        author, subject = commits.get(revision, (None, None))
        rows.append(
            RevisionRow(
                source=source,
                revision=revision,
                author=author,
                subject=subject,
                plans=len(group),
                actions=len(outcomes),
                failed=sum(1 for o in outcomes if o is not None and not o.ok),
                pending=sum(1 for o in outcomes if o is None),
                summaries=[p.summary for p in group if p.summary][:5],
                first=group[-1].created_at,
                last=group[0].created_at,
            )
        )
    return rows
