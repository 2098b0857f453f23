"""Pure mapping between a Corral custom resource's body and the schema models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from controller.manifests import format_loc
from controller.manifests.messages import describe_error
from schemas.kinds import KINDS, AnyResource
from schemas.meta import API_VERSION

FOREIGN_ANNOTATION_PREFIXES = ("kopf.zalando.org/", "kubectl.kubernetes.io/")
"""Annotations Kubernetes tools keep on a CR; they are not part of the desired object."""


class CustomResourceInvalid(ValueError):
    """A custom resource that does not validate; `fields` are the offending paths."""

    def __init__(self, ref: str, problems: list[tuple[str, str]]) -> None:
        self.ref = ref
        self.fields = [f for f, _ in problems]
        text = "; ".join(f"{f}: {m}" for f, m in problems)
        super().__init__(f"{ref} is invalid: {text}")


def source_for(namespace: str | None) -> str:
    """Return the owner key objects from a namespace carry: "kube:<namespace>"."""
    return f"kube:{namespace or 'cluster'}"


def resource_from_cr(body: Mapping[str, Any]) -> AnyResource:
    """Return the schema model of a custom resource's body.

    Kubernetes bookkeeping (uid, resourceVersion, managedFields, namespace, finalizers,
    kopf's and kubectl's annotations) and status are dropped; spec, name, labels and
    the remaining annotations are validated exactly as a manifest would be, and a bad
    field is described in a manifest error's words.
    Raises CustomResourceInvalid naming every bad field.
    """
    kind = body.get("kind")
    meta = body.get("metadata") or {}
    ref = f"{kind}/{meta.get('name')}"
    if kind not in KINDS:
        raise CustomResourceInvalid(ref, [("kind", f"not a Corral kind: {kind!r}")])
    if body.get("apiVersion") != API_VERSION:
        raise CustomResourceInvalid(
            ref, [("apiVersion", f"expected {API_VERSION}, got {body.get('apiVersion')!r}")]
        )
    annotations = {
        k: v
        for k, v in (meta.get("annotations") or {}).items()
        if not k.startswith(FOREIGN_ANNOTATION_PREFIXES)
    }
    doc = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {
            "name": meta.get("name"),
            "labels": dict(meta.get("labels") or {}),
            "annotations": annotations,
        },
        "spec": body.get("spec") or {},
    }
    model = KINDS[kind]
    try:
        return model.model_validate(doc)
    except ValidationError as exc:
        problems = [
            (format_loc(tuple(err["loc"])), describe_error(err, model))
            for err in exc.errors(include_url=False)
        ]
        raise CustomResourceInvalid(ref, problems) from exc


def status_for_cr(obj: AnyResource) -> dict[str, Any] | None:
    """Return the .status to write on the custom resource of a stored object (None before
    the first pass)."""
    status = obj.status
    if status is None:
        return None
    return status.model_dump(mode="json", by_alias=True, exclude_none=True)


def status_patch(current: Mapping[str, Any] | None, wanted: Mapping[str, Any]) -> dict[str, Any]:
    """Return the merge patch turning the CR's `current` status into `wanted` ({} if equal)."""
    current = dict(current or {})
    patch: dict[str, Any] = {k: v for k, v in wanted.items() if current.get(k) != v}
    patch.update({k: None for k in current if k not in wanted})
    return patch
