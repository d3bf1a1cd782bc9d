"""The webhook outbox and deliverer on SQLite, with httpx's mock transport as the receiver."""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from shared import callback_urls, job_claims, job_queries, tenants
from shared.db import make_engine
from shared.settings import Settings
from shared.states import JobStatus
from shared.tables import Job, WebhookDelivery, metadata
from shared.timeutil import utcnow
from shared.webhook_outbox import due_for_job, enqueue_job_event
from shared.webhook_signing import verify
from worker.webhook_delivery import MAX_BACKOFF_S, DeliveryOutcome, backoff_seconds, deliver, due_deliveries

URL = "https://receiver.example/hooks/veil"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, webhook_allow_private=True, webhook_max_attempts=3)


@pytest.fixture
def engine(settings: Settings) -> Engine:
    eng = make_engine(settings)
    metadata.create_all(eng)
    with Session(eng) as session:
        tenants.create(session=session, tenant_id="acme")
    return eng


def add_job(engine: Engine, callback_url: str | None = URL, **values: object) -> uuid.UUID:
    job = Job(tenant_id="acme", callback_url=callback_url, input_key="inputs/secret-name.jpg",
              subject_ref_hashes=["hash-of-driver-D42"], **values)
    with Session(engine) as session:
        session.add(job)
        session.commit()
        return job.id


def add_delivery(engine: Engine, status: JobStatus = JobStatus.succeeded, url: str = URL) -> uuid.UUID:
    job_id = add_job(engine, callback_url=url, status=status.value, faces_found=2, plates_found=3)
    with engine.begin() as conn:
        delivery_id = enqueue_job_event(conn, job_id, status)
    assert delivery_id is not None
    return delivery_id


def row(engine: Engine, delivery_id: uuid.UUID) -> WebhookDelivery:
    with Session(engine) as session:
        found = session.get(WebhookDelivery, delivery_id)
        assert found is not None
        return found


def deliveries(engine: Engine, job_id: uuid.UUID | None = None) -> list[WebhookDelivery]:
    query = select(WebhookDelivery).order_by(col(WebhookDelivery.created_at))
    if job_id is not None:
        query = query.where(col(WebhookDelivery.job_id) == job_id)
    with Session(engine) as session:
        return list(session.exec(query))


def make_due(engine: Engine, delivery_id: uuid.UUID) -> None:
    with engine.begin() as conn:
        conn.execute(update(WebhookDelivery).where(col(WebhookDelivery.id) == delivery_id)
                     .values(next_attempt_at=utcnow() - timedelta(seconds=1)))


class Receiver:
    def __init__(self, *answers: int | type[Exception]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type):
            raise answer("boom at " + str(request.url), request=request)  # type: ignore[call-arg]
        return httpx.Response(answer, headers={"Location": "http://10.0.0.1/"} if answer == 302 else None)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def secret(engine: Engine) -> str:
    with Session(engine) as session:
        return tenants.webhook_secret(session=session, tenant_id="acme")


# Backoff

