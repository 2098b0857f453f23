"""Schemathesis against the controller REST API, called in-process from its OpenAPI document.

Every operation of controller/api/openapi.json (the document the app serves; a test in
tests/api keeps the two equal) gets generated requests, valid and invalid, sent to the
app over ASGI. As admin, responses must be no 5xx, carry a documented status code and
content type, and match their declared schema; without a token and as a viewer, no
request may end in a 5xx. The store is seeded with examples/manifests, and paths name a
seeded object half of the time, so reads and writes reach real objects, not only 404s.

The app has no controller, so actions that would call agents answer at once (no agent
access) instead of waiting for a host. The watch stream is cut to a fraction of a second.

CORRAL_FUZZ_EXAMPLES=N raises the examples per operation (default 8) and adds
schemathesis' coverage phase (boundary and type-mutation cases of every parameter).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from starlette.testclient import TestClient

from controller.api.app import create_app
from controller.api.openapi import OPENAPI_PATH
from controller.api.tokens import TokenStore
from controller.manifests.loader import load_paths
from controller.store import open_store
from schemas.kinds import PLURALS
from tests.helpers.fuzzing import CONFORMANCE, FUZZ, load_schema

MANIFESTS = Path(__file__).resolve().parents[2] / "examples" / "manifests"
WATCH_S = 0.05
"""How long a generated watch stream runs: the default (300 s) would hold every example."""

schema = load_schema(OPENAPI_PATH)
SEEDS = load_paths([MANIFESTS]).resources
SEEDED: dict[str, list[str]] = defaultdict(list)
for _obj in SEEDS:
    SEEDED[PLURALS[_obj.kind]].append(_obj.metadata.name)


@dataclass(frozen=True)
class Served:
    """The app under test and one token per role used."""

    app: FastAPI
    admin: str
    viewer: str


def _seed(app: FastAPI, token: str) -> None:
    """Create every object of examples/manifests through the API."""
    with TestClient(app) as client:
        for obj in SEEDS:
            response = client.post(
                f"/api/v1/{PLURALS[obj.kind]}",
                json=obj.model_dump(mode="json", by_alias=True, exclude_none=True),
                headers={"Authorization": f"Bearer {token}"},
            )
            assert response.status_code == 201, response.text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'corral.db'}"
    with open_store(url) as store:
        tokens = TokenStore.open(url)
        try:
            app = create_app(store, tokens)
            admin = tokens.create("ada", "admin")
            _seed(app, admin)
            yield Served(app, admin, tokens.create("vera", "viewer"))
        finally:
            tokens.close()


@schema.hook
def flatmap_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> Any:
    """Name a seeded object half of the time (not for DELETE: the seeds must outlive it)."""
    operation = context.operation
    assert operation is not None
    if not path_parameters or "name" not in path_parameters or operation.method == "delete":
        return st.just(path_parameters)
    plural = operation.path.split("/")[3]
    names = SEEDED.get(plural)
    if not names:
        return st.just(path_parameters)
    return st.one_of(
        st.just(path_parameters),
        st.sampled_from(names).map(lambda name: {**path_parameters, "name": name}),
    )


def _prepare(case: Any, token: str | None) -> None:
    """Authenticate the case as `token` (or not at all) and bound a watch stream."""
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    case.headers = headers
    if case.path == "/api/v1/watch" and isinstance(case.query, dict):
        timeout = case.query.get("timeoutSeconds")
        if timeout is None or (isinstance(timeout, int | float) and timeout > WATCH_S):
            case.query["timeoutSeconds"] = WATCH_S


@FUZZ
@schema.parametrize()
def test_admin_calls_conform_to_the_document(case: Any, served: Served) -> None:
    _prepare(case, served.admin)
    case.call_and_validate(app=served.app, checks=CONFORMANCE)


@FUZZ
@schema.parametrize()
@pytest.mark.parametrize("role", ["anonymous", "viewer"])
def test_anonymous_and_viewer_calls_never_fail_the_server(
    case: Any, served: Served, role: str
) -> None:
    _prepare(case, served.viewer if role == "viewer" else None)
    case.call_and_validate(app=served.app, checks=[not_a_server_error])
