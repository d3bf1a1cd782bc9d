"""The compare-and-set life cycle and the sweeper, on real PostgreSQL (and Redis and a worker where said)."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared import job_claims, tenants
from shared.queues import TaskName
from shared.settings import Settings
from shared.states import JobStatus
from shared.storage import LocalStorage, input_key
from shared.tables import Job
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg
from tests.integration.conftest import TENANT, WorkerProcess, wait_for_status
from worker.celery_app import create_celery
from worker.publisher import Publisher
from worker.reaper import reap_once


def insert_job(engine: Engine, settings: Settings, *, publish_age_s: float = 0, **values: object) -> uuid.UUID:
    """A committed job row with its input stored, as the API would leave it, but never published."""
    job_id = uuid.uuid4()
    storage = LocalStorage(settings.resolved_storage_root)
    key = input_key(str(job_id))
    storage.put_file(key, _write_tmp(settings, astronaut_jpeg()))
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=TENANT)
    job = Job(id=job_id, tenant_id=TENANT, input_key=key, input_media_type="image/jpeg",
              max_attempts=settings.max_attempts,
              last_published_at=utcnow() - timedelta(seconds=publish_age_s), **values)
    with Session(engine) as session:
        session.add(job)
        session.commit()
    return job_id


def _write_tmp(settings: Settings, data: bytes):  # type: ignore[no-untyped-def]
    path = settings.data_dir / f"fixture-{uuid.uuid4().hex}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def load(engine: Engine, job_id: uuid.UUID) -> Job:
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def test_only_one_of_many_concurrent_claims_wins(engine: Engine, settings: Settings) -> None:
    job_id = insert_job(engine, settings)
    results: list[job_claims.Claim | None] = []
    barrier = threading.Barrier(8)

    def contend() -> None:
        barrier.wait()
        results.append(job_claims.claim(engine, job_id, lease_seconds=30))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [r for r in results if r is not None]
    assert len(winners) == 1 and winners[0].attempt == 1
    assert load(engine, job_id).attempts == 1


def test_a_stale_holder_cannot_finalize_after_takeover(engine: Engine, settings: Settings) -> None:
    job_id = insert_job(engine, settings)
    first = job_claims.claim(engine, job_id, lease_seconds=30)
    assert first is not None
    assert job_claims.claim(engine, job_id, lease_seconds=30) is None  # lease still live
    with engine.begin() as conn:  # the first holder stalls past its lease
        conn.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    second = job_claims.claim(engine, job_id, lease_seconds=30)
    assert second is not None and second.attempt == 2
    assert not job_claims.renew(engine, first, lease_seconds=30)
    assert not job_claims.finalize(engine, first, JobStatus.succeeded, output_key="outputs/x/first.jpg")
    assert job_claims.finalize(engine, second, JobStatus.succeeded, output_key="outputs/x/second.jpg")
    assert load(engine, job_id).output_key == "outputs/x/second.jpg"


def test_cancellation_makes_the_worker_lose_its_finalize(engine: Engine, settings: Settings,
                                                         client: TestClient) -> None:
    job_id = insert_job(engine, settings)
    held = job_claims.claim(engine, job_id, lease_seconds=30)
    assert held is not None
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert not job_claims.renew(engine, held, lease_seconds=30)
    assert not job_claims.finalize(engine, held, JobStatus.succeeded, output_key="outputs/x/late.jpg")
    job = load(engine, job_id)
    assert job.status == "cancelled" and job.output_key is None and job.input_key is None


def test_claims_past_the_attempt_cap_mark_the_job_dead(engine: Engine, settings: Settings) -> None:
    job_id = insert_job(engine, settings, attempts=settings.max_attempts)
    assert job_claims.claim(engine, job_id, lease_seconds=30) is None
    job = load(engine, job_id)
    assert job.status == "dead" and job.error_code == "attempts_exhausted"


def test_reaper_republishes_a_job_whose_message_was_lost(engine: Engine, settings: Settings,
                                                         client: TestClient, worker: WorkerProcess) -> None:
    job_id = insert_job(engine, settings, publish_age_s=3600)  # committed, but Redis never heard of it
    publisher = Publisher(create_celery(settings))
    report = reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                       publish=lambda ids: publisher.publish(TaskName.anonymize_image, ids))
    assert report.republished == 1 and report.published == [job_id]
    assert wait_for_status(client, str(job_id), {"succeeded", "failed"})["status"] == "succeeded"


def test_reaper_requeues_an_expired_lease_and_the_job_completes(
        engine: Engine, settings: Settings, client: TestClient, worker: WorkerProcess) -> None:
    job_id = insert_job(engine, settings)
    crashed = job_claims.claim(engine, job_id, lease_seconds=30)  # a worker that then died
    assert crashed is not None
    with engine.begin() as conn:
        conn.execute(update(Job).where(Job.id == job_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
    publisher = Publisher(create_celery(settings))
    storage = LocalStorage(settings.resolved_storage_root)
    report = reap_once(engine=engine, storage=storage, settings=settings,
                       publish=lambda ids: publisher.publish(TaskName.anonymize_image, ids))
    assert report.requeued == 1
    done = wait_for_status(client, str(job_id), {"succeeded", "failed", "dead"})
    assert done["status"] == "succeeded" and done["attempts"] == 2
    # A second reaper pass finds nothing more to do: each expired job is requeued once.
    again = reap_once(engine=engine, storage=storage, settings=settings, publish=lambda ids: list(ids))
    assert (again.requeued, again.republished) == (0, 0)


def test_reaper_deletes_an_orphan_output_beside_the_real_one(engine: Engine, settings: Settings) -> None:
    job_id = insert_job(engine, settings)
    held = job_claims.claim(engine, job_id, lease_seconds=30)
    assert held is not None
    storage = LocalStorage(settings.resolved_storage_root)
    for name in ("winner.jpg", "crashed-attempt.jpg"):
        storage.put_file(f"outputs/{job_id}/{name}", _write_tmp(settings, b"x"))
    assert job_claims.finalize(engine, held, JobStatus.succeeded, output_key=f"outputs/{job_id}/winner.jpg",
                               input_expires_at=utcnow())
    report = reap_once(engine=engine, storage=storage, settings=settings, publish=lambda ids: list(ids))
    assert report.orphans_deleted == 1 and report.inputs_deleted == 1
    assert list(storage.list(f"outputs/{job_id}")) == [f"outputs/{job_id}/winner.jpg"]
    assert list(storage.list(f"inputs/{job_id}")) == []


def test_reaper_republishes_only_what_the_broker_is_short_of(engine: Engine, settings: Settings) -> None:
    oldest, middle, newest = (insert_job(engine, settings, publish_age_s=age) for age in (300, 200, 100))
    storage = LocalStorage(settings.resolved_storage_root)
    sent: list[uuid.UUID] = []

    def publish(ids):  # type: ignore[no-untyped-def]
        sent.extend(ids)
        return list(ids)

    # A backlog: the broker holds a message for every queued job, so nothing is sent again.
    report = reap_once(engine=engine, storage=storage, settings=settings, publish=publish, queue_depth=lambda: 3)
    assert report.republished == 0 and sent == []
    # One message short of three jobs... then two: the longest-waiting are sent again, oldest first.
    reap_once(engine=engine, storage=storage, settings=settings, publish=publish, queue_depth=lambda: 1)
    assert sent == [oldest, middle]
    # Depth unknown (broker down, or its queue wiped): every stale job is a suspect.
    sent.clear()
    with engine.begin() as conn:
        conn.execute(update(Job).values(last_published_at=utcnow() - timedelta(seconds=600)))
    reap_once(engine=engine, storage=storage, settings=settings, publish=publish, queue_depth=lambda: None)
    assert sorted(sent) == sorted([oldest, middle, newest])
