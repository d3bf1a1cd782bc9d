"""/readyz says "degraded", with the reason, when Redis could lose the queue or the workers stop taking jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from api.readiness import stall_seconds
from shared import job_claims
from shared.settings import Settings
from shared.tables import Job
from shared.timeutil import utcnow
from tests.reliability.conftest import insert_job
from tests.support.services import RedisServer

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]


class ConfiguredRedis(RedisServer):
    """The throwaway Redis with extra directives (later ones override its `--save ""` and `--appendonly no`)."""

    def __init__(self, extra: tuple[str, ...]) -> None:
        self.extra = list(extra)
        super().__init__()

    def _command(self) -> list[str]:
        return [*super()._command(), *self.extra]


@pytest.fixture
def redis_server(request: pytest.FixtureRequest) -> Iterator[RedisServer]:
    server = ConfiguredRedis(getattr(request, "param", ()))
    try:
        server.start()
        yield server
    finally:
        server.close()


def ready(client: TestClient) -> dict:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize(("redis_server", "status", "durability"), [
    ((), "degraded", "degraded: persistence is off"),
    (("--appendonly", "yes"), "ready", "ok"),
    (("--save", "900 1"), "ready", "ok"),
    (("--appendonly", "yes", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"), "degraded",
     "degraded: maxmemory-policy allkeys-lru may evict queue keys"),
    (("--appendonly", "yes", "--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"), "ready", "ok"),
    (("--rename-command", "CONFIG", ""), "ready", "unknown: CONFIG is not available"),
], indirect=["redis_server"], ids=["no-persistence", "aof", "rdb", "allkeys-lru", "volatile-lru", "no-config"])
def test_broker_durability(client: TestClient, status: str, durability: str) -> None:
    body = ready(client)
    assert body["status"] == status
    assert body["checks"]["broker_durability"].startswith(durability), body
    assert {k: v for k, v in body["checks"].items() if k != "broker_durability"} == {
        "database": "ok", "broker": "ok", "storage": "ok", "queue": "ok"}


@pytest.mark.parametrize("redis_server", [("--appendonly", "yes")], indirect=True)
def test_jobs_waiting_with_no_claim_for_too_long_is_degraded(
        client: TestClient, engine: Engine, settings: Settings) -> None:
    stall = stall_seconds(settings)
    long_ago = utcnow() - timedelta(seconds=stall + 30)
    waiting = insert_job(engine, settings)
    assert ready(client)["checks"]["queue"] == "ok"  # it has only just been queued
    with engine.begin() as conn:  # as if it had waited past the threshold, with nobody claiming anything
        conn.execute(update(Job).where(col(Job.id) == waiting).values(created_at=long_ago, updated_at=long_ago))
    body = ready(client)
    assert body["status"] == "degraded"
    assert body["checks"]["queue"] == (
        f"degraded: jobs have waited over {stall:.0f} s and no job was claimed in that time")
    assert waiting.hex not in str(body) and str(waiting) not in str(body)  # says nothing about anyone's jobs

    # A worker busy on another job (a live lease): a backlog, not a stall.
    busy = insert_job(engine, settings)
    claim = job_claims.claim(engine, busy, lease_seconds=60)
    assert claim is not None
    assert ready(client) == {"status": "ready", "checks": {"database": "ok", "broker": "ok", "storage": "ok",
                                                           "broker_durability": "ok", "queue": "ok"}}
    # Its worker died long ago (lease expired) but another claim was made recently: still consuming.
    with engine.begin() as conn:
        conn.execute(update(Job).where(col(Job.id) == busy).values(lease_expires_at=long_ago))
    assert ready(client)["checks"]["queue"] == "ok"
    # ...and once that claim, too, is older than the threshold, nobody is taking jobs.
    with engine.begin() as conn:
        conn.execute(update(Job).where(col(Job.id) == busy).values(started_at=long_ago))
    assert ready(client)["checks"]["queue"].startswith("degraded: ")
