"""Authentication and the RBAC matrix over real HTTPS (uvicorn on 127.0.0.1, fleet CA)."""

from __future__ import annotations

import ssl

import httpx
import pytest
from apikit import LiveApi, Tokens, host, vm, vm_doc
from sqlalchemy import select

from controller.api.tokens import TokenStore, tokens_table
from controller.store import Store

RBAC = [
    # (role, verb, expected status)
    ("viewer", "read", 200),
    ("viewer", "write", 403),
    ("viewer", "action", 403),
    ("viewer", "force", 403),
    ("operator", "read", 200),
    ("operator", "write", 201),
    ("operator", "action", 202),
    ("operator", "force", 403),
    ("admin", "read", 200),
    ("admin", "write", 201),
    ("admin", "action", 202),
    ("admin", "force", 200),
]


def _request(client: httpx.Client, verb: str) -> httpx.Response:
    if verb == "read":
        return client.get("/api/v1/virtualmachines")
    if verb == "write":
        return client.post("/api/v1/virtualmachines", json=vm_doc("new-vm"))
    if verb == "action":
        return client.post("/api/v1/reconcile")
    assert verb == "force"
    body = {**vm_doc("from-git", cpus=2), "metadata": {"name": "from-git"}}
    return client.put("/api/v1/virtualmachines/from-git?force=true", json=body)


@pytest.mark.parametrize(("role", "verb", "expected"), RBAC, ids=[f"{r}-{v}" for r, v, _ in RBAC])
def test_rbac_matrix(
    live_api: LiveApi, issued: Tokens, store: Store, role: str, verb: str, expected: int
) -> None:
    store.apply_snapshot("git:origin", "abc123", [vm("from-git")])
    with live_api.client(issued.of(role)) as client:
        response = _request(client, verb)
    assert response.status_code == expected, response.text
    if expected == 403:
        assert response.json()["reason"] == "Forbidden"
        assert store.get("VirtualMachine", "from-git").source == "git:origin"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer corral_0123456789abcdef_notthesecretnotthesecret",
        "Bearer garbage",
        "Basic dXNlcjpwYXNz",
        "Bearer",
    ],
    ids=["missing", "wrong-secret", "malformed", "basic-auth", "empty"],
)
def test_bad_tokens_get_the_same_401(live_api: LiveApi, store: Store, header: str | None) -> None:
    store.put(host("h1"), "git:origin")
    headers = {"Authorization": header} if header else {}
    with live_api.client() as client:
        for path in ("/api/v1/hosts/h1", "/api/v1/hosts/nope", "/metrics", "/api/v1/watch"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401
            assert response.json() == {
                "kind": "Status",
                "code": 401,
                "reason": "Unauthorized",
                "message": "a valid bearer token is required",
                "details": [],
            }
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_health_needs_no_token_and_nothing_else_is_open(live_api: LiveApi, issued: Tokens) -> None:
    with live_api.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/api/v1/openapi.json").status_code == 401
    with live_api.client(issued.viewer) as client:
        spec = client.get("/api/v1/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if path == "/healthz":
                assert operation["security"] == []
            else:
                assert "security" not in operation, (method, path)
    assert spec["security"] == [{"bearer": []}]


def test_revoked_token_is_refused(live_api: LiveApi, tokens: TokenStore) -> None:
    token = tokens.create("temp", "viewer")
    with live_api.client(token) as client:
        assert client.get("/api/v1/whoami").json()["name"] == "temp"
        assert tokens.revoke("temp")
        # Revocation also clears this process's cache; another process sees it within 2 s.
        assert client.get("/api/v1/whoami").status_code == 401


def test_tokens_are_hashed_at_rest(tokens: TokenStore, store: Store) -> None:
    token = tokens.create("hashme", "admin")
    secret = token.rsplit("_", 1)[1]
    with tokens._engine.connect() as conn:
        rows = conn.execute(select(tokens_table)).all()
    assert all(secret not in str(tuple(row)) for row in rows)
    assert [r.name for r in rows] == ["hashme"]


def test_whoami_reports_role_verbs_and_scope(live_api: LiveApi, issued: Tokens) -> None:
    with live_api.client(issued.scoped) as client:
        assert client.get("/api/v1/whoami").json() == {
            "name": "tess",
            "role": "operator",
            "verbs": ["action", "read", "write"],
            "scope": "team=a",
        }


def test_tls_is_verified_against_the_fleet_ca(live_api: LiveApi, issued: Tokens) -> None:
    with (
        httpx.Client(base_url=live_api.url, verify=ssl.create_default_context()) as untrusting,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.get("/healthz")
    plain = live_api.url.replace("https://", "http://")
    with httpx.Client(base_url=plain) as cleartext, pytest.raises(httpx.HTTPError):
        cleartext.get("/api/v1/whoami", headers={"Authorization": f"Bearer {issued.admin}"})


FLEET_WRITES = [
    ("operator", "Host", 403),
    ("operator", "SchedulingPolicy", 403),
    ("admin", "Host", 201),
    ("admin", "SchedulingPolicy", 201),
]


@pytest.mark.parametrize(
    ("role", "kind", "expected"), FLEET_WRITES, ids=[f"{r}-{k}" for r, k, _ in FLEET_WRITES]
)
def test_fleet_kinds_are_written_by_admins_only(
    client, issued: Tokens, store: Store, role: str, kind: str, expected: int
) -> None:
    spec = (
        {"address": "https://127.0.0.1:9", "fencing": {"method": "command", "command": ["true"]}}
        if kind == "Host"
        else {}
    )
    plural = "hosts" if kind == "Host" else "schedulingpolicies"
    doc = {
        "apiVersion": "corral.dev/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x1"},
        "spec": spec,
    }
    response = client.post(
        f"/api/v1/{plural}", json=doc, headers={"Authorization": f"Bearer {issued.of(role)}"}
    )
    assert response.status_code == expected, response.text
    if expected == 403:
        assert store.list(kind=kind).items == []
