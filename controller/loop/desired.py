"""Reading desired state for a pass: the objects and tombstones as Desired, with the
revision they came from, and which SchedulingPolicy governs each host."""

from __future__ import annotations

from collections.abc import Sequence

from controller.plan import Desired, PolicyContext
from controller.store import StoredObject
from schemas.host import Host
from schemas.policy import SchedulingPolicy, SchedulingPolicySpec


def desired_state(
    stored: list[StoredObject],
    deleted: list[StoredObject],
    applied: Sequence[str | None],
) -> Desired:
    """Return the desired objects and tombstones; their revision is the first source's
    applied revision (`applied`, in source order), else the newest any object carries."""
    revisions = sorted({s.revision for s in stored if s.revision})
    revision = next((r for r in applied if r), revisions[-1] if revisions else None)
    return Desired(
        objects={(s.kind, s.name): s.obj for s in stored},
        revision=revision,
        deleted=frozenset((s.kind, s.name) for s in deleted),
    )


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
