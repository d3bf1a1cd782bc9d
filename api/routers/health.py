"""Liveness and readiness. Neither needs a key: they say nothing about anyone's jobs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.engine import Engine

from api import readiness
from api.problems import PROBLEM_JSON
from api.schemas import Health, problem_responses

if TYPE_CHECKING:
    from celery import Celery

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Health, responses=problem_responses(503))
def readyz(request: Request) -> Health | JSONResponse:
    state = request.app.state
    checks = {"database": _check(lambda: _ping_db(state.engine)),
              "broker": _check(lambda: _ping_broker(state.celery)),
              "storage": _check(state.storage.check)}
    if all(v == "ok" for v in checks.values()):
        # Advisory checks: a broker that may lose queued messages, or workers that stopped taking jobs,
        # make the service degraded, not unready (200, so the API stays in the load balancer).
        settings = state.settings
        if settings.resolved_broker_url.startswith(readiness.REDIS_SCHEMES):
            checks["broker_durability"] = readiness.broker_durability(settings.resolved_broker_url)
        checks["queue"] = readiness.queue_health(state.engine, readiness.stall_seconds(settings))
        degraded = any(v.startswith("degraded") for v in checks.values())
        return Health(status="degraded" if degraded else "ready", checks=checks)
    body = {"type": "https://veil.dev/problems/not_ready", "title": "A dependency is unavailable.",
            "status": 503, "code": "not_ready", "checks": checks}
    return JSONResponse(body, status_code=503, media_type=PROBLEM_JSON)


def _check(probe: Callable[[], object]) -> str:
    try:
        probe()
    except Exception as exc:  # any failure means not ready; the type is enough to act on
        return f"error: {type(exc).__name__}"
    return "ok"


def _ping_db(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _ping_broker(celery: Celery) -> None:
    with celery.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=2)
