"""The dashboard's endpoints on the embedded mode (SQLite, filesystem broker): /dashboard and its assets,
GET /v1/me and POST /v1/jobs/{id}/requeue."""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, col, select

from api.app import create_app
from shared import api_keys, tenants
from shared.db import make_engine
from shared.migrate import upgrade
from shared.scopes import Scope
from shared.settings import Settings
from shared.states import JobStatus
from shared.storage import input_key
from shared.tables import AuditEvent, Job
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.chdir(tmp_path)  # kombu's filesystem transport keeps its `control/` folder in the working directory
    s = Settings(data_dir=tmp_path, max_attempts=3)
    upgrade(make_engine(s))
    return s


@pytest.fixture
def app_client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def key(settings: Settings, tenant: str, *scopes: Scope) -> dict[str, str]:
    with Session(make_engine(settings)) as session:
        tenants.ensure(session=session, tenant_id=tenant)
        secret = api_keys.create(session=session, tenant_id=tenant, scopes=list(scopes))[1]
    return {"Authorization": f"Bearer {secret}"}


def finished_job(app_client: TestClient, settings: Settings, tenant: str, status: JobStatus,
                 *, with_input: bool = True, attempts: int = 3) -> uuid.UUID:
    """A job row as a worker or the reaper leaves it, with its upload stored (or already deleted)."""
    job_id = uuid.uuid4()
    key_name = input_key(str(job_id))
    if with_input:
        app_client.app.state.storage.put_stream(key_name, io.BytesIO(astronaut_jpeg()))  # type: ignore[attr-defined]
    now = utcnow()
    with Session(make_engine(settings)) as session:
        tenants.ensure(session=session, tenant_id=tenant)
        session.add(Job(id=job_id, tenant_id=tenant, status=status.value, input_key=key_name,
                        input_media_type="image/jpeg", attempts=attempts, max_attempts=3, started_at=now,
                        finished_at=now, error_code="internal_error", error_message="Something broke.",
                        input_expires_at=now + timedelta(days=7), progress=0.4))
        session.commit()
    return job_id


def queued_messages(settings: Settings) -> list[str]:
    folder = settings.broker_folder / "queue"
    return [p.read_text() for p in folder.iterdir()] if folder.exists() else []


def audit_outcomes(settings: Settings, job_id: uuid.UUID) -> list[str]:
    with Session(make_engine(settings)) as session:
        events = session.exec(select(AuditEvent).where(col(AuditEvent.resource_id) == str(job_id),
                                                       col(AuditEvent.action) == "job.requeue")).all()
        return [e.outcome for e in events]


def test_dashboard_page_is_served_with_a_strict_policy(app_client: TestClient) -> None:
    page = app_client.get("/dashboard")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    html = page.text
    # No inline script or handler: every <script> has a src, and no element carries an on* attribute.
    assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
    assert re.findall(r"\son[a-z]+\s*=", html) == []
    assert "http://" not in html and "https://" not in html  # no external assets
    for asset, kind in (("dashboard.js", "text/javascript"), ("dashboard.css", "text/css")):
        assert f"/dashboard/assets/{asset}" in html
        response = app_client.get(f"/dashboard/assets/{asset}")
        assert response.status_code == 200 and response.headers["content-type"].startswith(kind)
        assert "http://" not in response.text and "https://" not in response.text
    assert "innerHTML" not in app_client.get("/dashboard/assets/dashboard.js").text
    missing = app_client.get("/dashboard/assets/..%2F..%2Fapp.py")
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/problem+json"


def test_me_says_what_the_key_may_do(app_client: TestClient, settings: Settings) -> None:
    reader = app_client.get("/v1/me", headers=key(settings, "acme", Scope.jobs_read)).json()
    assert reader["tenant_id"] == "acme" and reader["scopes"] == ["jobs:read"]
    assert reader["can"] == {"read_jobs": True, "write_jobs": False, "subject_requests": False, "admin": False}
    admin = app_client.get("/v1/me", headers=key(settings, "acme", Scope.admin)).json()
    assert admin["can"] == {"read_jobs": True, "write_jobs": True, "subject_requests": True, "admin": True}
    refused = app_client.get("/v1/me", headers={"Authorization": "Bearer veil_not-a-key"})
    assert refused.status_code == 401 and refused.json()["code"] == "invalid_key"
    assert app_client.get("/v1/me").status_code == 401


@pytest.mark.parametrize("status", [JobStatus.failed, JobStatus.dead])
def test_admin_requeues_a_failed_or_dead_job(app_client: TestClient, settings: Settings, status: JobStatus) -> None:
    job_id = finished_job(app_client, settings, "acme", status)
    response = app_client.post(f"/v1/jobs/{job_id}/requeue", headers=key(settings, "acme", Scope.admin))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["error"] is None and body["progress"] == 0.0
    assert body["attempts"] == 3  # the attempts made stay on record
    with Session(make_engine(settings)) as session:
        row = session.get(Job, job_id)
        assert row is not None and row.status == "queued" and row.max_attempts == 6
        assert row.finished_at is None and row.input_expires_at is None and row.last_published_at is not None
    # Committed, then published to the job kind's queue, and audited.
    assert any(str(job_id) in m and "anonymize.image" in m for m in queued_messages(settings))
    assert audit_outcomes(settings, job_id) == ["ok"]
    # A second click finds it queued: refused, not published twice.
    again = app_client.post(f"/v1/jobs/{job_id}/requeue", headers=key(settings, "acme", Scope.admin))
    assert again.status_code == 409 and again.json()["code"] == "job_not_requeueable"
    assert sum(str(job_id) in m for m in queued_messages(settings)) == 1


def test_requeue_refusals(app_client: TestClient, settings: Settings) -> None:
    admin = key(settings, "acme", Scope.admin)
    failed = finished_job(app_client, settings, "acme", JobStatus.failed)

    for scopes in ((Scope.jobs_read, Scope.jobs_write), (Scope.subject_requests,)):
        refused = app_client.post(f"/v1/jobs/{failed}/requeue", headers=key(settings, "acme", *scopes))
        assert refused.status_code == 403 and refused.json()["code"] == "missing_scope"
    other_tenant = app_client.post(f"/v1/jobs/{failed}/requeue", headers=key(settings, "globex", Scope.admin))
    assert other_tenant.status_code == 404 and other_tenant.json()["code"] == "job_not_found"
    assert app_client.post(f"/v1/jobs/{uuid.uuid4()}/requeue", headers=admin).status_code == 404

    succeeded = finished_job(app_client, settings, "acme", JobStatus.succeeded)
    not_failed = app_client.post(f"/v1/jobs/{succeeded}/requeue", headers=admin)
    assert not_failed.status_code == 409 and not_failed.json()["code"] == "job_not_requeueable"
    assert not_failed.headers["content-type"] == "application/problem+json"

    gone = finished_job(app_client, settings, "acme", JobStatus.dead, with_input=False)
    no_input = app_client.post(f"/v1/jobs/{gone}/requeue", headers=admin)
    assert no_input.status_code == 409 and no_input.json()["code"] == "input_missing"
    assert audit_outcomes(settings, gone) == ["refused"]
    with Session(make_engine(settings)) as session:
        assert {session.get(Job, j).status for j in (failed, succeeded, gone)} == {  # type: ignore[union-attr]
            "failed", "succeeded", "dead"}
    assert queued_messages(settings) == []
