"""The service on S3: API -> SeaweedFS -> PostgreSQL -> Redis -> a real celery worker -> SeaweedFS -> API.

Photos, a video, an upload over the limit, and data-subject requests (access archive, erasure that must leave
no version of anything behind), all with the objects in a versioned bucket.
"""

from __future__ import annotations

import io
import json
import os
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from shared.scopes import Scope
from shared.settings import Settings
from shared.tables import Job
from tests.images import astronaut_jpeg, decode_rgb
from tests.integration.conftest import TENANT, WorkerProcess, make_key, wait_for_status
from tests.integration.s3.conftest import s3_settings_for
from tests.support.seaweedfs import S3Endpoint, all_versions
from tests.unit.video_fixtures import make_clip

pytestmark = pytest.mark.integration

SUBJECTS = "/v1/subject-requests"
# Faces only: what these tests prove is about storage, and faces need only the bundled model.
FACES = json.dumps({"targets": ["face"]})


@pytest.fixture(scope="module")
def s3_subject_client(s3_settings: Settings, engine: Engine) -> Iterator[TestClient]:
    key = make_key(engine, TENANT, [Scope.subject_requests])
    with TestClient(create_app(s3_settings), headers={"Authorization": f"Bearer {key}"}) as client:
        yield client


def submit(client: TestClient, data: bytes, name: str = "p.jpg", **form: str) -> str:
    response = client.post("/v1/jobs", files={"file": (name, data, "application/octet-stream")},
                           data={"options": FACES, **form})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def keys(s3: S3Endpoint, bucket: str, prefix: str = "") -> list[str]:
    return sorted({key for key, _ in all_versions(s3.client(), bucket, prefix)})


def wait_for_request(client: TestClient, request_id: str, timeout: float = 60) -> dict:
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        body = client.get(f"{SUBJECTS}/{request_id}").json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.1)
    raise AssertionError(f"request {request_id} still {body.get('status')} after {timeout}s")


def test_image_job_on_s3(s3_client: TestClient, s3_worker: WorkerProcess, s3: S3Endpoint, clean_bucket: str,
                         engine: Engine) -> None:
    job_id = submit(s3_client, astronaut_jpeg())
    body = wait_for_status(s3_client, job_id, {"succeeded", "failed", "dead"})
    assert body["status"] == "succeeded", (body, s3_worker.output()[-4000:])
    result = s3_client.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    assert f'filename="{job_id}.jpg"' in result.headers["content-disposition"]
    assert decode_rgb(result.content).shape == decode_rgb(astronaut_jpeg()).shape
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None and job.output_key is not None
        output_key = job.output_key
    # Only the output remains: the original (unmasked faces) was deleted once the job succeeded, every version.
    assert keys(s3, clean_bucket) == [output_key]
    assert s3.client().get_object(Bucket=clean_bucket, Key=output_key)["Body"].read() == result.content


