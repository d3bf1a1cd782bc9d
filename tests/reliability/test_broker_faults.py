"""Redis is a doorbell that may lose a ring: down at submit, wiped, or restarted, no job is lost or doubled."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared.settings import Settings
from tests.reliability.conftest import (
    TERMINAL,
    Sweeper,
    Workers,
    broker,
    job_row,
    outputs,
    reap,
    slow_jpeg,
    small_jpeg,
    submit,
    wait_for,
    wait_status,
)
from tests.support.services import RedisServer

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]


def assert_each_succeeded_once(settings: Settings, engine: Engine, workers: Workers, jobs: list[str]) -> None:
    reap(settings, engine)  # removes what an interrupted attempt left beside an output
    for job in jobs:
        done = job_row(engine, job)
        assert done.status == "succeeded", (job, done.status, done.error_code)
        assert len(workers.trace.ends(job)) == 1, (job, workers.trace.lines())
        assert outputs(settings, job) == [done.output_key]
    assert workers.trace.parallel_runs() == []


def test_broker_down_at_submit_still_accepts_and_the_job_runs_once_it_is_back(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers, redis_server: RedisServer) -> None:
    workers.start()
    redis_server.stop()
    started = time.monotonic()
    jobs = [submit(client, small_jpeg()) for _ in range(3)]  # 202 each: the rows are committed
    assert time.monotonic() - started < 30, "a publish to a dead broker must not hang the request"
    assert {job_row(engine, job).status for job in jobs} == {"queued"}
    redis_server.start()  # empty: the messages were never sent
    with Sweeper(settings, engine):
        for job in jobs:
            wait_status(engine, job, TERMINAL, 90)
    assert_each_succeeded_once(settings, engine, workers, jobs)
    assert {job_row(engine, job).attempts for job in jobs} == {1}


def test_flushall_mid_run_loses_no_queued_job(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    workers.start()
    with Sweeper(settings, engine):
        running = submit(client, slow_jpeg(), "large.jpg")
        waiting = [submit(client, small_jpeg()) for _ in range(6)]
        wait_for(lambda: workers.trace.starts(running), 60, "the first job to start")
        with broker(settings) as r:
            assert r.llen("images") == len(waiting)
            r.flushall()  # the queue and the unacknowledged running delivery are gone
        for job in [running, *waiting]:
            wait_status(engine, job, TERMINAL, 90)
    assert_each_succeeded_once(settings, engine, workers, [running, *waiting])


def test_redis_restart_mid_job_runs_nothing_twice_in_parallel_and_keeps_consuming(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers, redis_server: RedisServer) -> None:
    worker = workers.start()
    with Sweeper(settings, engine):
        running = submit(client, slow_jpeg(), "large.jpg")
        wait_for(lambda: workers.trace.starts(running), 60, "the job to start")
        redis_server.restart()  # comes back empty, as a Redis without persistence does
        wait_status(engine, running, TERMINAL, 90)
    # No sweeper from here on: jobs submitted after the restart must be consumed from their own messages,
    # which a worker that stopped consuming after the reconnect (celery#8030) would never do.
    after = [submit(client, small_jpeg()) for _ in range(3)]
    for job in after:
        wait_status(engine, job, TERMINAL, 60)
    assert worker.alive()
    assert_each_succeeded_once(settings, engine, workers, [running, *after])
    assert {job_row(engine, job).attempts for job in after} == {1}
