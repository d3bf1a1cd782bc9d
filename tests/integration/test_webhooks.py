"""Webhooks end to end: a real worker posts signed status changes to a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.app import create_app
from shared import tenants
from shared.queues import TaskName
from shared.settings import Settings
from shared.states import JobStatus
from shared.storage import LocalStorage
from shared.tables import Job, WebhookDelivery
from shared.timeutil import utcnow
from shared.webhook_outbox import enqueue_job_event
from shared.webhook_signing import verify
from tests.images import astronaut_jpeg
from tests.integration.conftest import TENANT, WorkerProcess, start_worker, wait_for_status
from worker.celery_app import create_celery
from worker.publisher import Publisher
from worker.reaper import reap_once
from worker.webhook_delivery import DeliveryOutcome, deliver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict:
        return json.loads(self.body)


@dataclass
class Receiver:
    """An HTTP server that records every POST and answers from a per-path script of status codes."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    answers: dict[str, list[int]] = field(default_factory=dict)
    delay_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}{path}"

    def answer(self, path: str) -> int:
        with self.lock:
            script = self.answers.get(path, [200])
            return script.pop(0) if len(script) > 1 else script[0]

    def wait_for(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.received) >= count:
                return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} requests, got {len(self.received)}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            recv = holder[0]
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with recv.lock:
                recv.received.append(Received(self.path, dict(self.headers.items()), body))
            time.sleep(recv.delay_s)
            self.send_response(recv.answer(self.path))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    holder.append(Receiver(server))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield holder[0]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hooked_settings(settings: Settings) -> Settings:
    """The suite's settings, but callbacks to 127.0.0.1 allowed (where the test receiver listens)."""
    return settings.model_copy(update={"webhook_allow_private": True})


@pytest.fixture(scope="module")
def hook_worker(hooked_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = start_worker(hooked_settings, tmp_path_factory.mktemp("hook-worker") / "worker.log",
                     queues="images,maintenance,webhooks")
    yield w
    w.stop()


@pytest.fixture(scope="module")
def hook_client(hooked_settings: Settings, client: TestClient) -> Iterator[TestClient]:
    with TestClient(create_app(hooked_settings), headers=client.headers) as c:
        yield c


def secret(engine: Engine) -> str:
    with Session(engine) as session:
        return tenants.webhook_secret(session=session, tenant_id=TENANT)


def deliveries(engine: Engine, job_id: uuid.UUID) -> list[WebhookDelivery]:
    with Session(engine) as session:
        return list(session.exec(select(WebhookDelivery).where(col(WebhookDelivery.job_id) == job_id)
                                 .order_by(col(WebhookDelivery.created_at))))


def insert_job(engine: Engine, callback_url: str, **values: object) -> uuid.UUID:
    """A committed job row, never published: nothing but the test moves it."""
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=TENANT)
        job = Job(tenant_id=TENANT, callback_url=callback_url, **values)
        session.add(job)
        session.commit()
        return job.id


def pending_delivery(engine: Engine, callback_url: str) -> uuid.UUID:
    job_id = insert_job(engine, callback_url, status=JobStatus.failed.value, error_code="input_missing")
    with engine.begin() as conn:
        delivery_id = enqueue_job_event(conn, job_id, JobStatus.failed)
    assert delivery_id is not None
    return delivery_id


def test_job_events_reach_the_receiver_signed(hook_client: TestClient, hook_worker: WorkerProcess,
                                              receiver: Receiver, engine: Engine) -> None:
    response = hook_client.post(
        "/v1/jobs", files={"file": ("driver-D4242-at-depot.jpg", astronaut_jpeg(), "image/jpeg")},
        data={"callback_url": receiver.url("/hooks/veil"), "subject_refs": json.dumps({"driver": "D-4242"})})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    wait_for_status(hook_client, job_id, {"succeeded"})

    received = receiver.wait_for(2)
    assert sorted(r.json["event"] for r in received) == ["job.running", "job.succeeded"]
    key = secret(engine)
    for r in received:
        assert r.path == "/hooks/veil"
        assert verify(key, r.body, r.headers["Veil-Signature"])
        assert not verify(key + "x", r.body, r.headers["Veil-Signature"])
        assert r.headers["Content-Type"] == "application/json"
        assert r.headers["User-Agent"] == "Veil-Webhooks/1"
        assert r.headers["Veil-Event"] == r.json["event"] and r.headers["Veil-Delivery"] == r.json["id"]
        assert r.json["data"]["job_id"] == job_id
        assert r.json["data"]["links"]["self"] == f"/v1/jobs/{job_id}"
        text = r.body.decode()
        assert "D-4242" not in text and "D4242" not in text and "subject" not in text and "depot" not in text
    done = next(r.json for r in received if r.json["event"] == "job.succeeded")
    assert done["data"]["status"] == "succeeded" and done["data"]["faces_found"] >= 1
    assert done["data"]["error_code"] is None

    rows = deliveries(engine, uuid.UUID(job_id))
    assert [(d.event, d.status, d.attempts, d.last_status_code) for d in rows] == [
        ("job.running", "delivered", 1, 200), ("job.succeeded", "delivered", 1, 200)]
    assert len(receiver.received) == 2


