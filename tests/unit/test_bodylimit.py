"""The request-size limit (nodeagent.bodylimit) in front of a small real Starlette app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from nodeagent.bodylimit import BodySizeLimit

LIMIT = 1000


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"size": len(body), "head": body[:8].decode()})


def make_client() -> TestClient:
    app = Starlette(
        routes=[Route("/echo", echo, methods=["POST"]), Route("/upload", echo, methods=["PUT"])]
    )
    app.add_middleware(
        BodySizeLimit,
        max_bytes=LIMIT,
        error_body=lambda message: {"error": "too_large", "message": message},
        exempt=lambda method, path: method == "PUT" and path == "/upload",
    )
    return TestClient(app)


def chunks(total: int, size: int = 300):
    sent = 0
    while sent < total:
        part = min(size, total - sent)
        yield b"y" * part
        sent += part


@pytest.mark.parametrize(
    ("size", "chunked", "status"),
    [
        pytest.param(0, False, 200, id="empty"),
        pytest.param(LIMIT, False, 200, id="at-limit"),
        pytest.param(LIMIT + 1, False, 413, id="one-over"),
        pytest.param(LIMIT, True, 200, id="chunked-at-limit"),
        pytest.param(LIMIT + 1, True, 413, id="chunked-one-over"),
        pytest.param(50 * LIMIT, True, 413, id="chunked-far-over"),
    ],
)
def test_limit(size: int, chunked: bool, status: int) -> None:
    content = chunks(size) if chunked else b"y" * size
    response = make_client().post("/echo", content=content)
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"size": size, "head": "y" * min(size, 8)}
    else:
        body = response.json()
        assert body["error"] == "too_large"
        assert f"the limit is {LIMIT} bytes" in body["message"]


def test_declared_length_is_refused_without_reading_the_body() -> None:
    response = make_client().post("/echo", content=b"y" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["message"].startswith(f"the body is {LIMIT + 1} bytes")


def test_exempt_route_takes_a_large_body() -> None:
    response = make_client().put("/upload", content=chunks(20 * LIMIT))
    assert response.status_code == 200
    assert response.json()["size"] == 20 * LIMIT


def test_the_body_reaches_the_app_unchanged() -> None:
    body = bytes(range(256)) * 3
    app_seen: list[bytes] = []

    async def keep(request: Request) -> JSONResponse:
        app_seen.append(await request.body())
        return JSONResponse({})

    app = Starlette(routes=[Route("/keep", keep, methods=["POST"])])
    app.add_middleware(BodySizeLimit, max_bytes=LIMIT, error_body=lambda m: {"message": m})
    assert TestClient(app).post("/keep", content=body).status_code == 200
    assert app_seen == [body]
