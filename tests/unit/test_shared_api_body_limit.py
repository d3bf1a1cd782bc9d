"""api/body_limit.py: BodyLimitMiddleware around a tiny Starlette app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from api.body_limit import BodyLimitMiddleware, BodyTooLarge

LIMIT = 100


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def client(calls: list[str]) -> TestClient:
    async def echo(request: Request) -> JSONResponse:
        calls.append(request.method)
        body = await request.body()
        return JSONResponse({"received": len(body)})

    app = Starlette(routes=[Route("/upload", echo, methods=["GET", "POST", "PUT", "PATCH"])])
    return TestClient(BodyLimitMiddleware(app, max_bytes=LIMIT))


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_declared_length_over_limit_is_413_problem(client: TestClient, calls: list[str], method: str) -> None:
    response = client.request(method, "/upload", content=b"x" * (LIMIT + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "payload_too_large"
    assert body["status"] == 413
    assert body["limit_bytes"] == LIMIT
    assert body["type"].endswith("/payload_too_large")
    assert calls == []


def test_declared_length_header_alone_is_enough(client: TestClient, calls: list[str]) -> None:
    response = client.post("/upload", content=b"tiny", headers={"content-length": str(10**9)})
    assert response.status_code == 413
    assert calls == []


@pytest.mark.parametrize("size", [0, 1, LIMIT])
def test_under_or_at_limit_passes(client: TestClient, calls: list[str], size: int) -> None:
    response = client.post("/upload", content=b"x" * size)
    assert response.status_code == 200
    assert response.json() == {"received": size}
    assert calls == ["POST"]


def test_get_unaffected(client: TestClient, calls: list[str]) -> None:
    response = client.request("GET", "/upload", content=b"x" * (LIMIT * 5))
    assert response.status_code == 200
    assert response.json() == {"received": LIMIT * 5}
    assert calls == ["GET"]


def test_undeclared_body_over_limit_aborts_with_body_too_large(client: TestClient, calls: list[str]) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(5):
            yield b"x" * 40

    with pytest.raises(BodyTooLarge):
        client.post("/upload", content=chunks())
    assert calls == ["POST"]


def test_undeclared_body_under_limit_passes(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"x" * 30
        yield b"y" * 30

    response = client.post("/upload", content=chunks())
    assert response.status_code == 200
    assert response.json() == {"received": 60}
