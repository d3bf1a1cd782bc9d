"""Art. 17 erasure on real PostgreSQL, storage, Redis and a worker: everything matching goes, nothing else does,
a racing worker leaves nothing behind, and the receipt proves it without personal data."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import inspect, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from shared import job_claims, tenants
from shared.gdpr import requests
from shared.gdpr.erasure_registry import NO_SUBJECT_DATA, registered_tables, unclassified_tables
from shared.gdpr.receipt import canonical_json, verify_receipt
from shared.queues import TaskName
from shared.settings import Settings
from shared.states import JobStatus
from shared.storage import LocalStorage, input_key, output_key
from shared.subjects import hash_subject_refs
from shared.tables import Job, SubjectRequest, WebhookDelivery
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg
from tests.integration.conftest import TENANT, WorkerProcess, stored_keys, wait_for_status
from worker.celery_app import create_celery
from worker.context import WorkerContext
from worker.gdpr_access import archive_key
from worker.gdpr_erasure import run_erasure
from worker.publisher import Publisher
from worker.reaper import reap_and_publish, reap_once

RAW = ("D-1", "D-2", "V-1", "driver", "vehicle", "TICKET-4711", "Jane")


def context(settings: Settings, grace: float = 0) -> WorkerContext:
    return WorkerContext.build(settings.model_copy(update={"erasure_grace_seconds": grace}))


def submit(client: TestClient, refs: dict[str, str] | None = None, recorded_at: str | None = None) -> uuid.UUID:
    form = {"subject_refs": json.dumps(refs)} if refs else {}
    if recorded_at:
        form["recorded_at"] = recorded_at
    response = client.post("/v1/jobs", files={"file": ("dashcam.jpg", astronaut_jpeg())}, data=form)
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["id"])


def finished(client: TestClient, *job_ids: uuid.UUID) -> None:
    for job_id in job_ids:
        assert wait_for_status(client, str(job_id), {"succeeded", "failed", "dead"})["status"] == "succeeded"


def insert_job(engine: Engine, settings: Settings, refs: dict[str, str], tenant: str = TENANT,
               **values: object) -> uuid.UUID:
    """A committed, never published job with its original stored: queued, as the API leaves it."""
    job_id = uuid.uuid4()
    source = settings.data_dir / f"fixture-{job_id}.jpg"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(astronaut_jpeg())
    LocalStorage(settings.resolved_storage_root).put_file(input_key(str(job_id)), source)
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=tenant)
        session.add(Job(id=job_id, tenant_id=tenant, input_key=input_key(str(job_id)), input_media_type="image/jpeg",
                        subject_ref_hashes=hash_subject_refs(refs, settings.subject_key), **values))
        session.commit()
    return job_id


def capture(into: list[uuid.UUID]) -> Callable[[Iterable[uuid.UUID]], list[uuid.UUID]]:
    def publish(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        sent = list(ids)
        into.extend(sent)
        return sent
    return publish


def erasure(engine: Engine, settings: Settings, **criteria: object) -> uuid.UUID:
    with Session(engine) as session:
        return requests.create(session=session, tenant_id=TENANT, type="erasure", secret=settings.subject_key,
                               **criteria).id  # type: ignore[arg-type]


def load(engine: Engine, request_id: uuid.UUID) -> SubjectRequest:
    with Session(engine) as session:
        request = session.get(SubjectRequest, request_id)
        assert request is not None
        return request


def job_ids(engine: Engine) -> set[uuid.UUID]:
    with Session(engine) as session:
        return set(session.exec(select(Job.id)))


def keys_of(settings: Settings, job_id: uuid.UUID) -> list[str]:
    return [key for key in stored_keys(settings) if str(job_id) in key]


def assert_gone(engine: Engine, settings: Settings, *erased: uuid.UUID) -> None:
    with Session(engine) as session:
        assert not list(session.exec(select(Job.id).where(col(Job.id).in_(erased))))
        assert not list(session.exec(select(WebhookDelivery.id).where(col(WebhookDelivery.job_id).in_(erased))))
    assert [key for job in erased for key in keys_of(settings, job)] == []


def completed_receipt(engine: Engine, request_id: uuid.UUID) -> dict:
    request = load(engine, request_id)
    assert request.status == "completed" and request.completed_at is not None, request.error_code
    assert request.receipt is not None and request.receipt_sha256 is not None
    assert verify_receipt(request.receipt, request.receipt_sha256)
    assert all(v == {"method": v["method"], "remaining": 0} for v in request.receipt["verification"].values())
    return request.receipt


def test_every_table_in_the_database_is_classified(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert unclassified_tables(names) == set()
    assert registered_tables() <= names and "alembic_version" in NO_SUBJECT_DATA


def test_erasure_by_subject_refs_removes_every_row_and_object(client: TestClient, worker: WorkerProcess,
                                                              engine: Engine, settings: Settings) -> None:
    first = submit(client, {"driver": "D-1", "vehicle": "V-1"}, "2026-03-03T08:30:00+01:00")
    second = submit(client, {"driver": "D-1"})
    other = submit(client, {"driver": "D-2"})
    finished(client, first, second, other)
    queued = insert_job(engine, settings, {"driver": "D-1"}, callback_url="https://hooks.example/veil")
    others_keys = keys_of(settings, other)
    assert len(others_keys) == 1 and len(keys_of(settings, first)) == 1 and len(keys_of(settings, queued)) == 1

    request_id = erasure(engine, settings, subject_refs={"driver": "D-1"}, reference="TICKET-4711 Jane")
    assert run_erasure(context(settings), request_id) == "completed"

    assert_gone(engine, settings, first, second, queued)
    assert job_ids(engine) == {other} and keys_of(settings, other) == others_keys
    receipt = completed_receipt(engine, request_id)
    assert receipt["erased"] == {"store:access_archives": 0, "store:outputs": 2, "store:inputs": 1,
                                 "table:webhook_delivery": 1, "table:job": 3}
    assert receipt["jobs_matched"] == 3 and receipt["jobs_cancelled"] == 1 and receipt["changed"] is True
    assert receipt["deadline_met"] is True and receipt["software_version"]

    request = load(engine, request_id)
    text = canonical_json(receipt).decode()
    for secret in (*RAW, *request.subject_ref_hashes, *(str(j) for j in (first, second, queued, other))):
        assert secret not in text

    # Running it again changes nothing; a second request for the same subject finds nothing and says so.
    assert run_erasure(context(settings), request_id) == "already_completed"
    assert load(engine, request_id).receipt_sha256 == request.receipt_sha256
    again = erasure(engine, settings, subject_refs={"driver": "D-1"})
    assert run_erasure(context(settings), again) == "completed"
    repeat = completed_receipt(engine, again)
    assert repeat["changed"] is False and repeat["jobs_matched"] == 0
    assert set(repeat["erased"].values()) == {0} and set(repeat["late_writes"].values()) == {0}
    assert job_ids(engine) == {other} and keys_of(settings, other) == others_keys


def test_a_recorded_at_window_and_a_vehicle_take_only_the_jobs_inside_it(client: TestClient, worker: WorkerProcess,
                                                                          engine: Engine, settings: Settings) -> None:
    inside = submit(client, {"vehicle": "V-1", "driver": "D-1"}, "2026-03-03T08:30:00+01:00")
    later = submit(client, {"vehicle": "V-1"}, "2026-03-03T10:30:00+01:00")
    other_vehicle = submit(client, {"vehicle": "V-2"}, "2026-03-03T08:45:00+01:00")
    undated = submit(client, {"vehicle": "V-1"})
    finished(client, inside, later, other_vehicle, undated)
    kept = {job: keys_of(settings, job) for job in (later, other_vehicle, undated)}

    request_id = erasure(engine, settings, subject_refs={"vehicle": "V-1"},
                         recorded_from=datetime.fromisoformat("2026-03-03T08:00:00+01:00"),
                         recorded_to=datetime.fromisoformat("2026-03-03T09:00:00+01:00"))
    assert run_erasure(context(settings), request_id) == "completed"

    assert_gone(engine, settings, inside)
    assert job_ids(engine) == set(kept) and {job: keys_of(settings, job) for job in kept} == kept
    assert completed_receipt(engine, request_id)["erased"]["table:job"] == 1


def test_erasure_by_job_ids_stays_inside_the_tenant_and_takes_access_archives(
        client: TestClient, worker: WorkerProcess, engine: Engine, settings: Settings) -> None:
    named, unnamed = submit(client), submit(client)
    finished(client, named, unnamed)
    elsewhere = insert_job(engine, settings, {"driver": "D-1"}, tenant="globex")
    access_id = uuid.uuid4()
    with Session(engine) as session:  # an earlier access request for the same job left its archive
        session.add(SubjectRequest(id=access_id, tenant_id=TENANT, type="access", status="completed",
                                   due_at=utcnow(), matched_job_ids=[str(named)], archive_key=archive_key(access_id)))
        session.commit()
    blob = settings.data_dir / "archive.zip"
    blob.write_bytes(b"PK\x05\x06" + bytes(18))
    LocalStorage(settings.resolved_storage_root).put_file(archive_key(access_id), blob)

    request_id = erasure(engine, settings, job_ids=[named, elsewhere])
    assert run_erasure(context(settings), request_id) == "completed"

    assert_gone(engine, settings, named)
    assert job_ids(engine) == {unnamed, elsewhere}
    assert len(keys_of(settings, unnamed)) == 1 and len(keys_of(settings, elsewhere)) == 1
    assert keys_of(settings, access_id) == [] and load(engine, access_id).archive_key is None
    receipt = completed_receipt(engine, request_id)
    assert receipt["jobs_matched"] == 1 and receipt["erased"]["store:access_archives"] == 1


def test_a_worker_racing_the_erasure_leaves_nothing_behind(engine: Engine, settings: Settings) -> None:
    job = insert_job(engine, settings, {"driver": "D-1"})
    held = job_claims.claim(engine, job, lease_seconds=30)  # a worker is mid-job
    assert held is not None
    ctx = context(settings, grace=3600)
    request_id = erasure(engine, settings, subject_refs={"driver": "D-1"})
    assert run_erasure(ctx, request_id) == "sweeping"
    assert load(engine, request_id).status == "sweeping" and job_ids(engine) == set()

    # The worker notices at its heartbeat, or writes its output and loses the finalize, and removes it.
    assert not job_claims.renew(engine, held, lease_seconds=30)
    source = settings.data_dir / "out.jpg"
    source.write_bytes(astronaut_jpeg())
    mine = output_key(str(job), held.token.rsplit(":", 1)[-1], ".jpg")
    ctx.storage.put_file(mine, source)
    assert not job_claims.finalize(engine, held, JobStatus.succeeded, output_key=mine)
    ctx.storage.delete(mine)
    # Another attempt crashed between its write and its finalize: its object has no one to remove it.
    late = output_key(str(job), "crashed", ".jpg")
    ctx.storage.put_file(late, source)

    assert run_erasure(ctx, request_id) == "skipped"  # the grace period has not passed
    assert ctx.storage.exists(late)
    with engine.begin() as conn:  # ...and now it has
        conn.execute(update(SubjectRequest).where(col(SubjectRequest.id) == request_id)
                     .values(sweep_after=utcnow() - timedelta(seconds=1)))
    published: list[uuid.UUID] = []
    reap_once(engine=engine, storage=ctx.storage, settings=settings, publish=lambda ids: list(ids),
              publish_gdpr=capture(published))
    assert request_id in published
    assert run_erasure(ctx, request_id) == "completed"

    assert keys_of(settings, job) == []
    receipt = completed_receipt(engine, request_id)
    assert receipt["late_writes"]["store:outputs"] == 1 and receipt["erased"]["store:inputs"] == 1
    assert receipt["jobs_cancelled"] == 1


def test_the_sweeper_republishes_a_request_whose_message_was_lost(engine: Engine, settings: Settings) -> None:
    lost = erasure(engine, settings, job_ids=[uuid.uuid4()], now=utcnow() - timedelta(minutes=5))
    fresh = erasure(engine, settings, job_ids=[uuid.uuid4()])
    published: list[uuid.UUID] = []
    reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
              publish=lambda ids: list(ids), publish_gdpr=capture(published))
    assert lost in published and fresh not in published


def test_end_to_end_through_the_worker_and_the_sweeper(client: TestClient, worker: WorkerProcess,
                                                       engine: Engine, settings: Settings) -> None:
    gone = [submit(client, {"driver": "D-7"}), submit(client, {"driver": "D-7", "vehicle": "V-7"})]
    kept = submit(client, {"driver": "D-8"})
    finished(client, *gone, kept)
    kept_keys = keys_of(settings, kept)
    assert "gdpr" in " ".join(map(str, worker.proc.args)), "the suite's worker must consume the gdpr queue"
    request_id = erasure(engine, settings, subject_refs={"driver": "D-7"})
    publisher = Publisher(create_celery(settings))
    assert publisher.publish(TaskName.gdpr_erase, [request_id]) == [request_id]  # as the API does on receipt

    # The worker runs the first pass; the second waits out the grace period, which the test cuts short.
    status = wait_for_request(engine, request_id, {"sweeping", "completed"})
    assert_gone(engine, settings, *gone)
    if status == "sweeping":
        with engine.begin() as conn:
            conn.execute(update(SubjectRequest).where(col(SubjectRequest.id) == request_id)
                         .values(sweep_after=utcnow() - timedelta(seconds=1)))
        report = reap_and_publish(engine=engine, storage=LocalStorage(settings.resolved_storage_root),
                                  settings=settings, publisher=publisher)
        assert request_id in report.erasures_published
    assert wait_for_request(engine, request_id, {"completed"}) == "completed"
    receipt = completed_receipt(engine, request_id)
    assert receipt["erased"]["table:job"] == 2 and receipt["erased"]["store:outputs"] == 2
    assert job_ids(engine) == {kept} and keys_of(settings, kept) == kept_keys


def wait_for_request(engine: Engine, request_id: uuid.UUID, statuses: set[str], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = load(engine, request_id).status
        if status in statuses:
            return status
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} did not reach {statuses}; last: {status}")
