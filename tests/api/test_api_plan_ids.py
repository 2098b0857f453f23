"""A plan id the store cannot hold is a bad request naming the parameter, not an internal error."""

from __future__ import annotations

import pytest
from apikit import Tokens, bearer

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.mark.parametrize(
    ("plan_id", "code"),
    [
        pytest.param(2**63, 400, id="above-64-bit"),
        pytest.param(0, 400, id="zero"),
        pytest.param(-(2**63), 400, id="negative"),
        pytest.param(2**63 - 1, 404, id="largest-64-bit"),
    ],
)
def test_plan_id_out_of_range(client, issued: Tokens, plan_id: int, code: int) -> None:
    response = client.get(f"/api/v1/plans/{plan_id}", headers=bearer(issued.viewer))
    assert response.status_code == code, response.text
    body = response.json()
    assert body["kind"] == "Status"
    if code == 400:
        assert body["details"][0]["field"] == "path.plan_id"
