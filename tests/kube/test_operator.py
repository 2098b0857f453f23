"""The kopf operator's handlers, invoked the way kopf invokes them, with realistic CR bodies.

What this does not cover: kopf's watch loop, finalizer patching and status-subresource
writes against a live Kubernetes API server (none can run here).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import kopf
import pytest
from ruamel.yaml import YAML

from controller.kube import CorralOperator, build_registry, resource_from_cr
from controller.kube.convert import CustomResourceInvalid, status_patch
from controller.store import Store
from schemas.kinds import PLURALS

CRD_DIR = Path(__file__).resolve().parents[2] / "deploy" / "crds"

VM_CR: dict[str, Any] = {
    "apiVersion": "corral.dev/v1alpha1",
    "kind": "VirtualMachine",
    "metadata": {
        "name": "web-1",
        "namespace": "team-a",
        "uid": "5d0c3a4e-8f7a-4f0e-9b1b-6f2f0f3c9a11",
        "resourceVersion": "48213",
        "generation": 3,
        "creationTimestamp": "2026-01-01T10:00:00Z",
        "labels": {"app": "web"},
        "annotations": {
            "kubectl.kubernetes.io/last-applied-configuration": '{"kind":"VirtualMachine"}',
            "kopf.zalando.org/last-handled-configuration": '{"spec":{}}',
            "owner": "team-a",
        },
        "finalizers": ["kopf.zalando.org/KopfFinalizerMarker"],
        "managedFields": [{"manager": "kubectl", "operation": "Apply"}],
    },
    "spec": {"cpus": 2, "memory": "1Gi", "runStrategy": "Always"},
}


def cr(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(VM_CR)
    for key, value in changes.items():
        body[key] = value
    return body


def _reason(h: Any) -> str:
    """Return a changing handler's trigger: create, update, delete, or resume (initial)."""
    return h.reason.value if h.reason is not None else ("resume" if h.initial else "any")


def handler(registry: kopf.OperatorRegistry, plural: str, reason: str) -> Any:
    for h in registry._changing.get_all_handlers():
        if h.selector.any_name == plural and _reason(h) == reason:
            return h
    raise AssertionError(f"no {reason} handler for {plural}")


def test_registry_covers_every_crd() -> None:
    registry = build_registry(CorralOperator(store=None))  # type: ignore[arg-type]
    changing = registry._changing.get_all_handlers()
    timers = registry._spawning.get_all_handlers()
    for plural in PLURALS.values():
        reasons = {_reason(h) for h in changing if h.selector.any_name == plural}
        assert reasons == {"create", "update", "resume", "delete"}, plural
        assert [t.id for t in timers if t.selector.any_name == plural] == ["status"]
        assert all(h.selector.group == "corral.dev" for h in changing)
    deletes = [h for h in changing if _reason(h) == "delete"]
    assert all(h.requires_finalizer for h in deletes)
    assert {p.stem.split("_", 1)[1] for p in CRD_DIR.glob("*.yaml")} == set(PLURALS.values())


def test_conversion_keeps_the_manifest_and_drops_kubernetes_bookkeeping() -> None:
    obj = resource_from_cr(VM_CR)
    assert obj.to_manifest() == {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": "VirtualMachine",
        "metadata": {"name": "web-1", "labels": {"app": "web"}, "annotations": {"owner": "team-a"}},
        "spec": {"cpus": 2, "memory": "1Gi", "runStrategy": "Always"},
    }


def test_invalid_cr_names_every_field() -> None:
    body = cr(spec={"cpus": 0, "memory": "lots", "gpu": True})
    with pytest.raises(CustomResourceInvalid) as caught:
        resource_from_cr(body)
    assert sorted(caught.value.fields) == ["spec.cpus", "spec.gpu", "spec.memory"]


def test_create_handler_stores_under_the_namespace_source(store: Store) -> None:
    registry = build_registry(CorralOperator(store))
    patch = kopf.Patch()
    result = handler(registry, "virtualmachines", "create").fn(
        body=VM_CR, namespace="team-a", name="web-1", patch=patch, logger=None
    )
    assert result == "stored"
    stored = store.get("VirtualMachine", "web-1")
    assert stored.source == "kube:team-a"
    assert stored.obj.spec.cpus == 2
    again = handler(registry, "virtualmachines", "resume").fn(
        body=VM_CR, namespace="team-a", patch=kopf.Patch()
    )
    assert again == "unchanged"
    changed = cr(spec={"cpus": 4, "memory": "1Gi"})
    assert (
        handler(registry, "virtualmachines", "update").fn(
            body=changed, namespace="team-a", patch=kopf.Patch()
        )
        == "stored"
    )
    assert store.get("VirtualMachine", "web-1").generation == 2


