"""An access request through the real service: API -> Postgres -> Redis -> celery worker (queue gdpr) -> zip."""

from __future__ import annotations

import io
import json
import time
import uuid
import zipfile
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.gdpr import requests
from shared.gdpr.receipt import verify_receipt
from shared.settings import Settings
from shared.tables import SubjectRequest
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg, astronaut_png
from tests.integration.conftest import TENANT, WorkerProcess, stored_keys, wait_for_status
from worker.context import WorkerContext
from worker.gdpr_access import AccessOutcome, archive_key, build_access_archive, claim, republishable

BASE = "/v1/subject-requests"
VEHICLE = "WVW-ZZZ-1K-0815"


def submit(client: TestClient, data: bytes, **form: str) -> str:
    response = client.post("/v1/jobs", files={"file": ("p", data, "application/octet-stream")}, data=form)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_for_request(client: TestClient, request_id: str, timeout: float = 60) -> dict:
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        body = client.get(f"{BASE}/{request_id}").json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} still {body.get('status')} after {timeout}s")


def test_access_archive_end_to_end(client: TestClient, subject_client: TestClient, worker: WorkerProcess,
                                   settings: Settings) -> None:
    refs = json.dumps({"vehicle": VEHICLE})
    first = submit(client, astronaut_png(), subject_refs=refs, recorded_at="2026-03-03T08:15:00+01:00",
                   options='{"format": "png"}')
    second = submit(client, astronaut_jpeg(), subject_refs=json.dumps({"vehicle": VEHICLE, "drive": 2}))
    other = submit(client, astronaut_jpeg(), subject_refs=json.dumps({"vehicle": "someone-else"}))
    for job in (first, second, other):
        assert wait_for_status(client, job, {"succeeded", "failed", "dead"})["status"] == "succeeded"

    created = subject_client.post(BASE, json={"type": "access", "subject": {"subject_refs": {"vehicle": VEHICLE}},
                                              "reference": "DSAR-7"})
    assert created.status_code == 202, created.text
    request_id = created.json()["id"]
    assert subject_client.get(f"{BASE}/{request_id}/archive").status_code in (200, 409)

    done = wait_for_request(subject_client, request_id)
    assert done["status"] == "completed", done
    assert done["result"] == {"jobs_matched": 2, "media_files": 2, "outputs_not_stored": 0,
                              "archive_bytes": done["result"]["archive_bytes"]}
    expires = datetime.fromisoformat(done["archive_expires_at"])
    assert abs(expires - (utcnow() + timedelta(days=settings.keep_access_archives_days))) < timedelta(minutes=2)
    assert f"access/{request_id}/archive.zip" in stored_keys(settings)

    response = subject_client.get(f"{BASE}/{request_id}/archive")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None
    names = sorted(archive.namelist())
    assert names == sorted(["README.txt", "jobs.json", f"media/{first}.png", f"media/{second}.jpg"])
    for job in (first, second):  # the stored anonymized output, byte for byte
        ext = "png" if job == first else "jpg"
        assert archive.read(f"media/{job}.{ext}") == client.get(f"/v1/jobs/{job}/result").content
    assert not any("original" in n or other in n for n in names)

    readme = archive.read("README.txt").decode()
    assert "not included" in readme and "unmasked" in readme
    raw_jobs = archive.read("jobs.json").decode()
    assert VEHICLE not in raw_jobs and "subject_ref" not in raw_jobs and "DSAR-7" not in raw_jobs
    records = {j["id"]: j for j in json.loads(raw_jobs)["jobs"]}
    assert set(records) == {first, second}
    assert records[first]["recorded_at"].startswith("2026-03-03T07:15:00")
    assert records[first]["status"] == "succeeded" and records[first]["faces_found"] == 1
    assert "plates_found" in records[first]
    assert records[first]["manifest"]["models"][0]["name"] == "yunet_n"
    assert records[first]["detections"][0]["label"] == "face" and records[first]["options"]["format"] == "png"
    assert records[first]["input_retained"] is False and records[first]["media_file"] == f"media/{first}.png"
    assert "timings_ms" in records[first] and "output_expires_at" in records[first]
    assert not any("key" in field for field in records[first])  # no storage keys, no idempotency key

    receipt = subject_client.get(f"{BASE}/{request_id}/receipt").json()
    assert verify_receipt(receipt["receipt"], receipt["sha256"])
    assert receipt["receipt"]["type"] == "access" and receipt["receipt"]["jobs_matched"] == 2
    assert receipt["receipt"]["deadline_met"] is True and receipt["receipt"]["originals_included"] is False
    assert VEHICLE not in json.dumps(receipt) and "DSAR-7" not in json.dumps(receipt)


def test_a_request_is_built_once(engine: Engine, settings: Settings) -> None:
    with Session(engine, expire_on_commit=False) as session:
        request = requests.create(session=session, tenant_id=TENANT, type="access", secret=settings.subject_key,
                                  job_ids=[uuid.uuid4()])
    ctx = WorkerContext.build(settings)
    assert build_access_archive(ctx, request.id) is AccessOutcome.completed
    assert build_access_archive(ctx, request.id) is AccessOutcome.skipped  # a redelivered message
    with Session(engine) as session:
        row = session.get(SubjectRequest, request.id)
        assert row is not None and row.status == "completed" and row.attempts == 1
        assert row.result is not None and row.result["jobs_matched"] == 0 and row.archive_key == archive_key(row.id)
    assert build_access_archive(ctx, uuid.uuid4()) is AccessOutcome.skipped


def test_a_dead_attempt_is_taken_over_and_capped(engine: Engine, settings: Settings) -> None:
    with Session(engine, expire_on_commit=False) as session:
        request = requests.create(session=session, tenant_id=TENANT, type="access", secret=settings.subject_key,
                                  job_ids=[uuid.uuid4()])
    assert claim(engine, settings, request.id) is not None
    assert claim(engine, settings, request.id) is None  # held by a live attempt
    long_ago = utcnow() - timedelta(seconds=settings.task_time_limit_seconds + settings.lease_seconds + 5)
    for _ in range(settings.max_attempts):
        with Session(engine) as session:
            row = session.get(SubjectRequest, request.id)
            assert row is not None
            row.started_at = long_ago
            session.add(row)
            session.commit()
        claim(engine, settings, request.id)
    with Session(engine) as session:
        row = session.get(SubjectRequest, request.id)
        assert row is not None and row.status == "failed" and row.error_code == "attempts_exhausted"
        assert row.attempts == settings.max_attempts


def test_lost_messages_are_found_again(engine: Engine, settings: Settings) -> None:
    def make(age_s: float) -> uuid.UUID:
        with Session(engine, expire_on_commit=False) as session:
            return requests.create(session=session, tenant_id=TENANT, type="access", secret=settings.subject_key,
                                   job_ids=[uuid.uuid4()], now=utcnow() - timedelta(seconds=age_s)).id

    lost, just_sent = make(settings.queued_republish_seconds + 5), make(0)
    with Session(engine, expire_on_commit=False) as session:
        erasure = requests.create(session=session, tenant_id=TENANT, type="erasure", secret="s",
                                  job_ids=[uuid.uuid4()], now=utcnow() - timedelta(days=1))
    assert republishable(engine, settings, depth=None) == [lost]
    assert republishable(engine, settings, depth=1) == []  # the broker still holds a message: not lost
    assert just_sent not in republishable(engine, settings, depth=0) and erasure.id not in republishable(
        engine, settings, depth=0)
