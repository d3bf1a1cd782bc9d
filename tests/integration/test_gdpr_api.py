"""/v1/subject-requests on real PostgreSQL: scopes, tenancy, validation, deadlines, extension, receipt, archive.

Requests whose state a test depends on are made with `shared.gdpr.requests.create`, which publishes nothing,
so the session's worker (if running) never moves them on underneath the test.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from api.app import create_app
from shared.gdpr import requests
from shared.gdpr.deadlines import due_at
from shared.gdpr.receipt import receipt_sha256
from shared.scopes import Scope
from shared.settings import Settings
from shared.subjects import hash_subject_refs
from shared.tables import AuditEvent, SubjectRequest
from shared.timeutil import utcnow
from tests.integration.conftest import TENANT, make_key

BASE = "/v1/subject-requests"
SECRET_VEHICLE = "WVW-ZZZ-1K-4711"


@pytest.fixture(scope="module")
def other_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    key = make_key(engine, "globex", [Scope.subject_requests])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


def stored(engine: Engine, tenant: str = TENANT, *, days_ago: float = 0, type: str = "erasure",
           **changes: object) -> SubjectRequest:
    with Session(engine, expire_on_commit=False) as session:
        request = requests.create(session=session, tenant_id=tenant, type=type,  # type: ignore[arg-type]
                                  secret="s", job_ids=[uuid.uuid4()], now=utcnow() - timedelta(days=days_ago))
        for name, value in changes.items():
            setattr(request, name, value)
        session.add(request)
        session.commit()
        return request


def test_keys_without_the_scope_are_refused(settings: Settings, client: TestClient) -> None:
    body = {"type": "access", "subject": {"job_ids": [str(uuid.uuid4())]}}
    with TestClient(create_app(settings)) as anonymous:
        assert anonymous.post(BASE, json=body).status_code == 401
        assert anonymous.get(BASE).status_code == 401
    refused = client.post(BASE, json=body)  # jobs:write and jobs:read only
    assert refused.status_code == 403 and refused.json()["code"] == "missing_scope"
    assert refused.json()["required_scope"] == "subject-requests"
    assert client.get(BASE).status_code == 403


def test_create_answers_202_and_never_echoes_the_identifiers(subject_client: TestClient, settings: Settings,
                                                             engine: Engine) -> None:
    response = subject_client.post(BASE, json={
        "type": "erasure", "reference": "TICKET-881",
        "subject": {"subject_refs": {"vehicle": SECRET_VEHICLE, "drive": 7},
                    "recorded_from": "2026-03-03T08:00:00+01:00", "recorded_to": "2026-03-03T09:00:00Z"},
    })
    assert response.status_code == 202, response.text
    body = response.json()
    assert SECRET_VEHICLE not in response.text and "vehicle" not in response.text
    assert body["type"] == "erasure" and body["status"] == "received" and body["reference"] == "TICKET-881"
    assert body["extension_months"] == 0 and body["completed_at"] is None and body["result"] is None
    assert body["links"] == {"self": f"{BASE}/{body['id']}", "receipt": f"{BASE}/{body['id']}/receipt",
                             "archive": None}
    assert response.headers["Location"].endswith(f"{BASE}/{body['id']}")

    with Session(engine) as session:
        row = session.get(SubjectRequest, uuid.UUID(body["id"]))
        assert row is not None and row.tenant_id == TENANT
        assert row.subject_ref_hashes == hash_subject_refs({"vehicle": SECRET_VEHICLE, "drive": "7"},
                                                           settings.subject_key)
        assert row.due_at == due_at(row.received_at)
        assert row.recorded_from is not None and row.recorded_from.hour == 7  # stored in UTC
        events = session.exec(select(AuditEvent).where(AuditEvent.resource_id == body["id"])).all()
    assert [e.action for e in events] == ["subject_request.erasure.create"]
    assert SECRET_VEHICLE not in repr([e.model_dump() for e in events])

    fetched = subject_client.get(f"{BASE}/{body['id']}")
    assert fetched.status_code == 200 and SECRET_VEHICLE not in fetched.text
    access = subject_client.post(BASE, json={"type": "access", "subject": {"job_ids": [str(uuid.uuid4())]}})
    assert access.status_code == 202 and access.json()["links"]["archive"] == f"{BASE}/{access.json()['id']}/archive"


@pytest.mark.parametrize(("body", "code"), [
    ({"type": "access", "subject": {}}, "validation_error"),
    ({"type": "access", "subject": {"subject_refs": {}}}, "validation_error"),
    ({"type": "access", "subject": {"recorded_from": None}}, "validation_error"),
    ({"type": "access", "subject": {"job_ids": ["x"]}}, "validation_error"),
    ({"type": "access", "subject": {"recorded_from": "2026-03-03T08:00:00"}}, "validation_error"),  # no offset
    ({"type": "access", "subject": {"subject_refs": {"vehicle": True}}}, "validation_error"),
    ({"type": "access", "subject": {"subject_refs": {"vehicle": "  "}}}, "validation_error"),
    ({"type": "access", "subject": {"job_ids": [str(uuid.uuid4())]}, "extra": 1}, "validation_error"),
    ({"type": "access", "subject": {"job_ids": [str(uuid.uuid4())], "name": "Jane"}}, "validation_error"),
    ({"type": "rectification", "subject": {"job_ids": [str(uuid.uuid4())]}}, "validation_error"),
    ({"type": "access", "subject": {"recorded_from": "2026-03-03T09:00:00Z",
                                    "recorded_to": "2026-03-03T08:00:00Z"}}, "invalid_subject"),
    ({"type": "access", "subject": {"recorded_from": "0001-01-01T00:00:00+01:00"}}, "invalid_subject"),
])
def test_invalid_requests_are_422_problems(subject_client: TestClient, body: dict, code: str) -> None:
    response = subject_client.post(BASE, json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert "Jane" not in response.text


def test_other_tenants_requests_are_404(subject_client: TestClient, other_client: TestClient,
                                        engine: Engine) -> None:
    theirs = stored(engine, "globex", type="access")
    for path in ("", "/receipt", "/archive"):
        response = subject_client.get(f"{BASE}/{theirs.id}{path}")
        assert response.status_code == 404 and response.json()["code"] == "subject_request_not_found"
    extend = subject_client.post(f"{BASE}/{theirs.id}/extend", json={"months": 1, "reason": "volume"})
    assert extend.status_code == 404
    assert [r["id"] for r in other_client.get(BASE).json()["items"]] == [str(theirs.id)]
    assert str(theirs.id) not in subject_client.get(BASE).text
    assert subject_client.get(f"{BASE}/{uuid.uuid4()}").status_code == 404


def test_open_and_overdue_lists(subject_client: TestClient, engine: Engine) -> None:
    late = stored(engine, days_ago=45)
    later = stored(engine, days_ago=35)
    fresh = stored(engine, days_ago=1)
    done = stored(engine, days_ago=50, status="completed", completed_at=utcnow())
    extended = stored(engine, days_ago=40, extension_months=1)  # due at two months: not overdue yet
    with Session(engine) as session:
        row = session.get(SubjectRequest, extended.id)
        assert row is not None
        row.due_at = due_at(row.received_at, 1)
        session.add(row)
        session.commit()

    def ids(state: str) -> list[str]:
        response = subject_client.get(BASE, params={"state": state})
        assert response.status_code == 200
        return [r["id"] for r in response.json()["items"]]

    assert ids("overdue") == [str(late.id), str(later.id)]  # oldest due first
    assert ids("open") == [str(r.id) for r in (fresh, later, extended, late)]  # newest first
    assert set(ids("all")) == {str(r.id) for r in (late, later, fresh, done, extended)}
    assert subject_client.get(BASE, params={"state": "closed"}).status_code == 422


def test_extension_rules(subject_client: TestClient, engine: Engine) -> None:
    request = stored(engine, days_ago=3)
    first = subject_client.post(f"{BASE}/{request.id}/extend", json={"months": 1, "reason": "12,000 recordings"})
    assert first.status_code == 200, first.text
    assert first.json()["extension_months"] == 1 and first.json()["extension_reason"] == "12,000 recordings"
    assert datetime.fromisoformat(first.json()["due_at"]) == due_at(request.received_at, 1)
    second = subject_client.post(f"{BASE}/{request.id}/extend", json={"months": 2, "reason": "more"})
    assert second.status_code == 409 and second.json()["code"] == "extension_refused"
    assert "two months" in second.json()["rule"]
    assert subject_client.post(f"{BASE}/{request.id}/extend", json={"months": 1, "reason": "more"}).json()[
        "extension_months"] == 2

    late = stored(engine, days_ago=32)
    refused = subject_client.post(f"{BASE}/{late.id}/extend", json={"months": 1, "reason": "volume"})
    assert refused.status_code == 409 and "first month" in refused.json()["rule"]
    closed = stored(engine, days_ago=1, status="completed")
    refused = subject_client.post(f"{BASE}/{closed.id}/extend", json={"months": 1, "reason": "volume"})
    assert refused.status_code == 409 and refused.json()["code"] == "extension_refused"

    for bad in ({"months": 3, "reason": "x"}, {"months": 1, "reason": "   "}, {"months": 1}):
        assert subject_client.post(f"{BASE}/{request.id}/extend", json=bad).status_code == 422
    with Session(engine) as session:
        actions = session.exec(select(AuditEvent.action).where(AuditEvent.resource_id == str(request.id))).all()
    assert actions == ["subject_request.extend", "subject_request.extend"]


def test_receipt_only_once_completed(subject_client: TestClient, engine: Engine) -> None:
    request = stored(engine)
    response = subject_client.get(f"{BASE}/{request.id}/receipt")
    assert response.status_code == 409 and response.json()["code"] == "receipt_not_ready"
    receipt = {"type": "erasure", "request_id": str(request.id), "erased": {"inputs": 1}}
    with Session(engine) as session:
        row = session.get(SubjectRequest, request.id)
        assert row is not None
        row.status, row.receipt, row.receipt_sha256 = "completed", receipt, receipt_sha256(receipt)
        session.add(row)
        session.commit()
    body = subject_client.get(f"{BASE}/{request.id}/receipt").json()
    assert body == {"receipt": receipt, "sha256": receipt_sha256(receipt)}


def test_archive_states(subject_client: TestClient, engine: Engine) -> None:
    erasure = stored(engine)
    assert subject_client.get(f"{BASE}/{erasure.id}/archive").json()["code"] == "archive_not_found"
    waiting = stored(engine, type="access")
    response = subject_client.get(f"{BASE}/{waiting.id}/archive")
    assert response.status_code == 409 and response.json()["code"] == "archive_not_ready"
    expired = stored(engine, type="access", status="completed", archive_key=None,
                     archive_expires_at=utcnow() - timedelta(days=1))
    response = subject_client.get(f"{BASE}/{expired.id}/archive")
    assert response.status_code == 410 and response.json()["code"] == "archive_expired"
    missing = stored(engine, type="access", status="completed", archive_key=f"access/{uuid.uuid4()}/archive.zip",
                     archive_expires_at=utcnow() + timedelta(days=1))
    assert subject_client.get(f"{BASE}/{missing.id}/archive").status_code == 410
