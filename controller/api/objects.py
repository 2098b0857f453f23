"""Reading and writing desired objects on behalf of an API caller.

Every write goes through `ObjectService._write`, which decides ownership, checks
the caller's scope and the resourceVersion precondition, then either stores the
object and records an audit event naming the caller, or (dry run) returns the plan
the controller would make and writes nothing.

Ownership: objects created through the API carry source "api:<creator>", and any
API caller may change them (within role and scope). An object owned by a git,
directory or Kubernetes source is refused (409 OwnedBySource) unless an admin
passes force, which takes it over for the API and records where it came from in
the `corral.dev/taken-from` annotation. Operator actions (migrate, drain) are an
allowed override and take such an object over without force; `release` hands it
back to its source, whose next revision then wins again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from controller.api.bodies import (
    SOURCE_ANNOTATION,
    TAKEN_FROM_ANNOTATION,
    Candidate,
    apply_patch,
    parse_object,
)
from controller.api.dryrun import preview_plan
from controller.api.errors import CONFLICT, FORBIDDEN, NOT_FOUND, ApiError, Detail, owned_by_source
from controller.api.rbac import Identity, Role, Verb, restrict
from controller.api.serialize import object_json
from controller.store import Conflict, NotFound, Page, Store, StoredObject
from schemas.kinds import AnyResource
from schemas.meta import LabelSelector

API_SOURCE_PREFIX = "api:"

CREATED = "ApiCreated"
"""An object was created through the API."""
REPLACED = "ApiReplaced"
"""An object was replaced through the API."""
PATCHED = "ApiPatched"
"""An object was patched through the API."""
DELETED = "ApiDeleted"
"""An object was deleted through the API."""
TAKEN_OVER = "TakenFromSource"
"""The API took an object over from its git, directory or Kubernetes source."""
RETURNED = "ReturnedToSource"
"""An object taken over by the API was handed back to its source."""


@dataclass(frozen=True)
class WriteResult:
    """What a write did: the stored object, or for a dry run the would-be object and plan."""

    body: dict[str, Any]
    created: bool = False


@dataclass(frozen=True)
class Owner:
    """Which source a write stores the object under, and whether it takes it over."""

    source: str
    take_over: bool = False
    taken_from: str | None = None


def decide_owner(
    current: StoredObject | None, identity: Identity, force: bool, action: bool = False
) -> Owner:
    """Return the owner a write by `identity` gives the object; raise 409/403 when it may not.

    `action` marks an operator action (migrate, drain): an allowed override of a source.
    """
    if current is None or current.deleted_at is not None:
        return Owner(f"{API_SOURCE_PREFIX}{identity.name}")
    if current.source.startswith(API_SOURCE_PREFIX):
        return Owner(current.source)
    if not (force or action):
        raise owned_by_source(current.kind, current.name, current.source)
    if force and not identity.may(Verb.FORCE):
        raise ApiError(
            403,
            FORBIDDEN,
            f"{identity.name} ({identity.role.value}) may not force: taking "
            f"{current.kind}/{current.name} over from {current.source} needs the admin role",
        )
    return Owner(f"{API_SOURCE_PREFIX}{identity.name}", True, current.source)


FLEET_KINDS = frozenset({"Host", "SchedulingPolicy"})
"""Kinds only an admin writes: a Host's fencing runs commands on the controller and sends
credentials to a BMC; a SchedulingPolicy governs every host it selects. Operators still
drain and undrain hosts (actions)."""


def check_fleet_kind(identity: Identity, kind: str) -> None:
    """Raise 403 unless `identity` may write objects of `kind`."""
    if kind in FLEET_KINDS and identity.role is not Role.ADMIN:
        raise ApiError(
            403,
            FORBIDDEN,
            f"{identity.name} ({identity.role.value}) may not write {kind} objects: "
            "that needs the admin role (a Host's fencing runs on the controller)",
        )


class ObjectService:
    """The API's reads and writes of desired objects for one store."""

    def __init__(self, store: Store, on_write: Callable[[], None] | None = None) -> None:
        self.store = store
        self.on_write = on_write or (lambda: None)

    # --- reads -------------------------------------------------------------------------

    def get(self, identity: Identity, kind: str, name: str) -> StoredObject:
        """Return the object; 404 when absent or outside the caller's scope."""
        try:
            stored = self.store.get(kind, name)
        except NotFound:
            raise ApiError(404, NOT_FOUND, f"{kind}/{name} not found") from None
        if not identity.sees(stored.obj.metadata.labels):
            raise ApiError(404, NOT_FOUND, f"{kind}/{name} not found")
        return stored

    def list(
        self,
        identity: Identity,
        kind: str,
        selector: LabelSelector | None,
        limit: int | None,
        continue_token: str | None,
    ) -> Page:
        """Return one page of the kind's objects the caller may see."""
        return self.store.list(
            kind=kind,
            label_selector=restrict(selector, identity.scope),
            limit=limit,
            continue_token=continue_token,
        )

    def _current(self, kind: str, name: str) -> StoredObject | None:
        try:
            return self.store.get(kind, name)
        except NotFound:
            return None

    # --- writes ------------------------------------------------------------------------

    def create(
        self, identity: Identity, kind: str, doc: Any, *, dry_run: bool = False
    ) -> WriteResult:
        """Create an object (409 if it exists)."""
        candidate = parse_object(kind, doc)
        current = self._current(kind, candidate.obj.metadata.name)
        if current is not None:
            raise _exists(current, identity.sees(current.obj.metadata.labels))
        return self._write(
            identity, candidate.obj, None, 0, CREATED, "created", dry_run=dry_run, force=False
        )

    def replace(
        self,
        identity: Identity,
        kind: str,
        name: str,
        doc: Any,
        *,
        dry_run: bool = False,
        force: bool = False,
    ) -> WriteResult:
        """Replace an object's spec, labels and annotations (precondition: its resourceVersion)."""
        candidate = parse_object(kind, doc, name)
        current = self.get(identity, kind, name)
        candidate = _keep_taken_from(candidate, current)
        return self._write(
            identity,
            candidate.obj,
            current,
            candidate.resource_version,
            REPLACED,
            "replaced",
            dry_run=dry_run,
            force=force,
        )

    def patch(
        self,
        identity: Identity,
        kind: str,
        name: str,
        patch: Any,
        content_type: str,
        *,
        dry_run: bool = False,
        force: bool = False,
    ) -> WriteResult:
        """Patch an object (merge or JSON patch) against the version read; 409 if it moved."""
        current = self.get(identity, kind, name)
        base = object_json(current)
        base.pop("status", None)
        patched = apply_patch(base, patch, content_type)
        candidate = parse_object(kind, patched, name)
        expected = candidate.resource_version or current.resource_version
        return self._write(
            identity,
            candidate.obj,
            current,
            expected,
            PATCHED,
            "patched",
            dry_run=dry_run,
            force=force,
        )

    def delete(
        self,
        identity: Identity,
        kind: str,
        name: str,
        resource_version: int | None,
        *,
        dry_run: bool = False,
        force: bool = False,
    ) -> WriteResult:
        """Delete an object: it becomes a tombstone until its traces on hosts are gone."""
        check_fleet_kind(identity, kind)
        current = self.get(identity, kind, name)
        decide_owner(current, identity, force)
        _check_version(current, resource_version)
        if dry_run:
            return WriteResult(_dry_run_body(object_json(current), self._plan({current.ref: None})))
        try:
            tomb = self.store.delete(kind, name, expected_version=resource_version)
        except Conflict as exc:
            raise _conflict(exc) from exc
        self._audit(identity, tomb, DELETED, "deleted")
        return WriteResult(object_json(tomb))

    def update_spec(
        self,
        identity: Identity,
        kind: str,
        name: str,
        change: Callable[[dict[str, Any]], None],
        reason: str,
        verb: str,
        *,
        dry_run: bool = False,
    ) -> WriteResult:
        """Apply an operator action's change to the object's manifest and store it.

        Actions override a source's ownership (see the module docstring).
        """
        current = self.get(identity, kind, name)
        doc = object_json(current)
        doc.pop("status", None)
        change(doc)
        candidate = parse_object(kind, doc, name)
        return self._write(
            identity,
            candidate.obj,
            current,
            current.resource_version,
            reason,
            verb,
            dry_run=dry_run,
            force=False,
            action=True,
        )

    def release(self, identity: Identity, kind: str, name: str) -> WriteResult:
        """Hand an object the API took over back to the source it came from."""
        current = self.get(identity, kind, name)
        annotations = dict(current.obj.metadata.annotations)
        origin = annotations.pop(TAKEN_FROM_ANNOTATION, None)
        if origin is None or not current.source.startswith(API_SOURCE_PREFIX):
            raise ApiError(
                409,
                CONFLICT,
                f"{current.ref} was not taken over from a source (source {current.source})",
                (Detail(f"metadata.annotations[{TAKEN_FROM_ANNOTATION}]", "absent", "missing"),),
            )
        meta = current.obj.metadata.model_copy(update={"annotations": annotations})
        obj = current.obj.model_copy(update={"metadata": meta})
        try:
            stored = self.store.put(
                obj, origin, expected_version=current.resource_version, take_ownership=True
            )
        except Conflict as exc:
            raise _conflict(exc) from exc
        self._audit(identity, stored, RETURNED, f"returned to {origin}")
        return WriteResult(object_json(stored))

    def _write(
        self,
        identity: Identity,
        obj: AnyResource,
        current: StoredObject | None,
        expected: int | None,
        reason: str,
        verb: str,
        *,
        dry_run: bool,
        force: bool,
        action: bool = False,
    ) -> WriteResult:
        if not action:
            check_fleet_kind(identity, obj.kind)
        if not identity.sees(obj.metadata.labels):
            raise ApiError(
                403,
                FORBIDDEN,
                f"{obj.ref}: its labels lie outside the scope of {identity.name} "
                f"({identity.scope.describe() if identity.scope else ''})",
                (Detail("metadata.labels", "outside the token's scope", "scope"),),
            )
        owner = decide_owner(current, identity, force, action)
        if owner.take_over and owner.taken_from:
            annotations = {**obj.metadata.annotations, TAKEN_FROM_ANNOTATION: owner.taken_from}
            meta = obj.metadata.model_copy(update={"annotations": annotations})
            obj = obj.model_copy(update={"metadata": meta})
        if current is not None:
            _check_version(current, expected)
        if dry_run:
            preview = object_json_of(obj, owner.source, current)
            return WriteResult(_dry_run_body(preview, self._plan({(obj.kind, obj.name): obj})))
        try:
            stored = self.store.put(
                obj, owner.source, expected_version=expected, take_ownership=owner.take_over
            )
        except Conflict as exc:
            raise _conflict(exc) from exc
        if owner.take_over:
            self.store.record_event(
                obj.kind,
                obj.name,
                "Warning",
                TAKEN_OVER,
                f"{identity.name} took {obj.ref} over from {owner.taken_from}; that source no "
                "longer updates it until it is released",
                component="api",
                identity=identity.name,
            )
        self._audit(identity, stored, reason, verb)
        return WriteResult(object_json(stored), created=current is None)

    def _audit(self, identity: Identity, stored: StoredObject, reason: str, verb: str) -> None:
        self.store.record_event(
            stored.kind,
            stored.name,
            "Normal",
            reason,
            f"{stored.ref} {verb} through the API by {identity.name} ({identity.role.value}); "
            f"generation {stored.generation}, resourceVersion {stored.resource_version}",
            component="api",
            identity=identity.name,
        )
        self.on_write()

    def _plan(self, changes: dict[tuple[str, str], AnyResource | None]) -> dict[str, Any]:
        return preview_plan(self.store, changes)