def test_invalid_cr_is_a_permanent_error_with_a_status(store: Store) -> None:
    operator = CorralOperator(store)
    patch = kopf.Patch()
    with pytest.raises(kopf.PermanentError, match=r"spec\.cpus"):
        operator.apply(cr(spec={"cpus": 0, "memory": "1Gi"}), "team-a", patch)
    [condition] = patch["status"]["conditions"]
    assert (condition["type"], condition["status"], condition["reason"]) == (
        "Ready",
        "False",
        "ValidationFailed",
    )


def test_a_name_owned_by_git_or_another_namespace_is_refused(store: Store) -> None:
    operator = CorralOperator(store)
    operator.apply(VM_CR, "team-a", kopf.Patch())
    patch = kopf.Patch()
    assert operator.apply(VM_CR, "team-b", patch) == "refused"
    assert patch["status"]["conditions"][0]["reason"] == "OwnedBySource"
    assert "kube:team-a" in patch["status"]["conditions"][0]["message"]
    assert store.get("VirtualMachine", "web-1").source == "kube:team-a"


@pytest.mark.parametrize(
    ("prune", "annotations", "expected", "left_in_store"),
    [
        (True, {}, "deleted", False),
        (False, {}, "kept", True),
        (True, {"corral.dev/protect": "true"}, "kept", True),
    ],
    ids=["prune", "no-prune", "protected"],
)
def test_delete_follows_the_prune_policy(
    store: Store, prune: bool, annotations: dict[str, str], expected: str, left_in_store: bool
) -> None:
    body = cr()
    body["metadata"]["annotations"] = annotations
    registry = build_registry(CorralOperator(store, prune=prune))
    handler(registry, "virtualmachines", "create").fn(
        body=body, namespace="team-a", patch=kopf.Patch()
    )
    result = handler(registry, "virtualmachines", "delete").fn(body=body, namespace="team-a")
    assert result == expected
    live = [s.name for s in store.list(kind="VirtualMachine").items]
    assert live == (["web-1"] if left_in_store else [])
    if not left_in_store:
        assert [t.name for t in store.list_deleted("VirtualMachine")] == ["web-1"]


def test_delete_of_a_cr_whose_object_another_source_owns_touches_nothing(store: Store) -> None:
    store.put(resource_from_cr(VM_CR), "git:origin")
    assert CorralOperator(store).remove(VM_CR, "team-a") == "absent"
    assert store.get("VirtualMachine", "web-1").source == "git:origin"


def _crd_status_schema(plural: str) -> dict[str, Any]:
    doc = YAML(typ="safe").load((CRD_DIR / f"corral.dev_{plural}.yaml").read_text())
    return doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]


def _without_k8s_extensions(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {
            k: _without_k8s_extensions(v)
            for k, v in schema.items()
            if not k.startswith("x-kubernetes")
        }
    if isinstance(schema, list):
        return [_without_k8s_extensions(v) for v in schema]
    return schema


def test_status_timer_writes_the_store_status_matching_the_crd(store: Store) -> None:
    registry = build_registry(CorralOperator(store))
    handler(registry, "virtualmachines", "create").fn(
        body=VM_CR, namespace="team-a", patch=kopf.Patch()
    )
    store.put_status(
        "VirtualMachine",
        "web-1",
        {
            "observedGeneration": 1,
            "phase": "Running",
            "host": "host-a",
            "ips": ["10.0.0.5"],
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Running",
                    "message": "Running on host-a",
                    "observedGeneration": 1,
                    "lastTransitionTime": "2026-01-01T10:05:00Z",
                }
            ],
        },
    )
    [timer] = [
        t for t in registry._spawning.get_all_handlers() if t.selector.any_name == "virtualmachines"
    ]
    patch = kopf.Patch()
    timer.fn(body=VM_CR, namespace="team-a", patch=patch)
    status = patch["status"]
    assert (status["phase"], status["host"]) == ("Running", "host-a")
    assert status["conditions"][0]["reason"] == "Running"
    jsonschema.validate(status, _without_k8s_extensions(_crd_status_schema("virtualmachines")))
    # Once the CR carries that status, the timer writes nothing.
    current = cr(status=dict(status))
    quiet = kopf.Patch()
    timer.fn(body=current, namespace="team-a", patch=quiet)
    assert dict(quiet) == {}


def test_status_patch_removes_what_the_store_no_longer_has() -> None:
    assert status_patch({"phase": "Running", "host": "a"}, {"phase": "Stopped"}) == {
        "phase": "Stopped",
        "host": None,
    }
    assert status_patch({"phase": "Running"}, {"phase": "Running"}) == {}
