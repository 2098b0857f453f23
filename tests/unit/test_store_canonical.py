"""Canonical forms and hashes that decide whether a stored object changed."""

from __future__ import annotations

from typing import Any

import pytest

from controller.store import InvalidInput
from controller.store.canonical import content_hash, decode_object, prepare_object, to_document
from schemas import VirtualMachine, VirtualMachineStatus


def vm(metadata: dict[str, Any] | None = None, **spec: Any) -> VirtualMachine:
    return VirtualMachine.model_validate(
        {
            "kind": "VirtualMachine",
            "metadata": {"name": "web-1", **(metadata or {})},
            "spec": {"cpus": 2, "memory": "1Gi", **spec},
        }
    )


def test_content_hash_ignores_key_order() -> None:
    assert content_hash({"a": 1, "b": {"c": 2, "d": 3}}) == content_hash(
        {"b": {"d": 3, "c": 2}, "a": 1}
    )
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_the_stored_manifest_drops_status_and_store_owned_metadata() -> None:
    obj = vm({"generation": 4, "resourceVersion": "9"})
    obj.status = VirtualMachineStatus(phase="Running")
    prepared = prepare_object(obj)
    assert prepared.manifest == {
        "kind": "VirtualMachine",
        "metadata": {"name": "web-1"},
        "spec": {"cpus": 2, "memory": "1Gi"},
    }
    assert prepared.manifest_hash == prepare_object(vm()).manifest_hash


@pytest.mark.parametrize(
    ("left", "right", "same_meaning"),
    [
        pytest.param(vm(), vm(memory="1024Mi"), True, id="quantity-spelling"),
        pytest.param(vm(), vm(runStrategy="Always"), True, id="explicit-default"),
        pytest.param(
            vm({"labels": {"a": "1", "b": "2"}}),
            vm({"labels": {"b": "2", "a": "1"}}),
            True,
            id="label-order",
        ),
        pytest.param(vm(), vm(memory="2Gi"), False, id="memory"),
        pytest.param(vm(), vm({"labels": {"tier": "web"}}), False, id="label"),
        pytest.param(vm(), vm({"annotations": {"note": "x"}}), False, id="annotation"),
    ],
)
def test_spec_hash_changes_only_with_meaning(
    left: VirtualMachine, right: VirtualMachine, same_meaning: bool
) -> None:
    assert (prepare_object(left).spec_hash == prepare_object(right).spec_hash) is same_meaning


def test_protect_annotation_is_recognised() -> None:
    assert prepare_object(vm({"annotations": {"corral.dev/protect": "true"}})).protected is True
    assert prepare_object(vm({"annotations": {"corral.dev/protect": "no"}})).protected is False


def test_decoding_fills_store_metadata_and_status() -> None:
    obj = decode_object(
        "VirtualMachine", prepare_object(vm()).manifest, 3, 7, {"phase": "Running", "host": "h1"}
    )
    assert (obj.metadata.generation, obj.metadata.resource_version) == (3, "7")
    assert obj.status is not None and (obj.status.phase, obj.status.host) == ("Running", "h1")


def test_non_objects_are_refused() -> None:
    with pytest.raises(InvalidInput) as info:
        prepare_object({"kind": "VirtualMachine"})  # type: ignore[arg-type]
    assert info.value.field == "kind"


def test_documents_are_plain_json() -> None:
    assert to_document({"when": vm().spec.run_strategy, "pair": (1, 2)}, "x") == {
        "when": "Always",
        "pair": [1, 2],
    }
    with pytest.raises(InvalidInput, match="plan: not JSON-serialisable"):
        to_document({"x": object()}, "plan")
