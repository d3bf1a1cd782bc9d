"""A worker without the pulled models (a VEIL_MODELS_DIR with none of them but one altered file): jobs that
need one fail at once with `model_missing` or `model_integrity` instead of burning their attempts, the worker
says on its /metrics which models it cannot use, and jobs that need only the bundled models still run on it.

Its own Redis database, so the suite's other workers never take these jobs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from shared.settings import Settings
from tests.images import astronaut_png
from tests.integration.conftest import WorkerProcess, start_worker, wait_for_status
from tests.integration.s3.conftest import own_redis_database
from tests.support.services import free_port
from worker.engine.registry import default_manifest

TERMINAL = {"succeeded", "failed", "dead"}
ALTERED = "ppocr_v6_det_small"


@pytest.fixture(scope="module")
def bare_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    assert settings.broker_url is not None
    # balanced, not the default thorough: its warm-up must leave thorough's CenterFace for a job to find missing.
    models_dir = tmp_path_factory.mktemp("no-models")
    altered = models_dir / default_manifest()[ALTERED].file  # the plate text model: not what its sha256 says
    altered.parent.mkdir(parents=True)
    altered.write_bytes(b"not the PP-OCR model")
    return settings.model_copy(update={"models_dir": models_dir,
                                       "broker_url": own_redis_database(settings.broker_url, 11),
                                       "default_preset": "balanced"})


@pytest.fixture(scope="module")
def bare_worker(bare_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = start_worker(bare_settings, tmp_path_factory.mktemp("bare-worker") / "worker.log", queues="images",
                     metrics_port=free_port())
    yield w
    w.stop()


@pytest.fixture(scope="module")
def bare_client(bare_settings: Settings, client: TestClient) -> Iterator[TestClient]:
    with TestClient(create_app(bare_settings), headers=client.headers) as c:
        yield c


def submit(client: TestClient, options: str) -> str:
    response = client.post("/v1/jobs", files={"file": ("photo.png", astronaut_png(), "image/png")},
                           data={"options": options})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def missing_gauges(worker: WorkerProcess) -> set[str]:
    assert worker.metrics_url is not None
    lines = httpx.get(worker.metrics_url, timeout=10).text.splitlines()
    prefix = 'veil_worker_model_missing{model="'
    return {line[len(prefix):].split('"')[0] for line in lines if line.startswith(prefix) and line.endswith(" 1.0")}


def wait_for_gauge(worker: WorkerProcess, model: str, timeout: float = 60) -> set[str]:
    # The pool child warms up after the main process reports " ready.", so the gauge may come a little later.
    deadline = time.monotonic() + timeout
    while model not in (found := missing_gauges(worker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return found


def test_a_missing_model_fails_the_job_at_once_and_flags_the_worker(bare_client: TestClient,
                                                                     bare_worker: WorkerProcess) -> None:
    # The default preset's plate proposer is a pulled model, altered here: the start-up warm-up already found
    # it unusable.
    assert ALTERED in wait_for_gauge(bare_worker, ALTERED)

    # thorough's faces add CenterFace, also pulled, which this worker's warm-up does not load: this job is the
    # first to need it.
    job = submit(bare_client, '{"targets": ["face"], "preset": "thorough"}')
    done = wait_for_status(bare_client, job, TERMINAL)
    assert done["status"] == "failed" and done["error"]["code"] == "model_missing"
    assert done["attempts"] == 1  # not retried: no attempt on this worker would find the file
    assert "centerface" in done["error"]["message"] and "veil models pull" in done["error"]["message"]
    assert str(Path.home()) not in done["error"]["message"]
    assert "centerface" in missing_gauges(bare_worker)
    assert "model missing" in bare_worker.output()

    # The bundled face model is all the fast preset needs: such jobs still run here.
    ok = wait_for_status(bare_client, submit(bare_client, '{"targets": ["face"], "preset": "fast"}'), TERMINAL)
    assert ok["status"] == "succeeded" and ok["faces_found"] == 1
    assert bare_worker.alive()


def test_an_altered_model_file_fails_the_job_at_once(bare_client: TestClient, bare_worker: WorkerProcess) -> None:
    job = submit(bare_client, '{"targets": ["plate"], "preset": "balanced"}')
    done = wait_for_status(bare_client, job, TERMINAL)
    assert done["status"] == "failed" and done["error"]["code"] == "model_integrity"
    assert done["attempts"] == 1
    assert ALTERED in done["error"]["message"] and "sha256" in done["error"]["message"]
    assert str(Path.home()) not in done["error"]["message"] and "/" not in done["error"]["message"]
    assert bare_worker.alive()
