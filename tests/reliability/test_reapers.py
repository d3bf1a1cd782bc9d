"""Two sweepers at once (two beat schedulers by mistake, or `veil reap` beside beat): nothing is doubled."""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterable
from datetime import timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from shared import job_claims
from shared.db import make_engine
from shared.settings import Settings
from shared.storage import LocalStorage
from shared.tables import Job
from shared.timeutil import utcnow
from tests.reliability.conftest import insert_job
from worker.reaper import ReapReport, reap_once

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]

JOBS = 60
ROUNDS = 5


def race(settings: Settings, engines: list[Engine]) -> tuple[list[ReapReport], Counter[uuid.UUID]]:
    """Run one reaper pass per engine, all released at the same instant; count what each published."""
    barrier = threading.Barrier(len(engines))
    sent: Counter[uuid.UUID] = Counter()
    lock = threading.Lock()
    reports: list[ReapReport] = []

    def publish(ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        ids = list(ids)
        with lock:
            sent.update(ids)
        return ids

    def one(engine: Engine) -> None:
        barrier.wait()
        report = reap_once(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                           publish=publish)
        with lock:
            reports.append(report)

    threads = [threading.Thread(target=one, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(reports) == len(engines)
    return reports, sent


def test_two_reapers_requeue_each_expired_job_once(settings: Settings, engine: Engine) -> None:
    # Each reaper is its own process in production: here each has its own engine, so its own connections.
    engines = [make_engine(settings), make_engine(settings)]
    expired = [insert_job(engine, settings) for _ in range(JOBS)]
    stale = [insert_job(engine, settings) for _ in range(JOBS)]
    try:
        for _ in range(ROUNDS):
            for job in expired:  # claimed by workers that then died
                assert job_claims.claim(engine, job, lease_seconds=60) is not None
            with engine.begin() as conn:
                past = utcnow() - timedelta(seconds=settings.queued_republish_seconds + 60)
                conn.execute(update(Job).where(col(Job.id).in_(expired)).values(lease_expires_at=past))
                # ...and queued jobs whose message Redis lost
                conn.execute(update(Job).where(col(Job.id).in_(stale)).values(last_published_at=past))
            reports, sent = race(settings, engines)
            assert sum(r.requeued for r in reports) == JOBS
            assert sum(r.republished for r in reports) == JOBS
            assert set(sent) == set(expired) | set(stale)
            assert max(sent.values()) == 1, "a job was published by both reapers"
            # With nothing left to do, another race finds nothing.
            reports, sent = race(settings, engines)
            assert not sent and not any(r.requeued or r.republished or r.dead for r in reports)
            with engine.begin() as conn:  # back to the start: jobs that are queued but never claimed yet
                conn.execute(update(Job).where(col(Job.id).in_(expired)).values(attempts=0))
    finally:
        for e in engines:
            e.dispose()


def test_the_original_of_a_job_dead_at_the_cap_is_deleted(settings: Settings, engine: Engine) -> None:
    # The path after transient errors: release() leaves the job queued with its attempts used up, and the
    # next delivery's claim marks it dead.
    job = insert_job(engine, settings)
    with engine.begin() as conn:
        conn.execute(update(Job).where(col(Job.id) == job).values(attempts=settings.max_attempts))
    assert job_claims.claim(engine, job, lease_seconds=4) is None
    storage = LocalStorage(settings.resolved_storage_root)
    reap_once(engine=engine, storage=storage, settings=settings, publish=lambda ids: list(ids))
    with Session(engine) as session:
        dead = session.get(Job, job)
        assert dead is not None and dead.status == "dead"
        assert dead.input_key is None, "the unmasked upload of a dead job is kept with no expiry"
    assert list(storage.list(f"inputs/{job}")) == []
