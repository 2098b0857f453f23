"""Generated input never makes the API answer 5xx (a hypothesis stand-in for schemathesis).

Bodies are arbitrary JSON, manifest-shaped JSON with random fields, and random patches,
sent to every kind's write endpoints; query parameters are random text.
"""

from __future__ import annotations

from typing import Any

import pytest
from apikit import Tokens, bearer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.kinds import PLURALS

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
manifests = st.fixed_dictionaries(
    {
        "apiVersion": st.sampled_from(["corral.dev/v1alpha1", "v1", ""]),
        "kind": st.sampled_from([*PLURALS, "Pod"]),
        "metadata": st.fixed_dictionaries(
            {"name": names | st.text(max_size=5)},
            optional={
                "labels": st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
                "resourceVersion": st.text(max_size=4) | st.integers(),
            },
        ),
        "spec": st.dictionaries(
            st.sampled_from(["cpus", "memory", "address", "mode", "pool", "size", "disks", "x"]),
            json_values,
            max_size=4,
        ),
    }
)
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(plural=st.sampled_from(sorted(PLURALS.values())), body=json_values | manifests)
def test_create_never_500s(client, issued: Tokens, plural: str, body: Any) -> None:
    response = client.post(f"/api/v1/{plural}", json=body, headers=bearer(issued.admin))
    assert response.status_code < 500, response.text
    assert response.json()["kind"] in ("Status", *PLURALS) or response.status_code == 201


@FUZZ
@given(
    patch=json_values | manifests,
    content_type=st.sampled_from(
        ["application/merge-patch+json", "application/json-patch+json", "text/plain"]
    ),
    dry_run=st.booleans(),
)
def test_patch_and_replace_never_500(
    client, issued: Tokens, patch: Any, content_type: str, dry_run: bool
) -> None:
    auth = bearer(issued.admin)
    client.post(
        "/api/v1/virtualmachines",
        json={
            "kind": "VirtualMachine",
            "metadata": {"name": "t"},
            "spec": {"cpus": 1, "memory": "1Gi"},
        },
        headers=auth,
    )
    params = {"dryRun": "true"} if dry_run else {}
    patched = client.patch(
        "/api/v1/virtualmachines/t",
        json=patch,
        params=params,
        headers={**auth, "content-type": content_type},
    )
    assert patched.status_code < 500, patched.text
    replaced = client.put("/api/v1/virtualmachines/t", json=patch, params=params, headers=auth)
    assert replaced.status_code < 500, replaced.text


@FUZZ
@given(
    params=st.dictionaries(
        st.sampled_from(["labelSelector", "limit", "continue", "kind", "since", "type", "name"]),
        st.text(max_size=12),
        max_size=3,
    ),
    path=st.sampled_from(
        ["/api/v1/virtualmachines", "/api/v1/hosts", "/api/v1/events", "/api/v1/plans"]
    ),
)
def test_queries_never_500(client, issued: Tokens, params: dict[str, str], path: str) -> None:
    response = client.get(path, params=params, headers=bearer(issued.viewer))
    assert response.status_code < 500, response.text