def test_backoff_doubles_from_two_seconds_and_caps_at_an_hour() -> None:
    assert [backoff_seconds(n, rand=lambda: 0.0) for n in range(1, 14)] == [
        2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
    assert backoff_seconds(10_000, rand=lambda: 0.0) == MAX_BACKOFF_S


@pytest.mark.parametrize("attempts", [1, 5, 11, 12, 40])
def test_backoff_jitter_only_shortens_by_up_to_a_fifth(attempts: int) -> None:
    base = min(MAX_BACKOFF_S, 2 ** attempts)
    assert backoff_seconds(attempts, rand=lambda: 1.0) == pytest.approx(0.8 * base)
    for _ in range(200):
        assert 0.8 * base <= backoff_seconds(attempts) <= base


# Outbox

def test_no_callback_url_no_delivery(engine: Engine) -> None:
    job_id = add_job(engine, callback_url=None)
    with engine.begin() as conn:
        assert enqueue_job_event(conn, job_id, JobStatus.running) is None
        assert enqueue_job_event(conn, uuid.uuid4(), JobStatus.running) is None


def test_payload_says_what_changed_and_nothing_personal(engine: Engine) -> None:
    delivery_id = add_delivery(engine, JobStatus.succeeded)
    d = row(engine, delivery_id)
    assert (d.status, d.attempts, d.event, d.url, d.tenant_id) == ("pending", 0, "job.succeeded", URL, "acme")
    assert d.next_attempt_at is not None and d.next_attempt_at <= utcnow()
    job_id = str(d.job_id)
    assert d.payload == {
        "id": str(delivery_id), "event": "job.succeeded", "created_at": d.payload["created_at"],
        "data": {"job_id": job_id, "status": "succeeded", "error_code": None, "faces_found": 2,
                 "plates_found": 3,
                 "links": {"self": f"/v1/jobs/{job_id}", "result": f"/v1/jobs/{job_id}/result",
                           "detections": f"/v1/jobs/{job_id}/detections"}},
    }
    text = json.dumps(d.payload)
    assert "hash-of-driver" not in text and "secret-name" not in text and "subject" not in text


def test_status_changes_enqueue_only_when_the_row_changed(engine: Engine) -> None:
    job_id = add_job(engine)
    claim = job_claims.claim(engine, job_id, lease_seconds=30)
    assert claim is not None
    assert job_claims.claim(engine, job_id, lease_seconds=30) is None  # held: no second job.running
    assert job_claims.finalize(engine, claim, JobStatus.succeeded, faces_found=1)
    assert not job_claims.finalize(engine, claim, JobStatus.failed)
    with Session(engine) as session:
        assert not job_queries.cancel(session=session, tenant_id="acme", job_id=job_id)
    events = [(d.event, d.payload["data"]["faces_found"]) for d in deliveries(engine)]
    assert events == [("job.running", None), ("job.succeeded", 1)]


def test_cancel_and_dead_claims_enqueue(engine: Engine) -> None:
    cancelled = add_job(engine)
    exhausted = add_job(engine, attempts=3, max_attempts=3)
    with Session(engine) as session:
        assert job_queries.cancel(session=session, tenant_id="acme", job_id=cancelled)
    assert job_claims.claim(engine, exhausted, lease_seconds=30) is None
    (on_cancel,), (on_dead,) = deliveries(engine, cancelled), deliveries(engine, exhausted)
    assert (on_cancel.event, on_cancel.payload["data"]["error_code"]) == ("job.cancelled", "cancelled")
    assert (on_dead.event, on_dead.payload["data"]["error_code"]) == ("job.dead", "attempts_exhausted")
    with Session(engine) as session:
        assert due_for_job(session, cancelled) == [on_cancel.id]


# Delivery

def test_delivered_with_signed_body_and_headers(engine: Engine, settings: Settings) -> None:
    delivery_id = add_delivery(engine)
    receiver = Receiver(204)
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.delivered
    (request,) = receiver.requests
    assert request.method == "POST" and str(request.url) == URL
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["User-Agent"] == "Veil-Webhooks/1"
    assert request.headers["Veil-Event"] == "job.succeeded"
    assert request.headers["Veil-Delivery"] == str(delivery_id)
    assert verify(secret(engine), request.content, request.headers["Veil-Signature"])
    assert json.loads(request.content)["id"] == str(delivery_id)
    d = row(engine, delivery_id)
    assert (d.status, d.attempts, d.last_status_code, d.last_error) == ("delivered", 1, 204, None)
    assert d.delivered_at is not None
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.skipped
    assert len(receiver.requests) == 1


def test_error_status_is_retried_after_backoff_then_delivered(engine: Engine, settings: Settings) -> None:
    delivery_id = add_delivery(engine)
    receiver = Receiver(500, 200)
    before = utcnow()
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.retry
    d = row(engine, delivery_id)
    assert (d.status, d.attempts, d.last_status_code) == ("pending", 1, 500)
    assert d.next_attempt_at is not None
    assert before + timedelta(seconds=1.5) <= d.next_attempt_at <= utcnow() + timedelta(seconds=2)
    assert delivery_id not in due_deliveries(engine, 10)
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.skipped
    make_due(engine, delivery_id)
    assert due_deliveries(engine, 10) == [delivery_id]
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.delivered
    d = row(engine, delivery_id)
    assert (d.status, d.attempts, d.last_status_code) == ("delivered", 2, 200)
    assert len(receiver.requests) == 2


def _exhaust(engine: Engine, settings: Settings, delivery_id: uuid.UUID, client: Callable[[], httpx.Client]) -> list[
        DeliveryOutcome]:
    outcomes = []
    for _ in range(settings.webhook_max_attempts):
        make_due(engine, delivery_id)
        outcomes.append(deliver(engine, delivery_id, settings, http_client=client()))
    return outcomes


def test_gives_up_after_max_attempts(engine: Engine, settings: Settings) -> None:
    delivery_id = add_delivery(engine)
    receiver = Receiver(503)
    assert _exhaust(engine, settings, delivery_id, receiver.client) == [
        DeliveryOutcome.retry, DeliveryOutcome.retry, DeliveryOutcome.failed]
    d = row(engine, delivery_id)
    assert (d.status, d.attempts, d.last_status_code) == ("failed", 3, 503)
    make_due(engine, delivery_id)
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.skipped
    assert len(receiver.requests) == 3


def test_network_error_records_its_type_only(engine: Engine, settings: Settings) -> None:
    delivery_id = add_delivery(engine)
    receiver = Receiver(httpx.ConnectError)
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.retry
    d = row(engine, delivery_id)
    assert (d.last_error, d.last_status_code) == ("ConnectError", None)


def test_redirects_are_not_followed(engine: Engine, settings: Settings) -> None:
    delivery_id = add_delivery(engine)
    receiver = Receiver(302)
    assert deliver(engine, delivery_id, settings, http_client=receiver.client()) is DeliveryOutcome.retry
    assert len(receiver.requests) == 1 and row(engine, delivery_id).last_status_code == 302


def test_private_url_is_refused_at_delivery_without_a_request(engine: Engine, settings: Settings) -> None:
    delivery_id = add_delivery(engine, url="http://127.0.0.1:9/hook")
    receiver = Receiver(200)
    strict = settings.model_copy(update={"webhook_allow_private": False})
    assert deliver(engine, delivery_id, strict, http_client=receiver.client()) is DeliveryOutcome.failed
    assert receiver.requests == []
    d = row(engine, delivery_id)
    assert (d.status, d.attempts, d.last_error) == ("failed", 1, "UnsafeCallbackUrl")


def test_unresolvable_host_is_retried(engine: Engine, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*_: object, **__: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(callback_urls.socket, "getaddrinfo", no_dns)
    delivery_id = add_delivery(engine)
    receiver = Receiver(200)
    strict = settings.model_copy(update={"webhook_allow_private": False})
    assert deliver(engine, delivery_id, strict, http_client=receiver.client()) is DeliveryOutcome.retry
    assert receiver.requests == [] and row(engine, delivery_id).status == "pending"


def test_unknown_or_finished_delivery_is_skipped(engine: Engine, settings: Settings) -> None:
    assert deliver(engine, uuid.uuid4(), settings, http_client=Receiver(200).client()) is DeliveryOutcome.skipped
