"""API test fixtures: a store and token store on SQLite or PostgreSQL, a TestClient, and a
real uvicorn server with TLS (fleet CA) on 127.0.0.1.

PostgreSQL variants get a fresh schema in database `test` at 127.0.0.1:5432 (override with
CORRAL_TEST_PG_URL) and fail, naming the server, when it cannot be reached.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from apikit import LiveApi, Tokens

from controller.api.app import create_app
from controller.api.serve import API_CERT_NAME, ServerThread, build_server
from controller.api.tokens import TokenStore
from controller.store import Store, open_store
from nodeagent.tls import make_ca, make_host_cert
from tests.helpers.db_urls import db_url_fixtures

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


pg_url, db_url = db_url_fixtures("corral_api", "pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with open_store(db_url) as opened:
        yield opened


@pytest.fixture
def tokens(db_url: str, store: Store) -> Iterator[TokenStore]:
    token_store = TokenStore.open(db_url)
    yield token_store
    token_store.close()


@pytest.fixture
def issued(tokens: TokenStore) -> Tokens:
    return Tokens(
        viewer=tokens.create("vera", "viewer"),
        operator=tokens.create("otto", "operator"),
        admin=tokens.create("ada", "admin"),
        scoped=tokens.create("tess", "operator", scope="team=a"),
    )


@pytest.fixture
def client(store: Store, tokens: TokenStore) -> Iterator[TestClient]:
    with TestClient(create_app(store, tokens), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def api_certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a certs dir with the fleet CA and the API server certificate for 127.0.0.1."""
    root = tmp_path_factory.mktemp("certs")
    make_ca(root)
    return make_host_cert(root, API_CERT_NAME, ips=["127.0.0.1"], dns=["localhost"])


@pytest.fixture
def live_api(store: Store, tokens: TokenStore, api_certs: Path) -> Iterator[LiveApi]:
    """Serve the API with uvicorn on 127.0.0.1 (a free port) over TLS; stop it afterwards."""
    server = build_server(create_app(store, tokens), "127.0.0.1:0", api_certs)
    thread = ServerThread(server)
    thread.start()
    try:
        yield LiveApi(f"https://127.0.0.1:{thread.port}", api_certs / "ca.crt")
    finally:
        thread.stop()
