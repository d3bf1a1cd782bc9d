"""Workers that die, are stopped, or receive one job twice: each job still ends once, with one output."""

from __future__ import annotations

import os
import signal
import uuid
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from shared.queues import TaskName
from shared.settings import Settings
from shared.tables import Job
from shared.timeutil import utcnow
from tests.reliability.conftest import (
    TERMINAL,
    Sweeper,
    Workers,
    insert_job,
    job_row,
    kill_group,
    outputs,
    pid_alive,
    pool_children,
    queue_state,
    reap,
    slow_jpeg,
    small_jpeg,
    submit,
    wait_for,
    wait_status,
)
from worker.celery_app import create_celery
from worker.publisher import Publisher

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(180)]


def start_slow_job(client: TestClient, workers: Workers) -> str:
    """Submit the slow image and return once a worker's engine is inside it (claimed, not finished)."""
    job = submit(client, slow_jpeg(), "large.jpg")
    wait_for(lambda: workers.trace.starts(job), 60, "the engine to start on the job")
    return job


@pytest.mark.parametrize("victim", ["whole worker", "pool child"])
def test_sigkill_mid_job_ends_in_one_success_with_one_output(
        victim: str, settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    first = workers.start()
    job = start_slow_job(client, workers)
    assert job_row(engine, job).status == "running"
    [child] = workers.trace.starts(job)
    assert child in pool_children(first.proc.pid)
    if victim == "whole worker":  # the machine lost power; another worker must take over
        kill_group(first)
        workers.start()
    else:  # the kernel's OOM killer took the pool process; the worker replaces it
        os.kill(child, signal.SIGKILL)
    wait_for(lambda: not pid_alive(child), 10, "the pool process to die")
    assert workers.trace.ends(job) == []  # it really died inside the job

    # The lease (4 s) runs out and the sweeper requeues it. The killed delivery is still unacknowledged
    # and would come back only after the 61 s visibility timeout, which nothing here waits for.
    with Sweeper(settings, engine):
        done = wait_status(engine, job, TERMINAL, 90)
    assert done.status == "succeeded" and done.attempts == 2, (done.status, done.error_code)
    assert len(workers.trace.starts(job)) == 2 and len(workers.trace.ends(job)) == 1
    assert workers.trace.parallel_runs() == []
    reap(settings, engine)  # deletes what a crashed attempt may have left beside the output
    assert outputs(settings, job) == [done.output_key]


@pytest.mark.parametrize("target", ["main process", "process group"])
def test_sigterm_mid_job_finishes_the_job_or_requeues_it(
        target: str, settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    first = workers.start()
    job = start_slow_job(client, workers)
    if target == "main process":  # `docker stop`, Kubernetes: a warm shutdown lets the running task finish
        os.kill(first.proc.pid, signal.SIGTERM)
    else:  # systemd's control-group kill, Ctrl-C in a terminal: the pool process dies mid-task too
        os.killpg(first.proc.pid, signal.SIGTERM)
    first.proc.wait(timeout=60)
    status = job_row(engine, job).status
    assert status == "succeeded" if target == "main process" else status == "running"
    if status not in TERMINAL:  # abandoned mid-task: another worker and the sweeper finish it
        workers.start()
        with Sweeper(settings, engine):
            wait_status(engine, job, TERMINAL, 90)
    done = job_row(engine, job)
    assert done.status == "succeeded"
    assert len(workers.trace.ends(job)) == 1 and workers.trace.parallel_runs() == []
    reap(settings, engine)
    assert outputs(settings, job) == [done.output_key]


def test_one_job_delivered_twice_at_once_runs_once(
        settings: Settings, engine: Engine, workers: Workers) -> None:
    workers.start(concurrency=2)
    job = insert_job(engine, settings, slow_jpeg())
    # Two messages for one job, back to back (a republish racing the original, or a redelivery).
    assert Publisher(create_celery(settings)).publish(TaskName.anonymize_image, [job, job]) == [job, job]
    done = wait_status(engine, job, TERMINAL, 90)
    assert done.status == "succeeded" and done.attempts == 1
    wait_for(lambda: "'skipped'" in workers.logs(), 30, "the second delivery to be skipped")
    assert workers.trace.starts(job) == workers.trace.ends(job) and len(workers.trace.starts(job)) == 1
    assert outputs(settings, job) == [done.output_key]  # without a reaper pass: nothing to clean
    wait_for(lambda: queue_state(settings) == (0, 0), 30, "both deliveries to be acknowledged")


def test_a_holder_that_lost_its_lease_cleans_up_after_itself(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    workers.start()
    workers.start()
    job = start_slow_job(client, workers)
    [stalled] = workers.trace.starts(job)
    job_id = uuid.UUID(job)
    publisher = Publisher(create_celery(settings))

    def take_over() -> bool:
        # As if the holder had stalled past its lease: the lease expires and a new delivery arrives. The
        # holder's heartbeat may renew it first (it beats every 1.3 s); then the delivery is skipped: again.
        # Only the first attempt's lease: once a second worker holds the job, a late round of this loop (one
        # that saw the new delivery still unacknowledged) must not expire that lease too and start a third.
        with engine.begin() as conn:
            conn.execute(update(Job).where(col(Job.id) == job_id, col(Job.attempts) == 1)
                         .values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        publisher.publish(TaskName.anonymize_image, [job_id])
        wait_for(lambda: job_row(engine, job).attempts == 2 or queue_state(settings) == (0, 1), 10,
                 "the new delivery to be taken or skipped")
        return job_row(engine, job).attempts >= 2

    wait_for(take_over, 60, "a second worker to take the job over", interval=0.5)
    done = wait_status(engine, job, TERMINAL, 90)
    assert done.status == "succeeded" and done.attempts == 2
    wait_for(lambda: stalled in workers.trace.ends(job), 60, "the stalled attempt to end")
    wait_for(lambda: "'lost'" in workers.logs(), 30, "the stalled attempt to report it lost the job")
    # The loser wrote nothing or deleted what it wrote; no reaper pass has run.
    assert outputs(settings, job) == [done.output_key]


def test_bad_input_fails_with_a_reason_and_is_not_redelivered(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    from tests.images import astronaut_jpeg

    workers.start()
    job = submit(client, astronaut_jpeg()[:4000], "cut.jpg")
    done = wait_status(engine, job, TERMINAL, 60)
    assert (done.status, done.error_code, done.attempts) == ("failed", "corrupt_image", 1)
    # Acknowledged, so Celery cannot deliver it again; and a failed job is nothing the sweeper touches.
    wait_for(lambda: queue_state(settings) == (0, 0), 30, "the delivery to be acknowledged")
    report = reap(settings, engine)
    assert (report.requeued, report.republished, report.dead) == (0, 0, 0)
    assert len(workers.trace.starts(job)) == 1 and job_row(engine, job).attempts == 1


def test_a_job_that_kills_its_process_every_time_ends_dead_at_the_cap(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    worker = workers.start(fault="die")
    job = submit(client, small_jpeg(), "oom.jpg")
    with Sweeper(settings, engine):
        done = wait_status(engine, job, TERMINAL, 120)
    assert (done.status, done.error_code) == ("dead", "attempts_exhausted")
    assert done.attempts == settings.max_attempts == len(workers.trace.starts(job))
    assert workers.trace.ends(job) == []
    # Requeued deliveries of a dead job are skipped and acknowledged: nothing loops in the broker.
    wait_for(lambda: queue_state(settings) == (0, 0), 30, "the queue to drain")
    assert worker.alive() and outputs(settings, job) == []
