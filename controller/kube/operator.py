"""`corral operator`: Corral custom resources feed the store; their .status is written back.

Thin by design: a CR is mapped to the same schema model as a manifest and stored
under source "kube:<namespace>" (the store's ownership rules apply: a name another
source owns is refused and reported on the CR). The reconcile loop does the rest.
A timer copies the object's status from the store to the CR's status subresource.

Deleting a CR: kopf holds its finalizer until `on_delete` returns. With prune on
(the default) the object is deleted from the store, and the loop tears its VM
down; with prune off, or when the CR is annotated corral.dev/protect: "true", the
object stays in the store (its VM keeps running) and the CR goes away.

Not done: Kubernetes Lease leader election for replicas (run one replica, or
kopf's own peering), and no part of this has run against a live API server here.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf

from controller.kube.convert import (
    CustomResourceInvalid,
    resource_from_cr,
    source_for,
    status_for_cr,
    status_patch,
)
from controller.store import Conflict, NotFound, OwnedElsewhere, Store, StoreBusy
from schemas.kinds import PLURALS
from schemas.meta import API_GROUP, PROTECT_ANNOTATION

log = logging.getLogger(__name__)
VERSION = "v1alpha1"
STATUS_INTERVAL_S = 5.0
OWNED_ELSEWHERE = "OwnedBySource"
"""The CR names an object another source (git, directory, another namespace) owns."""
INVALID = "ValidationFailed"
"""The CR's spec does not validate against Corral's schema."""


def _condition(reason: str, message: str) -> dict[str, Any]:
    return {
        "conditions": [
            {
                "type": "Ready",
                "status": "False",
                "reason": reason,
                "message": message,
                "lastTransitionTime": kopf_now(),
            }
        ]
    }


def kopf_now() -> str:
    """Return the current UTC time as Kubernetes writes it (seconds, Z)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


class CorralOperator:
    """The handlers' logic, apart from kopf's registration (callable with plain dicts)."""

    def __init__(self, store: Store, prune: bool = True) -> None:
        self.store = store
        self.prune = prune

    def apply(self, body: Mapping[str, Any], namespace: str | None, patch: Any) -> str:
        """Store the CR's object; return what happened ("stored", "unchanged", "refused").

        An invalid CR raises kopf.PermanentError (retrying cannot help); a busy store
        raises kopf.TemporaryError.
        """
        try:
            obj = resource_from_cr(body)
        except CustomResourceInvalid as exc:
            patch.status.update(_condition(INVALID, str(exc)))
            raise kopf.PermanentError(str(exc)) from exc
        source = source_for(namespace)
        try:
            before = self._version(obj.kind, obj.name)
            stored = self.store.put(obj, source)
        except OwnedElsewhere as exc:
            message = f"{exc.kind}/{exc.name} is owned by source {exc.owner}; this CR is ignored"
            patch.status.update(_condition(OWNED_ELSEWHERE, message))
            log.warning(message)
            return "refused"
        except (StoreBusy, Conflict) as exc:
            raise kopf.TemporaryError(str(exc), delay=2) from exc
        return "unchanged" if before == stored.resource_version else "stored"

    def remove(self, body: Mapping[str, Any], namespace: str | None) -> str:
        """Handle a CR's deletion per prune policy; return "deleted", "kept" or "absent"."""
        meta = body.get("metadata") or {}
        kind, name = body.get("kind", ""), meta.get("name", "")
        try:
            stored = self.store.get(kind, name)
        except NotFound:
            return "absent"
        if stored.source != source_for(namespace):
            return "absent"
        protected = (meta.get("annotations") or {}).get(PROTECT_ANNOTATION) == "true"
        if not self.prune or protected:
            return "kept"
        try:
            self.store.delete(kind, name)
        except NotFound:
            return "absent"
        except (StoreBusy, Conflict) as exc:
            raise kopf.TemporaryError(str(exc), delay=2) from exc
        return "deleted"

    def sync_status(self, body: Mapping[str, Any], namespace: str | None, patch: Any) -> bool:
        """Copy the object's status from the store onto the CR; return whether it changed."""
        meta = body.get("metadata") or {}
        try:
            stored = self.store.get(body.get("kind", ""), meta.get("name", ""))
        except NotFound:
            return False
        if stored.source != source_for(namespace):
            return False
        wanted = status_for_cr(stored.obj)
        if wanted is None:
            return False
        changes = status_patch(body.get("status"), wanted)
        patch.status.update(changes)
        return bool(changes)

    def _version(self, kind: str, name: str) -> int | None:
        try:
            return self.store.get(kind, name).resource_version
        except NotFound:
            return None


def build_registry(operator: CorralOperator) -> kopf.OperatorRegistry:
    """Return a kopf registry with create/update/resume/delete handlers and a status timer
    for every Corral CRD (corral.dev/v1alpha1)."""
    registry = kopf.OperatorRegistry()
    for plural in PLURALS.values():
        where = (API_GROUP, VERSION, plural)

        def on_change(body: Any, namespace: str | None, patch: Any, **_: Any) -> str:
            return operator.apply(body, namespace, patch)

        def on_delete(body: Any, namespace: str | None, **_: Any) -> str:
            return operator.remove(body, namespace)

        def on_timer(body: Any, namespace: str | None, patch: Any, **_: Any) -> None:
            operator.sync_status(body, namespace, patch)

        kopf.on.create(*where, registry=registry, id="store-created")(on_change)
        kopf.on.update(*where, registry=registry, id="store-updated")(on_change)
        kopf.on.resume(*where, registry=registry, id="store-resumed")(on_change)
        kopf.on.delete(*where, registry=registry, id="prune")(on_delete)
        kopf.timer(*where, registry=registry, id="status", interval=STATUS_INTERVAL_S)(on_timer)
    return registry


def run_operator(store: Store, namespaces: list[str], prune: bool = True) -> None:
    """Run the operator until interrupted (needs a reachable Kubernetes API server)."""
    registry = build_registry(CorralOperator(store, prune))
    kopf.run(
        registry=registry,
        namespaces=namespaces or None,
        clusterwide=not namespaces,
        standalone=True,
    )
