"""RFC 6902 diffs in plans: what they say, applied, and what they share with the payload."""

from __future__ import annotations

import jsonpatch
import pytest

from controller.plan.diff import changed_fields, make_diff

SPEC = {
    "name": "web-1",
    "memory_mib": 512,
    "a/b": 1,
    "x~y": [1, 2],
    "nics": [{"network": "lan", "mac": None}],
}


@pytest.mark.parametrize("observed", [None, {}])
def test_creating_adds_every_field_in_order_sharing_the_values(observed):
    diff = make_diff(observed, SPEC)

    assert jsonpatch.apply_patch({}, list(diff)) == SPEC
    assert [op["path"] for op in diff] == ["/name", "/memory_mib", "/a~1b", "/x~0y", "/nics"]
    assert {op["op"] for op in diff} == {"add"}
    assert diff[-1]["value"] is SPEC["nics"], "the payload's own value, not a copy"
    by_path = sorted(jsonpatch.make_patch({}, SPEC).patch, key=lambda op: op["path"])
    assert sorted(diff, key=lambda op: op["path"]) == by_path, "what jsonpatch would say"
    assert len(diff) == 5 and diff[1:3] == tuple(list(diff)[1:3])
    assert diff == list(diff) and diff != list(diff)[:-1]
    assert changed_fields(diff) == ["name", "memory_mib", "a~1b", "x~0y", "nics"]


def test_an_update_is_the_minimal_patch():
    observed = {**SPEC, "memory_mib": 256, "nics": [{"network": "lan", "mac": "52:54:00:00:00:01"}]}

    diff = make_diff(observed, SPEC)

    assert jsonpatch.apply_patch(observed, list(diff)) == SPEC
    assert set(changed_fields(diff)) == {"memory_mib", "nics"}


def test_a_model_payload_is_its_json_and_hands_the_model_to_the_executor():
    from agentapi import DomainSpec
    from controller.plan.payload import ModelPayload, payload_model

    spec = DomainSpec(
        name="web-1", uuid="5b2c1f3e-8a4d-4c1e-9f00-1234567890ab", vcpus=2, memory_mib=256
    )
    payload = ModelPayload(spec)

    assert payload == spec.model_dump(mode="json") and dict(payload) == payload.dump()
    assert payload["vcpus"] == 2 and len(payload) == len(payload.dump())
    assert payload_model(payload, DomainSpec) is spec
    assert payload_model(spec.model_dump(mode="json"), DomainSpec) == spec
    diff = make_diff(None, payload)
    assert jsonpatch.apply_patch({}, list(diff)) == spec.model_dump(mode="json")
