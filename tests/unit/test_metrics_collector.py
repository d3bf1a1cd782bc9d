"""The scrape-time collector on the embedded SQLite job table (the integration tests cover PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared import tenants
from shared.db import make_engine
from shared.metrics_broker import queue_depths
from shared.metrics_collector import VeilCollector
from shared.migrate import upgrade
from shared.settings import Settings
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow
from tests.support.services import free_port
from worker.celery_app import create_celery

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    eng = make_engine(Settings(data_dir=tmp_path))
    upgrade(eng)
    with Session(eng) as session:
        tenants.ensure(session=session, tenant_id="t1")
    return eng


def scrape(engine: Engine, depths: dict[str, int] | None) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(VeilCollector(engine, lambda: depths))
    text = generate_latest(registry).decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_an_empty_table_reports_zeros_for_every_status_and_kind(engine: Engine) -> None:
    samples = scrape(engine, {"images": 0, "videos": 0})
    jobs = {labels: v for (name, labels), v in samples.items() if name == "veil_jobs"}
    assert len(jobs) == 6 * 2 and set(jobs.values()) == {0.0}
    assert samples[("veil_oldest_queued_job_age_seconds", frozenset({("kind", "video")}))] == 0
    assert ("veil_subject_request_deadline_days", frozenset({("type", "access")})) not in samples


def test_counts_ages_and_deadlines(engine: Engine) -> None:
    now = utcnow()
    with Session(engine) as session:
        session.add_all([
            Job(tenant_id="t1", kind="image", status="queued", created_at=now - timedelta(minutes=30)),
            Job(tenant_id="t1", kind="image", status="queued", created_at=now - timedelta(minutes=1)),
            Job(tenant_id="t1", kind="image", status="succeeded"),
            Job(tenant_id="t1", kind="video", status="running"),
            SubjectRequest(tenant_id="t1", type="erasure", status="sweeping", due_at=now + timedelta(days=3)),
            SubjectRequest(tenant_id="t1", type="erasure", status="received", due_at=now + timedelta(days=20)),
            SubjectRequest(tenant_id="t1", type="access", status="failed", due_at=now - timedelta(days=1)),
        ])
        session.commit()
    s = scrape(engine, {"images": 4, "videos": 1})

    def v(name: str, **labels: str) -> float:
        return s[(name, frozenset(labels.items()))]

    assert v("veil_jobs", status="queued", kind="image") == 2
    assert v("veil_jobs", status="succeeded", kind="image") == 1
    assert v("veil_jobs", status="running", kind="video") == 1
    assert 30 * 60 <= v("veil_oldest_queued_job_age_seconds", kind="image") < 31 * 60
    assert v("veil_queue_depth", queue="images") == 4
    assert v("veil_subject_requests_open", type="erasure") == 2
    assert v("veil_subject_requests_overdue", type="erasure") == 0
    assert 2.99 < v("veil_subject_request_deadline_days", type="erasure") <= 3.0
    assert v("veil_subject_requests_open", type="access") == 0  # failed is not open
    assert v("veil_metrics_source_up", source="database") == 1 and v("veil_metrics_source_up", source="broker") == 1


def test_an_unreadable_source_is_reported_not_raised(engine: Engine) -> None:
    engine.dispose()
    broken = make_engine(Settings(database_url="sqlite:////nonexistent-dir/x.db"))
    s = scrape(broken, None)
    assert s[("veil_metrics_source_up", frozenset({("source", "database")}))] == 0
    assert s[("veil_metrics_source_up", frozenset({("source", "broker")}))] == 0
    assert not any(name == "veil_jobs" for name, _ in s)


def test_an_unreachable_broker_gives_no_depths_rather_than_an_error(tmp_path: Path) -> None:
    celery = create_celery(Settings(data_dir=tmp_path, broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    assert queue_depths(celery) is None
