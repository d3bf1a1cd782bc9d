"""Retention on real PostgreSQL: each reaper pass deletes the originals, outputs and access archives that are
due, and nothing else; the rows stay, and the API shows what is no longer held."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared import tenants
from shared.gdpr import requests
from shared.gdpr.retention import purge_expired_archives, purge_expired_outputs
from shared.settings import Settings
from shared.storage import LocalStorage, input_key, output_key
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow
from tests.integration.conftest import TENANT, stored_keys
from worker.gdpr_access import archive_key
from worker.reaper import reap_once


def put(storage: LocalStorage, settings: Settings, key: str) -> str:
    path = settings.data_dir / f"blob-{uuid.uuid4().hex}"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"stored bytes")
    storage.put_file(key, path)
    path.unlink()
    return key


def finished_job(engine: Engine, settings: Settings, *, input_expires: datetime | None,
                 output_expires: datetime | None) -> uuid.UUID:
    storage = LocalStorage(settings.resolved_storage_root)
    job_id = uuid.uuid4()
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=TENANT)
        session.add(Job(id=job_id, tenant_id=TENANT, status="succeeded", finished_at=utcnow(),
                        input_key=put(storage, settings, input_key(str(job_id))), input_expires_at=input_expires,
                        output_key=put(storage, settings, output_key(str(job_id), "a1", ".jpg")),
                        output_media_type="image/jpeg", output_expires_at=output_expires))
        session.commit()
    return job_id


def access_request(engine: Engine, settings: Settings, *, expires: datetime) -> uuid.UUID:
    storage = LocalStorage(settings.resolved_storage_root)
    with Session(engine, expire_on_commit=False) as session:
        request = requests.create(session=session, tenant_id=TENANT, type="access", secret="s",
                                  job_ids=[uuid.uuid4()])
        request.status, request.completed_at = "completed", utcnow()
        request.archive_key = put(storage, settings, archive_key(request.id))
        request.archive_expires_at = expires
        session.add(request)
        session.commit()
        return request.id


def load_job(engine: Engine, job_id: uuid.UUID) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_a_pass_purges_what_is_due_and_nothing_else(engine: Engine, settings: Settings,
                                                    subject_client: TestClient, client: TestClient) -> None:
    now = utcnow()
    past, future = now - timedelta(minutes=1), now + timedelta(days=1)
    due = finished_job(engine, settings, input_expires=past, output_expires=past)
    not_due = finished_job(engine, settings, input_expires=future, output_expires=future)
    forever = finished_job(engine, settings, input_expires=future, output_expires=None)  # no VEIL_KEEP_OUTPUTS_DAYS
    expired_archive = access_request(engine, settings, expires=past)
    live_archive = access_request(engine, settings, expires=future)
    before = set(stored_keys(settings))

    report = reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                       publish=lambda ids: list(ids))
    assert (report.inputs_deleted, report.outputs_deleted, report.archives_deleted) == (1, 1, 1)

    gone = before - set(stored_keys(settings))
    assert gone == {input_key(str(due)), output_key(str(due), "a1", ".jpg"), archive_key(expired_archive)}
    purged = load_job(engine, due)
    assert purged.input_key is None and purged.output_key is None and purged.status == "succeeded"
    for kept in (not_due, forever):
        job = load_job(engine, kept)
        assert job.input_key is not None and job.output_key is not None
    with Session(engine) as session:
        expired = session.get(SubjectRequest, expired_archive)
        live = session.get(SubjectRequest, live_archive)
        assert expired is not None and expired.archive_key is None and expired.archive_expires_at is not None
        assert live is not None and live.archive_key == archive_key(live_archive)

    # What the API shows: no result, no expiry time for a file that is gone; the archive is 410.
    shown = client.get(f"/v1/jobs/{due}").json()
    assert shown["input_retained"] is False and shown["output_expires_at"] is None
    assert client.get(f"/v1/jobs/{due}/result").status_code == 409
    assert client.get(f"/v1/jobs/{not_due}").json()["output_expires_at"] is not None
    assert subject_client.get(f"/v1/subject-requests/{expired_archive}/archive").status_code == 410
    assert subject_client.get(f"/v1/subject-requests/{live_archive}/archive").status_code == 200

    again = reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                      publish=lambda ids: list(ids))
    assert (again.inputs_deleted, again.outputs_deleted, again.archives_deleted) == (0, 0, 0)
    assert set(stored_keys(settings)) == before - gone


def test_a_key_already_gone_is_forgotten_without_error(engine: Engine, settings: Settings) -> None:
    """A crash between deleting the object and forgetting its key: the next pass finishes the job."""
    storage = LocalStorage(settings.resolved_storage_root)
    past = utcnow() - timedelta(minutes=1)
    job_id = finished_job(engine, settings, input_expires=None, output_expires=past)
    request_id = access_request(engine, settings, expires=past)
    storage.delete(output_key(str(job_id), "a1", ".jpg"))
    storage.delete(archive_key(request_id))
    assert purge_expired_outputs(engine, storage) == 1
    assert purge_expired_archives(engine, storage) == 1
    assert load_job(engine, job_id).output_key is None
