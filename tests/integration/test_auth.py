"""Keys and tenants: nobody reads, lists or deletes footage that is not theirs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from shared import api_keys
from shared.scopes import Scope
from shared.settings import Settings
from shared.tables import AuditEvent, Tenant
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg
from tests.integration.conftest import TENANT, WorkerProcess, make_key, stored_keys, wait_for_status

JOB_ROUTES = [("GET", "/v1/jobs"), ("GET", "/v1/jobs/{id}"), ("GET", "/v1/jobs/{id}/result"),
              ("GET", "/v1/jobs/{id}/detections"), ("DELETE", "/v1/jobs/{id}"), ("POST", "/v1/jobs")]


@pytest.fixture(scope="module")
def anon(settings: Settings) -> TestClient:
    return TestClient(create_app(settings))


def call(client: TestClient, method: str, path: str, job_id: str, key: str | None):  # type: ignore[no-untyped-def]
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    url = path.replace("{id}", job_id)
    if method == "POST":
        return client.post(url, files={"file": ("a.jpg", astronaut_jpeg())}, headers=headers)
    return client.request(method, url, headers=headers)


@pytest.mark.parametrize(("method", "path"), JOB_ROUTES)
@pytest.mark.parametrize("key", [None, "", "not-a-key", "veil_0123456789abcdef_wrong", "Basic dXNlcjpwYXNz"])
def test_every_job_endpoint_needs_a_valid_key(anon: TestClient, method: str, path: str, key: str | None,
                                              settings: Settings) -> None:
    response = call(anon, method, path, str(uuid.uuid4()), key)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert stored_keys(settings) == []


def test_health_checks_need_no_key(anon: TestClient) -> None:
    assert anon.get("/healthz").status_code == 200
    assert anon.get("/readyz").status_code == 200


def test_revoked_and_expired_keys_are_refused(anon: TestClient, engine: Engine) -> None:
    revoked = make_key(engine, TENANT, [Scope.jobs_read])
    expired = make_key(engine, TENANT, [Scope.jobs_read], expires_at=utcnow() - timedelta(seconds=1))
    assert anon.get("/v1/jobs", headers={"Authorization": f"Bearer {revoked}"}).status_code == 200
    with Session(engine) as session:
        api_keys.revoke(session=session, key_id=revoked.split("_")[1])
    for key in (revoked, expired):
        response = anon.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
        assert response.status_code == 401 and response.json()["code"] == "invalid_key"


def test_a_disabled_tenant_is_locked_out(anon: TestClient, engine: Engine) -> None:
    key = make_key(engine, "frozen-co", [Scope.admin])
    with Session(engine) as session:
        tenant = session.get(Tenant, "frozen-co")
        assert tenant is not None
        tenant.disabled = True
        session.add(tenant)
        session.commit()
    assert anon.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"}).status_code == 401


def test_scopes_are_enforced(anon: TestClient, engine: Engine, client: TestClient, worker: WorkerProcess) -> None:
    reader = {"Authorization": f"Bearer {make_key(engine, TENANT, [Scope.jobs_read])}"}
    writer = {"Authorization": f"Bearer {make_key(engine, TENANT, [Scope.jobs_write])}"}
    gdpr = {"Authorization": f"Bearer {make_key(engine, TENANT, [Scope.subject_requests])}"}
    admin = {"Authorization": f"Bearer {make_key(engine, TENANT, [Scope.admin])}"}
    job = client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}).json()
    wait_for_status(client, job["id"], {"succeeded"})

    no_write = anon.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}, headers=reader)
    assert no_write.status_code == 403 and no_write.json()["code"] == "missing_scope"
    assert no_write.json()["required_scope"] == "jobs:write"
    assert anon.delete(f"/v1/jobs/{job['id']}", headers=reader).status_code == 403
    assert anon.get(f"/v1/jobs/{job['id']}", headers=writer).status_code == 403
    assert anon.get(f"/v1/jobs/{job['id']}/result", headers=gdpr).status_code == 403
    assert anon.get(f"/v1/jobs/{job['id']}", headers=reader).status_code == 200
    assert anon.get(f"/v1/jobs/{job['id']}/result", headers=admin).status_code == 200


def test_another_tenants_jobs_do_not_exist_for_you(anon: TestClient, engine: Engine, client: TestClient,
                                                   worker: WorkerProcess, settings: Settings) -> None:
    theirs = client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())},
                         headers={"Idempotency-Key": "shared-key-1"}).json()
    wait_for_status(client, theirs["id"], {"succeeded"})
    rival = {"Authorization": f"Bearer {make_key(engine, 'rival-gmbh', [Scope.admin])}"}
    for method, path in JOB_ROUTES[1:5]:
        response = call(anon, method, path, theirs["id"], rival["Authorization"].removeprefix("Bearer "))
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] == "job_not_found"
    assert anon.get("/v1/jobs", headers=rival).json()["items"] == []
    # The same idempotency key in another tenant is another job, not a peek at acme's.
    mine = anon.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())},
                     headers={**rival, "Idempotency-Key": "shared-key-1"})
    assert mine.status_code == 202 and mine.json()["id"] != theirs["id"]
    # And acme's job and files are untouched by the rival's DELETE attempt.
    assert client.get(f"/v1/jobs/{theirs['id']}/result").status_code == 200


def test_requests_per_minute_limit(settings: Settings, engine: Engine) -> None:
    key = make_key(engine, "chatty-ag", [Scope.jobs_read])
    with Session(engine) as session:
        tenant = session.get(Tenant, "chatty-ag")
        assert tenant is not None
        tenant.requests_per_minute = 3
        session.add(tenant)
        session.commit()
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        codes = [client.get("/v1/jobs").status_code for _ in range(5)]
        limited = client.get("/v1/jobs")
    # The window may roll over mid-test: at most one window's worth got through per minute boundary.
    assert codes.count(429) >= 1 and limited.status_code == 429
    assert limited.json()["code"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60


def _tenant_with(engine: Engine, tenant_id: str, **limits: int) -> str:
    key = make_key(engine, tenant_id, [Scope.jobs_write, Scope.jobs_read])
    with Session(engine) as session:
        tenant = session.get(Tenant, tenant_id)
        assert tenant is not None
        for name, value in limits.items():
            setattr(tenant, name, value)
        session.add(tenant)
        session.commit()
    return key


def test_active_job_limit(settings: Settings, engine: Engine) -> None:
    key = _tenant_with(engine, "busy-bv", max_active_jobs=1)
    # No worker consumes here: the first job stays queued and holds the only slot.
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}).status_code == 202
        second = client.post("/v1/jobs", files={"file": ("b.jpg", astronaut_jpeg())})
    assert second.status_code == 429 and second.json()["code"] == "too_many_active_jobs"
    assert second.headers["retry-after"]


def test_storage_quota_and_tenant_upload_limit(settings: Settings, engine: Engine) -> None:
    data = astronaut_jpeg()
    key = _tenant_with(engine, "small-sa", storage_quota_bytes=len(data) + 100, max_upload_bytes=len(data) + 10)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/jobs", files={"file": ("a.jpg", data)}).status_code == 202
        full = client.post("/v1/jobs", files={"file": ("b.jpg", data)})
        assert full.status_code == 413 and full.json()["code"] == "storage_quota_exceeded"
        big = client.post("/v1/jobs", files={"file": ("c.jpg", data + data[:100])})
        assert big.status_code == 413 and big.json()["code"] == "payload_too_large"
        accepted = client.get("/v1/jobs").json()["items"]
    # One job, and whatever is stored (its input, or its output once a worker got to it) is that job's.
    assert len(accepted) == 1
    assert stored_keys(settings) and all(accepted[0]["id"] in key for key in stored_keys(settings))


def test_audit_log_records_who_did_what(client: TestClient, worker: WorkerProcess, engine: Engine,
                                        api_key: str) -> None:
    job = client.post("/v1/jobs", files={"file": ("Jane Doe.jpg", astronaut_jpeg())},
                      data={"subject_refs": '{"driver": "DRV-4711"}'}).json()
    wait_for_status(client, job["id"], {"succeeded"})
    client.get(f"/v1/jobs/{job['id']}/result")
    client.delete(f"/v1/jobs/{job['id']}")
    with Session(engine) as session:
        events = session.execute(select(AuditEvent).order_by(AuditEvent.id)).scalars().all()  # type: ignore[arg-type]
    assert [(e.action, e.resource_id) for e in events] == [
        ("job.create", job["id"]), ("job.result.download", job["id"]), ("job.delete", job["id"])]
    assert {e.key_id for e in events} == {api_key.split("_")[1]} and {e.tenant_id for e in events} == {TENANT}
    text = repr([e.model_dump() for e in events])
    assert "Jane" not in text and "DRV-4711" not in text


def test_key_comparison_is_constant_time_for_unknown_ids_too(engine: Engine,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    calls: list[tuple[str, str]] = []
    real = hmac.compare_digest

    def spy(a, b):  # type: ignore[no-untyped-def]
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(api_keys.hmac, "compare_digest", spy)
    good = make_key(engine, TENANT, [Scope.jobs_read])
    with Session(engine) as session:
        for presented in (good[:-1] + ("A" if good[-1] != "A" else "B"), "veil_ffffffffffffffff_" + "x" * 43,
                          "garbage"):
            assert api_keys.authenticate(session=session, presented=presented) is None
    # Every failure path, known id or not, went through one constant-time comparison of two digests.
    assert len(calls) == 3 and all(len(a) == len(b) == 64 for a, b in calls)
