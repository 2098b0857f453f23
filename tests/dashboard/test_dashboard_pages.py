"""Dashboard pages over the real app (in-process): sessions, escaping, refused actions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from controller.api import TokenStore, create_app
from controller.dashboard.session import COOKIE, csrf_token
from controller.store import Store, open_store
from schemas.host import Host
from schemas.vm import VirtualMachine

EVIL = '<script>alert("x")</script>'


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Store, TokenStore, TestClient]]:
    url = f"sqlite:///{tmp_path / 'corral.db'}"
    store = open_store(url)
    tokens = TokenStore.open(url)
    store.put(
        Host.model_validate({"metadata": {"name": "h1"}, "spec": {"address": "http://h1:1"}}),
        "dir:fleet",
    )
    store.put(
        VirtualMachine.model_validate(
            {
                "metadata": {"name": "web", "labels": {"app": "x"}},
                "spec": {"cpus": 1, "memory": "1Gi"},
            }
        ),
        "dir:fleet",
    )
    store.record_event("VirtualMachine", "web", "Warning", "ActionFailed", f"agent said {EVIL}")
    with TestClient(create_app(store, tokens)) as client:
        yield store, tokens, client
    tokens.close()
    store.close()


def _session(client: TestClient, token: str) -> None:
    client.cookies.set(COOKIE, token, path="/ui")


@pytest.mark.parametrize(
    "path", ["/ui/", "/ui/hosts/h1", "/ui/vms/web", "/ui/revisions", "/ui/watch"]
)
def test_pages_need_a_session(served, path: str) -> None:
    _store, _tokens, client = served
    answer = client.get(path, follow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/ui/login?next=")


def test_login_sets_an_httponly_strict_cookie_and_refuses_bad_tokens(served) -> None:
    _store, tokens, client = served
    token = tokens.create("ann", "viewer")
    bad = client.post("/ui/login", data={"token": "corral_nope", "next": "/ui/"})
    assert bad.status_code == 401
    assert "not valid" in bad.text
    good = client.post(
        "/ui/login", data={"token": token, "next": "//evil.example/"}, follow_redirects=False
    )
    assert good.status_code == 303
    assert good.headers["location"] == "/ui/"
    cookie = good.headers["set-cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie


def test_user_text_is_escaped(served) -> None:
    _store, tokens, client = served
    _session(client, tokens.create("ann", "viewer"))
    page = client.get("/ui/vms/web").text
    assert EVIL not in page
    assert "agent said &lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page
    login = client.get("/ui/login", params={"next": '/ui/"><script>'}).text
    assert '"><script>' not in login


def test_a_viewer_is_refused_by_the_api_not_just_the_page(served) -> None:
    store, tokens, client = served
    token = tokens.create("vic", "viewer")
    _session(client, token)
    assert "Drain" not in client.get("/ui/hosts/h1").text
    answer = client.post("/ui/hosts/h1/drain", data={"csrf": csrf_token(token), "back": "/ui/"})
    assert answer.status_code == 403
    assert "vic (viewer) may not action: that needs the operator role" in answer.text
    assert store.get("Host", "h1").obj.spec.maintenance is False


def test_an_operator_drains_with_the_form_token_only(served) -> None:
    store, tokens, client = served
    token = tokens.create("olga", "operator")
    _session(client, token)
    forged = client.post("/ui/hosts/h1/drain", data={"back": "/ui/"})
    assert forged.status_code == 403
    assert store.get("Host", "h1").obj.spec.maintenance is False
    done = client.post(
        "/ui/hosts/h1/drain",
        data={"csrf": csrf_token(token), "back": "/ui/hosts/h1"},
        follow_redirects=False,
    )
    assert (done.status_code, done.headers["location"]) == (303, "/ui/hosts/h1")
    assert store.get("Host", "h1").obj.spec.maintenance is True
    events = [e.reason for e in store.list_events("Host", "h1")]
    assert "DrainRequested" in events


def test_a_scoped_token_sees_only_its_objects(served) -> None:
    _store, tokens, client = served
    _session(client, tokens.create("sam", "viewer", scope="app=y"))
    hidden = client.get("/ui/vms/web")
    assert hidden.status_code == 404
    assert "VirtualMachine/web not found" in hidden.text
    assert hidden.headers["content-type"].startswith("text/html")
    assert "web" not in client.get("/ui/?fragment=live").text


def test_history_views_need_a_token(served) -> None:
    _store, tokens, client = served
    assert client.get("/api/v1/history/rollups").status_code == 401
    token = tokens.create("ann", "viewer")
    answer = client.get(
        "/api/v1/history/rollups",
        params={"period": "day"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.json() == {"kind": "RollupList", "items": []}
