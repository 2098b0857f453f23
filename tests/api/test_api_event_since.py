"""GET /api/v1/events?since= needs a timezone: a naive time is a 400, not a store error."""

from __future__ import annotations

import pytest
from apikit import Tokens, bearer

pytestmark = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


def test_naive_since_is_a_bad_request(client, issued: Tokens) -> None:
    response = client.get(
        "/api/v1/events", params={"since": "9999-12-31T23:59:59"}, headers=bearer(issued.viewer)
    )
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["reason"] == "BadRequest"
    assert body["details"] == [
        {"field": "query.since", "message": "no timezone", "type": "timezone_aware"}
    ]


@pytest.mark.parametrize("since", ["2024-01-01T00:00:00Z", "2024-01-01T02:00:00+02:00"])
def test_aware_since_lists_events(client, issued: Tokens, since: str) -> None:
    response = client.get("/api/v1/events", params={"since": since}, headers=bearer(issued.viewer))
    assert response.status_code == 200, response.text
    assert response.json() == {"kind": "EventList", "items": []}
