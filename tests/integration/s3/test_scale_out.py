"""Scale-out: the API and three workers as separate processes, objects in S3, one queue per kind of work.

A mixed batch (photos, a short video, a data-subject access request and an erasure) completes, and every
worker's own log shows it ran only its queue's tasks: each job and request id is found, as the argument of a
succeeded task, in the log of the worker for its queue and in no other.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine

from shared.queues import QueueName, TaskName
from shared.scopes import Scope
from shared.settings import Settings
from tests.images import astronaut_jpeg
from tests.integration.conftest import REPO, TENANT, WorkerProcess, make_key, settings_env, start_worker
from tests.integration.s3.conftest import s3_settings_for
from tests.support.seaweedfs import S3Endpoint, all_versions
from tests.support.services import free_port
from tests.unit.video_fixtures import make_clip

pytestmark = pytest.mark.integration

SUBJECTS = "/v1/subject-requests"
# Which worker serves which queues: separate processes, nothing shared but PostgreSQL, Redis and the bucket.
WORKERS = {"images": QueueName.images.value, "videos": QueueName.videos.value,
           "gdpr": f"{QueueName.gdpr.value},{QueueName.maintenance.value}"}


@dataclass
class Deployment:
    api: httpx.Client
    subjects: httpx.Client
    workers: dict[str, WorkerProcess]
    bucket: str


def start_api(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("API exited during start-up:\n" + log.read_text(errors="replace")[-3000:])
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError("API not ready in time:\n" + log.read_text(errors="replace")[-3000:])


@pytest.fixture
def deployment(settings: Settings, s3: S3Endpoint, engine: Engine, redis_url: str,
               tmp_path: Path) -> Iterator[Deployment]:
    bucket = s3.create_bucket(versioned=True)
    # Redis database 8: no other worker of the test session listens there.
    scaled = s3_settings_for(settings, s3, bucket, erasure_grace_seconds=0, worker_concurrency=1, ort_threads=1)
    scaled = scaled.model_copy(update={"broker_url": scaled.resolved_broker_url.rsplit("/", 1)[0] + "/8"})
    env = {**settings_env(scaled), **s3.env()}
    api_proc, url = start_api(env, tmp_path / "api.log")
    workers: dict[str, WorkerProcess] = {}
    try:
        for name, queues in WORKERS.items():
            workers[name] = start_worker(scaled, tmp_path / f"worker-{name}.log", queues=queues, extra_env=s3.env())
        writer = make_key(engine, TENANT, [Scope.jobs_write, Scope.jobs_read])
        officer = make_key(engine, TENANT, [Scope.subject_requests])
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {writer}"}, timeout=30) as api, \
                httpx.Client(base_url=url, headers={"Authorization": f"Bearer {officer}"}, timeout=30) as subjects:
            yield Deployment(api=api, subjects=subjects, workers=workers, bucket=bucket)
    finally:
        for worker in workers.values():
            worker.stop()
        api_proc.terminate()
        try:
            api_proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            api_proc.kill()


def submit(api: httpx.Client, data: bytes, name: str, refs: dict[str, str] | None = None) -> str:
    # Faces only: what this test proves is about queues and storage, and faces need only the bundled model.
    form = {"options": json.dumps({"targets": ["face"]})}
    if refs:
        form["subject_refs"] = json.dumps(refs)
    response = api.post("/v1/jobs", files={"file": (name, data, "application/octet-stream")}, data=form)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def wait_for(client: httpx.Client, path: str, done: set[str], timeout: float = 180) -> dict:
    deadline, body = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        body = client.get(path).json()
        if body.get("status") in done:
            return body
        time.sleep(0.2)
    raise AssertionError(f"{path} still {body.get('status')} after {timeout}s")


def succeeded_tasks(worker: WorkerProcess) -> dict[str, set[str]]:
    """Task name -> the ids it was called with, from the worker's log of tasks that returned normally."""
    found: dict[str, set[str]] = {}
    for line in worker.output().splitlines():
        if " succeeded in " not in line or not line.startswith("{"):
            continue
        data = json.loads(line).get("data") or {}
        for arg in data.get("args", "").strip("[]").replace("'", "").split(","):
            if arg.strip():
                found.setdefault(str(data.get("name")), set()).add(arg.strip())
    return found


def test_mixed_batch_runs_each_task_on_its_own_queue(deployment: Deployment, s3: S3Endpoint,
                                                     tmp_path: Path) -> None:
    api, subjects = deployment.api, deployment.subjects
    access_subject, erased_subject = {"vehicle": "SCALE-A"}, {"vehicle": "SCALE-E"}
    photos = [submit(api, astronaut_jpeg(quality=q), f"{q}.jpg", refs)
              for q, refs in ((90, access_subject), (85, access_subject), (80, erased_subject),
                              (75, erased_subject), (70, None), (65, None))]
    video = submit(api, make_clip(tmp_path / "clip.mp4", frames=12).read_bytes(), "clip.mp4", access_subject)
    for job in (*photos, video):
        body = wait_for(api, f"/v1/jobs/{job}", {"succeeded", "failed", "dead"})
        assert body["status"] == "succeeded", body

    access = subjects.post(SUBJECTS, json={"type": "access", "subject": {"subject_refs": access_subject}})
    erasure = subjects.post(SUBJECTS, json={"type": "erasure", "subject": {"subject_refs": erased_subject}})
    assert access.status_code == 202 and erasure.status_code == 202, (access.text, erasure.text)
    access_id, erasure_id = access.json()["id"], erasure.json()["id"]
    for request_id in (access_id, erasure_id):
        body = wait_for(subjects, f"{SUBJECTS}/{request_id}", {"completed", "failed"})
        assert body["status"] == "completed", body

    # Every task ran on the worker of its queue, and on no other.
    ran = {name: succeeded_tasks(worker) for name, worker in deployment.workers.items()}
    expected = {
        "images": {TaskName.anonymize_image.value: set(photos)},
        "videos": {TaskName.anonymize_video.value: {video}},
        "gdpr": {TaskName.gdpr_access.value: {access_id}, TaskName.gdpr_erase.value: {erasure_id}},
    }
    assert ran == expected

    # The access archive, built in one process and served from S3 by another, holds the subject's outputs.
    archive = subjects.get(f"{SUBJECTS}/{access_id}/archive")
    assert archive.status_code == 200, archive.text
    names = set(zipfile.ZipFile(io.BytesIO(archive.content)).namelist())
    assert {f"media/{photos[0]}.jpg", f"media/{photos[1]}.jpg", f"media/{video}.mp4"} <= names

    # The erased subject's jobs are gone, with every version of every object; the others' results remain.
    client = s3.client()
    for job in photos[2:4]:
        assert api.get(f"/v1/jobs/{job}").status_code == 404
        assert all_versions(client, deployment.bucket, f"outputs/{job}/") == []
        assert all_versions(client, deployment.bucket, f"inputs/{job}/") == []
    for job in (*photos[:2], *photos[4:], video):
        result = api.get(f"/v1/jobs/{job}/result")
        assert result.status_code == 200 and len(result.content) > 0
    receipt = subjects.get(f"{SUBJECTS}/{erasure_id}/receipt").json()["receipt"]
    assert receipt["erased"]["table:job"] == 2 and receipt["erased"]["store:outputs"] == 2