def test_a_failing_receiver_is_retried_through_the_sweeper(hook_client: TestClient, hook_worker: WorkerProcess,
                                                           receiver: Receiver, engine: Engine,
                                                           settings: Settings) -> None:
    receiver.answers["/flaky"] = [500, 200]
    job_id = insert_job(engine, receiver.url("/flaky"))
    assert hook_client.delete(f"/v1/jobs/{job_id}").status_code == 204  # cancels, and rings for the webhook
    first = receiver.wait_for(1)[0]
    assert first.json["event"] == "job.cancelled"
    deadline = time.monotonic() + 10
    while (rows := deliveries(engine, job_id))[0].last_status_code != 500:
        assert time.monotonic() < deadline, "the failed attempt was not recorded"
        time.sleep(0.05)
    (row,) = rows
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.next_attempt_at is not None and row.next_attempt_at > utcnow()

    # No countdown anywhere: the sweeper publishes the row once its backoff has passed.
    publisher = Publisher(create_celery(settings))
    storage = LocalStorage(settings.resolved_storage_root)
    deadline = time.monotonic() + 20
    while len(receiver.received) < 2:
        assert time.monotonic() < deadline, "the retry never came"
        reap_once(engine=engine, storage=storage, settings=settings, publish=lambda ids: list(ids),
                  publish_webhooks=lambda ids: publisher.publish(TaskName.deliver_webhook, ids))
        time.sleep(0.25)
    second = receiver.received[1]
    assert second.headers["Veil-Delivery"] == first.headers["Veil-Delivery"] == str(row.id)
    assert verify(secret(engine), second.body, second.headers["Veil-Signature"])
    deadline = time.monotonic() + 10
    while (row := deliveries(engine, job_id)[0]).status != "delivered":
        assert time.monotonic() < deadline, "the second attempt was not recorded"
        time.sleep(0.05)
    assert (row.attempts, row.last_status_code, row.last_error) == (2, 200, None)
    assert len(receiver.received) == 2


def test_private_url_is_refused_at_delivery(engine: Engine, settings: Settings, receiver: Receiver) -> None:
    assert not settings.webhook_allow_private
    delivery_id = pending_delivery(engine, receiver.url("/private"))
    assert deliver(engine, delivery_id, settings) is DeliveryOutcome.failed
    with Session(engine) as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None
        assert (row.status, row.attempts, row.last_error, row.last_status_code) == (
            "failed", 1, "UnsafeCallbackUrl", None)
    time.sleep(0.2)
    assert receiver.received == []


def test_concurrent_deliveries_of_one_row_send_once(engine: Engine, hooked_settings: Settings,
                                                    receiver: Receiver) -> None:
    receiver.delay_s = 0.3
    delivery_id = pending_delivery(engine, receiver.url("/once"))
    outcomes: list[DeliveryOutcome] = []
    barrier = threading.Barrier(8)

    def contend() -> None:
        barrier.wait()
        outcomes.append(deliver(engine, delivery_id, hooked_settings))

    threads = [threading.Thread(target=contend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == sorted([DeliveryOutcome.delivered] + [DeliveryOutcome.skipped] * 7)
    assert len(receiver.received) == 1
    with Session(engine) as session:
        row = session.get(WebhookDelivery, delivery_id)
        assert row is not None and (row.status, row.attempts) == ("delivered", 1)


def test_reaper_announces_a_job_it_declares_dead(engine: Engine, settings: Settings) -> None:
    job_id = insert_job(engine, "https://receiver.example/hook", status=JobStatus.running.value, attempts=3,
                        max_attempts=3, lease_owner="gone", lease_expires_at=utcnow() - timedelta(seconds=5))
    rung: list[uuid.UUID] = []

    def ring(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        rung.extend(ids)
        return list(rung)

    report = reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                       publish=lambda ids: list(ids), publish_webhooks=ring)
    (row,) = deliveries(engine, job_id)
    assert report.dead == 1 and (row.event, row.payload["data"]["error_code"]) == ("job.dead", "attempts_exhausted")
    assert rung == report.webhooks_published == [row.id]
    # A backlog at least as long as what is due means nothing was lost: no second ring.
    again = reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                      publish=lambda ids: list(ids), publish_webhooks=lambda ids: list(ids),
                      webhook_queue_depth=lambda: 1)
    assert again.webhooks_published == []


@pytest.mark.parametrize("url", ["http://127.0.0.1/hook", "http://localhost:8080/hook", "http://10.1.2.3/",
                                 "ftp://example.com/hook", "http://user:pw@example.com/"])
def test_submitting_an_unsafe_callback_url_is_refused(client: TestClient, url: str) -> None:
    response = client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg(), "image/jpeg")},
                           data={"callback_url": url})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_callback_url"
    assert url not in response.text
