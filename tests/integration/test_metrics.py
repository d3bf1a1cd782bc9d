"""/metrics of the real app and of real workers, after real jobs: parsed with prometheus_client's parser."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from shared.queues import TaskName
from shared.settings import Settings
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg
from tests.integration.conftest import TENANT, WorkerProcess, start_worker, wait_for_status
from tests.integration.test_video_jobs import make_clip, submit
from tests.support.services import free_port

TOKEN = "scrape-token-for-tests"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture(scope="module")
def metrics_settings(settings: Settings, redis_url: str) -> Settings:
    # Same PostgreSQL; the broker in Redis database 15, where no worker listens, so queue depths are ours alone.
    return settings.model_copy(update={"metrics_token": SecretStr(TOKEN),
                                       "broker_url": redis_url.rsplit("/", 1)[0] + "/15"})


@pytest.fixture(scope="module")
def scraper(metrics_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(metrics_settings), headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def scrape(scraper: TestClient) -> Samples:
    response = scraper.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def scrape_worker(worker: WorkerProcess) -> Samples:
    assert worker.metrics_url is not None
    return parse(httpx.get(worker.metrics_url, timeout=10).text)


def test_metrics_is_off_without_a_token_and_refuses_a_wrong_one(client: TestClient, scraper: TestClient) -> None:
    off = client.get("/metrics")  # the session's app has no VEIL_METRICS_TOKEN
    assert off.status_code == 404 and off.json()["code"] == "metrics_disabled"
    for headers in ({"Authorization": ""}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        refused = scraper.get("/metrics", headers=headers)
        assert refused.status_code == 401 and refused.json()["code"] == "unauthorized"
        assert TOKEN not in refused.text


def test_job_counts_and_worker_histograms_follow_real_jobs(client: TestClient, scraper: TestClient,
                                                           worker: WorkerProcess) -> None:
    before_worker = scrape_worker(worker)
    assert value(scrape(scraper), "veil_jobs", status="succeeded", kind="image") == 0  # tables emptied per test

    good = [client.post("/v1/jobs", files={"file": (f"a{i}.jpg", astronaut_jpeg())}).json()["id"] for i in range(2)]
    bad = client.post("/v1/jobs", files={"file": ("b.jpg", astronaut_jpeg()[:3000])}).json()["id"]
    for job_id in good:
        wait_for_status(client, job_id, {"succeeded"})
    wait_for_status(client, bad, {"failed"})

    after = scrape(scraper)
    assert value(after, "veil_jobs", status="succeeded", kind="image") == 2
    assert value(after, "veil_jobs", status="failed", kind="image") == 1
    assert value(after, "veil_jobs", status="queued", kind="image") == 0
    assert value(after, "veil_oldest_queued_job_age_seconds", kind="image") == 0
    assert value(after, "veil_metrics_source_up", source="database") == 1

    # The worker's own endpoint: the pool child's observations, summed by the main process.
    after_worker = scrape_worker(worker)

    def count(samples: Samples, outcome: str) -> float:
        return samples.get(("veil_job_processing_seconds_count",
                            frozenset({"kind": "image", "outcome": outcome}.items())), 0.0)

    assert count(after_worker, "succeeded") - count(before_worker, "succeeded") == 2
    assert count(after_worker, "failed") - count(before_worker, "failed") == 1
    assert value(after_worker, "veil_worker_execution_provider", provider="CPUExecutionProvider") == 1
    inf_bucket = value(after_worker, "veil_job_processing_seconds_bucket", kind="image", outcome="succeeded",
                       le="+Inf")
    assert inf_bucket == count(after_worker, "succeeded")


def test_queue_depth_oldest_queued_and_subject_deadlines(scraper: TestClient, engine: Engine,
                                                        api_key: str) -> None:
    before = scrape(scraper)
    assert value(before, "veil_metrics_source_up", source="broker") == 1
    videos_before = value(before, "veil_queue_depth", queue="videos")

    now = utcnow()
    with Session(engine) as session:
        # Rows written directly, and their messages sent to database 15: no worker will ever take them.
        waiting = [Job(tenant_id=TENANT, kind="video", created_at=now - timedelta(hours=2)),
                   Job(tenant_id=TENANT, kind="video", created_at=now - timedelta(minutes=5))]
        session.add_all(waiting)
        session.add(SubjectRequest(tenant_id=TENANT, type="erasure", received_at=now - timedelta(days=40),
                                   due_at=now - timedelta(days=9)))
        session.add(SubjectRequest(tenant_id=TENANT, type="access", received_at=now - timedelta(days=20),
                                   due_at=now + timedelta(days=10)))
        session.add(SubjectRequest(tenant_id=TENANT, type="access", status="completed",
                                   received_at=now - timedelta(days=60), due_at=now - timedelta(days=30)))
        session.commit()
        ids = [job.id for job in waiting]
    publisher = scraper.app.state.publisher  # type: ignore[attr-defined]
    assert publisher.publish(TaskName.anonymize_video, ids) == ids

    after = scrape(scraper)
    assert value(after, "veil_queue_depth", queue="videos") == videos_before + 2
    assert value(after, "veil_jobs", status="queued", kind="video") == 2
    assert value(after, "veil_oldest_queued_job_age_seconds", kind="video") >= 2 * 3600
    assert value(after, "veil_subject_requests_open", type="erasure") == 1
    assert value(after, "veil_subject_requests_overdue", type="erasure") == 1
    assert value(after, "veil_subject_requests_open", type="access") == 1  # the completed one is not open
    assert value(after, "veil_subject_requests_overdue", type="access") == 0
    assert -9.01 < value(after, "veil_subject_request_deadline_days", type="erasure") < -8.99
    assert 10.0 >= value(after, "veil_subject_request_deadline_days", type="access") > 9.9


def test_labels_carry_no_tenant_or_identifier(scraper: TestClient, client: TestClient) -> None:
    job = client.post("/v1/jobs", files={"file": ("Jane-Doe.jpg", astronaut_jpeg())},
                      data={"subject_refs": '{"driver": "DRV-998877"}'}).json()
    text = scraper.get("/metrics").text
    for secret in (TENANT, job["id"], "Jane-Doe", "DRV-998877", TOKEN):
        assert secret not in text


@pytest.fixture(scope="module")
def video_worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = start_worker(settings, tmp_path_factory.mktemp("metrics-video-worker") / "worker.log", queues="videos",
                     metrics_port=free_port())
    yield w
    w.stop()


def test_a_finished_video_adds_to_the_fps_histogram(client: TestClient, video_worker: WorkerProcess) -> None:
    before = scrape_worker(video_worker)
    job = submit(client, make_clip(frames=24)).json()
    done = wait_for_status(client, job["id"], {"succeeded", "failed", "dead"}, timeout=120)
    assert done["status"] == "succeeded", done
    after = scrape_worker(video_worker)
    assert value(after, "veil_video_fps_count") - value(before, "veil_video_fps_count") == 1
    fps_sum = value(after, "veil_video_fps_sum") - value(before, "veil_video_fps_sum")
    assert fps_sum == pytest.approx(done["video"]["fps"], rel=0.01)
    assert value(after, "veil_job_processing_seconds_count", kind="video", outcome="succeeded") >= 1


def test_request_id_is_returned_and_a_callers_uuid_is_kept(client: TestClient) -> None:
    fresh = client.get("/healthz")
    uuid.UUID(fresh.headers["X-Request-ID"])
    mine = str(uuid.uuid4())
    assert client.get("/healthz", headers={"X-Request-ID": mine}).headers["X-Request-ID"] == mine
    free_form = client.get("/healthz", headers={"X-Request-ID": "Jane-Doe"}).headers["X-Request-ID"]
    assert free_form != "Jane-Doe"
    uuid.UUID(free_form)
