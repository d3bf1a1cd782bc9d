"""worker/gdpr_erasure.py on SQLite (the embedded mode): passes, leases, idempotency and failures."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import Session, col, select

from shared import tenants
from shared.db import make_engine
from shared.gdpr import requests
from shared.gdpr.erasure_registry import REGISTRY, SubjectDataPlace
from shared.gdpr.receipt import verify_receipt
from shared.settings import Settings
from shared.storage import LocalStorage, input_key
from shared.subjects import hash_subject_refs
from shared.tables import Job, SubjectRequest, metadata
from shared.timeutil import utcnow
from worker import gdpr_erasure
from worker.context import WorkerContext
from worker.gdpr_erasure import due_erasures, run_erasure

SECRET = "unit-secret"


@pytest.fixture
def ctx(tmp_path: Path) -> WorkerContext:
    settings = Settings(data_dir=tmp_path, subject_key=SECRET, erasure_grace_seconds=0)
    engine = make_engine(settings)
    metadata.create_all(engine)
    with Session(engine) as session:
        tenants.create(session=session, tenant_id="acme")
    return WorkerContext(settings=settings, engine=engine, storage=LocalStorage(tmp_path / "storage"))


def add_job(ctx: WorkerContext, driver: str, **values: object) -> uuid.UUID:
    job_id = uuid.uuid4()
    blob = ctx.settings.data_dir / "blob"
    blob.write_bytes(b"pixels")
    ctx.storage.put_file(input_key(str(job_id)), blob)
    with Session(ctx.engine) as session:
        session.add(Job(id=job_id, tenant_id="acme", input_key=input_key(str(job_id)),
                        subject_ref_hashes=hash_subject_refs({"driver": driver}, SECRET), **values))
        session.commit()
    return job_id


def erasure(ctx: WorkerContext, driver: str) -> uuid.UUID:
    with Session(ctx.engine) as session:
        return requests.create(session=session, tenant_id="acme", type="erasure", secret=SECRET,
                               subject_refs={"driver": driver}).id


def load(ctx: WorkerContext, request_id: uuid.UUID) -> SubjectRequest:
    with Session(ctx.engine) as session:
        request = session.get(SubjectRequest, request_id)
        assert request is not None
        return request


def test_both_passes_run_at_once_without_a_grace_period(ctx: WorkerContext) -> None:
    gone, kept = add_job(ctx, "D-1"), add_job(ctx, "D-2")
    request_id = erasure(ctx, "D-1")
    assert run_erasure(ctx, request_id) == "completed"
    done = load(ctx, request_id)
    assert done.status == "completed" and done.attempts == 2 and done.error_code is None
    assert done.receipt is not None and done.receipt_sha256 and verify_receipt(done.receipt, done.receipt_sha256)
    assert done.receipt["erased"]["table:job"] == 1 and done.receipt["erased"]["store:inputs"] == 1
    assert done.receipt["jobs_cancelled"] == 1 and done.receipt["changed"] is True
    assert done.matched_job_ids == [str(gone)]
    with Session(ctx.engine) as session:
        assert list(session.exec(select(Job.id))) == [kept]
    assert list(ctx.storage.list("")) == [input_key(str(kept))]

    # Again: nothing happens and the row is untouched.
    assert run_erasure(ctx, request_id) == "already_completed"
    again = load(ctx, request_id)
    assert (again.attempts, again.receipt_sha256, again.result) == (done.attempts, done.receipt_sha256, done.result)


def test_a_second_request_for_the_same_subject_changes_nothing_and_says_so(ctx: WorkerContext) -> None:
    add_job(ctx, "D-1")
    assert run_erasure(ctx, erasure(ctx, "D-1")) == "completed"
    second = erasure(ctx, "D-1")
    assert run_erasure(ctx, second) == "completed"
    receipt = load(ctx, second).receipt
    assert receipt is not None and receipt["changed"] is False and receipt["jobs_matched"] == 0
    assert set(receipt["erased"].values()) == {0} and set(receipt["late_writes"].values()) == {0}


def test_with_a_grace_period_the_second_pass_waits_for_the_sweeper(ctx: WorkerContext) -> None:
    ctx.settings = ctx.settings.model_copy(update={"erasure_grace_seconds": 3600})
    add_job(ctx, "D-1")
    request_id = erasure(ctx, "D-1")
    assert run_erasure(ctx, request_id) == "sweeping"
    assert run_erasure(ctx, request_id) == "skipped"  # not due yet
    assert request_id not in due_erasures(ctx.engine, ctx.settings, None)
    with ctx.engine.begin() as conn:
        conn.execute(update(SubjectRequest).where(col(SubjectRequest.id) == request_id)
                     .values(sweep_after=utcnow() - timedelta(seconds=1)))
    assert request_id in due_erasures(ctx.engine, ctx.settings, None)
    assert due_erasures(ctx.engine, ctx.settings, 5) == []  # the broker still holds enough messages
    assert run_erasure(ctx, request_id) == "completed"


def test_a_pass_that_died_is_taken_over_once_its_lease_ran_out(ctx: WorkerContext) -> None:
    job = add_job(ctx, "D-1")
    request_id = erasure(ctx, "D-1")
    with ctx.engine.begin() as conn:  # a pass claimed it, then its worker was killed
        conn.execute(update(SubjectRequest).where(col(SubjectRequest.id) == request_id).values(
            status="in_progress", attempts=1, sweep_after=utcnow() + timedelta(minutes=5)))
    assert run_erasure(ctx, request_id) == "skipped"
    with ctx.engine.begin() as conn:
        conn.execute(update(SubjectRequest).where(col(SubjectRequest.id) == request_id)
                     .values(sweep_after=utcnow() - timedelta(seconds=1)))
    assert request_id in due_erasures(ctx.engine, ctx.settings, None)
    assert run_erasure(ctx, request_id) == "completed"
    assert load(ctx, request_id).matched_job_ids == [str(job)]


def test_a_place_that_does_not_verify_keeps_the_request_open(ctx: WorkerContext,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    stubborn = SubjectDataPlace(name="store:stubborn", kind="store", erase=lambda c, ids: 0,
                                verify=lambda c, ids: 1)
    monkeypatch.setattr(gdpr_erasure, "REGISTRY", (*REGISTRY, stubborn))
    request_id = erasure(ctx, "D-1")
    assert run_erasure(ctx, request_id) == "sweeping"
    stuck = load(ctx, request_id)
    assert stuck.status == "sweeping" and stuck.error_code == "verification_failed" and stuck.receipt is None
    monkeypatch.setattr(gdpr_erasure, "REGISTRY", REGISTRY)
    assert run_erasure(ctx, request_id) == "completed"
    assert load(ctx, request_id).error_code is None


def test_an_error_is_recorded_and_retried(ctx: WorkerContext, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(c: object, ids: object) -> int:
        raise OSError("disk gone")

    add_job(ctx, "D-1")
    monkeypatch.setattr(gdpr_erasure, "REGISTRY", (SubjectDataPlace("store:broken", "store", broken, broken),
                                                   *REGISTRY))
    request_id = erasure(ctx, "D-1")
    assert run_erasure(ctx, request_id) == "retry"
    failed = load(ctx, request_id)
    assert failed.status == "in_progress" and failed.error_code == "erasure_error"
    monkeypatch.setattr(gdpr_erasure, "REGISTRY", REGISTRY)
    assert run_erasure(ctx, request_id) == "completed"
    assert load(ctx, request_id).receipt["jobs_matched"] == 1  # type: ignore[index]


def test_access_requests_and_unknown_ids_are_not_erasures(ctx: WorkerContext) -> None:
    with Session(ctx.engine) as session:
        access = requests.create(session=session, tenant_id="acme", type="access", secret=SECRET,
                                 subject_refs={"driver": "D-1"}).id
    assert run_erasure(ctx, access) == "skipped" and load(ctx, access).status == "received"
    assert run_erasure(ctx, uuid.uuid4()) == "skipped"