def test_video_job_on_s3(s3_client: TestClient, s3_worker: WorkerProcess, s3: S3Endpoint, clean_bucket: str,
                         tmp_path: Path) -> None:
    clip = make_clip(tmp_path / "clip.mp4", frames=12, width=160, height=120)
    job_id = submit(s3_client, clip.read_bytes(), name="clip.mp4")
    body = wait_for_status(s3_client, job_id, {"succeeded", "failed", "dead"}, timeout=120)
    assert body["status"] == "succeeded", (body, s3_worker.output()[-4000:])
    result = s3_client.get(f"/v1/jobs/{job_id}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "video/mp4"
    assert result.content[4:8] == b"ftyp"
    assert keys(s3, clean_bucket) == [key for key in keys(s3, clean_bucket) if key.startswith(f"outputs/{job_id}/")]


def test_upload_over_the_limit_leaves_nothing_in_the_bucket(s3: S3Endpoint, clean_bucket: str,
                                                             settings: Settings, api_key: str) -> None:
    # Over one 8 MiB part, so the refusal happens inside a multipart upload, which must be aborted.
    small = s3_settings_for(settings, s3, clean_bucket, max_upload_bytes=9 * 1024 * 1024)
    data = astronaut_jpeg() + os.urandom(12 * 1024 * 1024)
    with TestClient(create_app(small), headers={"Authorization": f"Bearer {api_key}"}) as client:
        response = client.post("/v1/jobs", files={"file": ("big.jpg", data, "image/jpeg")})
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "payload_too_large"
    assert all_versions(s3.client(), clean_bucket) == []
    assert s3.client().list_multipart_uploads(Bucket=clean_bucket).get("Uploads", []) == []


def test_access_archive_on_s3(s3_client: TestClient, s3_subject_client: TestClient, s3_worker: WorkerProcess,
                              s3: S3Endpoint, clean_bucket: str) -> None:
    job_id = submit(s3_client, astronaut_jpeg(), subject_refs=json.dumps({"vehicle": "S3-ACCESS-1"}))
    assert wait_for_status(s3_client, job_id, {"succeeded", "failed", "dead"})["status"] == "succeeded"
    created = s3_subject_client.post(SUBJECTS, json={"type": "access",
                                                     "subject": {"subject_refs": {"vehicle": "S3-ACCESS-1"}}})
    assert created.status_code == 202, created.text
    request_id = created.json()["id"]
    assert wait_for_request(s3_subject_client, request_id)["status"] == "completed"
    assert f"access/{request_id}/archive.zip" in keys(s3, clean_bucket)

    response = s3_subject_client.get(f"{SUBJECTS}/{request_id}/archive")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.read(f"media/{job_id}.jpg") == s3_client.get(f"/v1/jobs/{job_id}/result").content


def test_erasure_on_s3_leaves_no_version_behind(s3_client: TestClient, s3_subject_client: TestClient,
                                                s3_worker: WorkerProcess, s3: S3Endpoint, clean_bucket: str,
                                                engine: Engine) -> None:
    refs = json.dumps({"vehicle": "S3-ERASE-1"})
    mine = [submit(s3_client, astronaut_jpeg(), subject_refs=refs) for _ in range(2)]
    other = submit(s3_client, astronaut_jpeg(), subject_refs=json.dumps({"vehicle": "someone-else"}))
    for job in (*mine, other):
        assert wait_for_status(s3_client, job, {"succeeded", "failed", "dead"})["status"] == "succeeded"
    with Session(engine) as session:
        output = session.get(Job, mine[0]).output_key  # type: ignore[union-attr]
    assert output is not None
    # Older versions and a delete marker, as a versioned bucket keeps them after overwrites and plain deletes.
    client = s3.client()
    client.put_object(Bucket=clean_bucket, Key=output, Body=b"an older copy")
    client.put_object(Bucket=clean_bucket, Key=f"outputs/{mine[1]}/stray.jpg", Body=b"stray")
    client.delete_object(Bucket=clean_bucket, Key=f"outputs/{mine[1]}/stray.jpg")
    assert len(all_versions(client, clean_bucket, f"outputs/{mine[0]}/")) == 2

    created = s3_subject_client.post(SUBJECTS, json={"type": "erasure",
                                                     "subject": {"subject_refs": {"vehicle": "S3-ERASE-1"}}})
    assert created.status_code == 202, created.text
    done = wait_for_request(s3_subject_client, created.json()["id"])
    assert done["status"] == "completed", done

    for job in mine:
        assert all_versions(client, clean_bucket, f"outputs/{job}/") == []
        assert all_versions(client, clean_bucket, f"inputs/{job}/") == []
        assert s3_client.get(f"/v1/jobs/{job}").status_code == 404
    assert keys(s3, clean_bucket, f"outputs/{other}/") != []  # someone else's result stays
    receipt = s3_subject_client.get(f"{SUBJECTS}/{created.json()['id']}/receipt").json()["receipt"]
    assert receipt["erased"]["store:outputs"] == 3  # two outputs and the stray hidden behind its marker
