"""Schemathesis over the OpenAPI schema, with and without a key: no 5xx, and responses match the schema."""

from __future__ import annotations

import pytest
import redis
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from shared.scopes import Scope
from shared.settings import Settings
from shared.tables import Tenant
from tests.integration.conftest import make_key

FUZZ_TENANT = "fuzz-inc"


@pytest.fixture(scope="module")
def api_schema(settings: Settings, engine: Engine):  # type: ignore[no-untyped-def]
    make_key(engine, FUZZ_TENANT, [Scope.admin])
    with Session(engine) as session:  # the fuzzer sends hundreds of requests a minute: lift the rate limit
        tenant = session.get(Tenant, FUZZ_TENANT)
        assert tenant is not None
        tenant.requests_per_minute = 100_000
        session.add(tenant)
        session.commit()
    # Its own Redis database: the session's worker never sees the fuzzer's jobs, so none of them is still
    # being processed when the next test starts.
    broker = settings.resolved_broker_url.rsplit("/", 1)[0] + "/13"
    isolated = settings.model_copy(update={"broker_url": broker})
    yield schemathesis.openapi.from_asgi("/openapi.json", create_app(isolated))
    redis.Redis.from_url(broker).flushdb()


@pytest.fixture(scope="module")
def fuzz_key(engine: Engine) -> str:
    return make_key(engine, FUZZ_TENANT, [Scope.admin])


# Refusals that turn on what no schema can state, so the generic "schema-valid request rejected" check is
# replaced by this precise one: whether uploaded bytes are an image, whether a callback URL resolves to a
# public address (SSRF guard), whether the tenant's quota has room, whether an opaque cursor is one we issued,
# whether one date comes before another.
OPAQUE_REJECTIONS = {
    "POST /v1/jobs": {"unsupported_media_type", "invalid_callback_url", "payload_too_large",
                      "storage_quota_exceeded"},
    "GET /v1/jobs": {"invalid_cursor"},
    # A recorded-at range that ends before it starts, or an offset that takes a time off the calendar.
    "POST /v1/subject-requests": {"invalid_subject"},
}


def fuzz(schema, headers: dict[str, str]) -> list[str]:  # type: ignore[no-untyped-def]
    """Run every operation's generated cases; returns the operations exercised."""
    exercised = []
    for result in schema.get_all_operations():
        operation = result.ok()

        # schemathesis' pytest plugin does not load under this pytest; drive Hypothesis directly instead.
        @given(case=operation.as_strategy())
        @hyp_settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck),
                      database=None)
        def check(case) -> None:  # type: ignore[no-untyped-def]
            opaque = OPAQUE_REJECTIONS.get(case.operation.label)
            if opaque is None:
                case.call_and_validate(headers=headers)
                return
            response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
            if response.status_code in (400, 413, 415, 422):
                assert response.json()["code"] in opaque, (response.text, case.as_curl_command())

        check()
        exercised.append(operation.label)
    return exercised


def test_without_a_key(api_schema) -> None:  # type: ignore[no-untyped-def]
    assert "POST /v1/jobs" in fuzz(api_schema, {})


def test_with_a_key(api_schema, fuzz_key: str) -> None:  # type: ignore[no-untyped-def]
    assert "GET /v1/jobs/{job_id}/result" in fuzz(api_schema, {"Authorization": f"Bearer {fuzz_key}"})