def object_json_of(obj: AnyResource, source: str, current: StoredObject | None) -> dict[str, Any]:
    """Return how `obj` would look once stored (versions of `current`, if any)."""
    doc = obj.model_dump(mode="json", by_alias=True, exclude_none=True)
    doc.pop("status", None)
    meta = doc["metadata"]
    meta["annotations"] = {**meta.get("annotations", {}), SOURCE_ANNOTATION: source}
    if current is not None:
        meta["resourceVersion"] = str(current.resource_version)
        meta["generation"] = current.generation
    return doc


def _dry_run_body(obj: dict[str, Any], plan: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "DryRun", "dryRun": True, "object": obj, "plan": plan}


def _check_version(current: StoredObject, expected: int | None) -> None:
    if expected is not None and expected != current.resource_version:
        raise _conflict(Conflict(current.kind, current.name, expected, current.resource_version))


def _exists(current: StoredObject, visible: bool) -> ApiError:
    """Return the 409 for creating an existing object (details only if the caller sees it)."""
    message = f"{current.ref} already exists"
    if visible:
        message += (
            f" (resourceVersion {current.resource_version}, source {current.source}); "
            "replace or patch it instead"
        )
    return ApiError(409, CONFLICT, message, (Detail("metadata.name", "already exists", "exists"),))


def _conflict(exc: Conflict) -> ApiError:
    return ApiError(
        409,
        CONFLICT,
        f"{exc}; read the object again and retry",
        (Detail("metadata.resourceVersion", str(exc), "conflict"),),
    )


def _keep_taken_from(candidate: Candidate, current: StoredObject) -> Candidate:
    """Keep the taken-from mark a replace body left out (it is the API's bookkeeping)."""
    origin = current.obj.metadata.annotations.get(TAKEN_FROM_ANNOTATION)
    if origin is None or TAKEN_FROM_ANNOTATION in candidate.obj.metadata.annotations:
        return candidate
    annotations = {**candidate.obj.metadata.annotations, TAKEN_FROM_ANNOTATION: origin}
    meta = candidate.obj.metadata.model_copy(update={"annotations": annotations})
    return Candidate(
        candidate.obj.model_copy(update={"metadata": meta}), candidate.resource_version
    )
