"""The agent's request-size limit, on the real agent served by uvicorn over loopback."""

from __future__ import annotations

import httpx
import pytest

from controller.agents import AgentNotFound
from nodeagent.server import MAX_BODY_BYTES


def test_oversized_verb_body_is_413_invalid_spec(client, spec) -> None:
    padded = spec.model_dump(mode="json") | {"pad": "x" * MAX_BODY_BYTES}
    response = httpx.put(f"{client.base_url}/v1/domains/{spec.name}", json=padded, timeout=30)
    assert response.status_code == 413
    error = response.json()
    assert (error["type"], error["field"], error["retryable"]) == ("invalid_spec", "body", False)
    assert f"the limit is {MAX_BODY_BYTES} bytes" in error["message"]
    assert all(d.name != spec.name for d in client.get_state().domains)


def test_oversized_chunked_body_is_413(client, spec) -> None:
    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = httpx.put(f"{client.base_url}/v1/domains/{spec.name}", content=chunks(), timeout=30)
    assert response.status_code == 413


def test_verbs_within_the_limit_still_work(client, spec) -> None:
    assert client.ensure_domain_defined(spec).created
    assert any(d.name == spec.name for d in client.get_state().domains)


def test_volume_content_upload_is_not_limited(client) -> None:
    """An upload streams to disk: it passes the limit and reaches the verb (no such pool)."""

    def chunks():
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"\0" * 65536

    with pytest.raises(AgentNotFound):
        client.upload_volume("no-such-pool", "v", chunks())
