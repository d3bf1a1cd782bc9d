"""`/metrics` for Prometheus: the job table, the queues and data-subject deadlines, across all tenants.

Not an API-key endpoint: keys belong to a tenant, and these numbers are every tenant's together. Prometheus
presents `VEIL_METRICS_TOKEN` as a bearer token instead; with no token set the endpoint is off (404), so a
deployment never exposes it by accident.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from api.deps import SettingsDep
from api.problems import Problem
from shared.metrics_broker import queue_depths
from shared.metrics_collector import VeilCollector

router = APIRouter(tags=["metrics"])


def _registry(request: Request) -> CollectorRegistry:
    state = request.app.state
    registry: CollectorRegistry | None = getattr(state, "metrics_registry", None)
    if registry is None:
        # Our own registry, not the process-global one: only scrape-time gauges, one set per app.
        registry = CollectorRegistry(auto_describe=False)
        registry.register(VeilCollector(state.engine, lambda: queue_depths(state.celery)))
        state.metrics_registry = registry
    return registry


def _check_token(request: Request, expected: str) -> None:
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(presented.encode(), expected.encode()):
        raise Problem(401, "unauthorized", "/metrics needs Authorization: Bearer <VEIL_METRICS_TOKEN>.",
                      headers={"WWW-Authenticate": 'Bearer realm="veil-metrics"'})


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, settings: SettingsDep) -> Response:
    token = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else ""
    if not token:  # unset or empty (compose passes an empty one through): never "any bearer will do"
        raise Problem(404, "metrics_disabled", "/metrics is off: set VEIL_METRICS_TOKEN to turn it on.")
    _check_token(request, token)
    return Response(generate_latest(_registry(request)), media_type=CONTENT_TYPE_LATEST)
