"""The configuration the other fault tests depend on, checked directly, and retries seen from outside.

The visibility timeout must exceed twice the longest task time limit, or a task still running is delivered
again (celery#5935). Retries must be short and jittered fresh messages, never Celery countdowns or ETAs,
which Redis duplicates or loses (celery#2481, #7009, #1307).
"""

from __future__ import annotations

import ast
import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared.settings import Settings
from tests.integration.conftest import REPO
from tests.reliability.conftest import TERMINAL, Workers, fault_settings, small_jpeg, submit, wait_status
from worker.celery_app import celery_config
from worker.tasks import create_worker_app

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(120)]

def default_settings() -> Settings:
    return Settings(broker_url="redis://127.0.0.1:6379/0")


def shrunk_settings() -> Settings:
    return fault_settings("postgresql+psycopg://x@127.0.0.1/x", "redis://127.0.0.1:6379/0", Path("/tmp/unused"))


@pytest.mark.parametrize("make", [default_settings, shrunk_settings], ids=["defaults", "fault-tests"])
def test_visibility_timeout_exceeds_twice_the_longest_task(make: Callable[[], Settings]) -> None:
    settings = make()
    config = celery_config(settings)
    limit = config["task_time_limit"]
    assert limit == settings.task_time_limit_seconds and config["task_soft_time_limit"] < limit
    assert config["broker_transport_options"]["visibility_timeout"] > 2 * limit
    # At-least-once delivery, one message at a time, and no second copy of results in Redis.
    assert config["task_acks_late"] and config["task_reject_on_worker_lost"]
    assert config["worker_prefetch_multiplier"] == 1 and config["task_ignore_result"]
    # Publishing to a dead broker gives up within about a second (the sweeper republishes).
    policy = config["task_publish_retry_policy"]
    assert policy["max_retries"] <= 2 and policy["interval_start"] + policy["max_retries"] * policy["interval_step"] < 1


def test_settings_refuse_a_visibility_timeout_too_short_for_the_task_limit() -> None:
    with pytest.raises(ValueError, match="VISIBILITY_TIMEOUT"):
        Settings(task_time_limit_seconds=600, visibility_timeout_seconds=1200)
    Settings(task_time_limit_seconds=600, visibility_timeout_seconds=1201)


def test_tasks_never_retry_through_celery() -> None:
    app = create_worker_app(default_settings())
    ours = [t for name, t in app.tasks.items() if not name.startswith("celery.")]
    assert ours
    for task in ours:
        assert not getattr(task, "autoretry_for", ()), task.name
        assert task.acks_late and task.reject_on_worker_lost, task.name


def test_no_code_schedules_a_countdown_or_eta() -> None:
    """No call anywhere in the service passes countdown=, eta= or retry settings, or calls Task.retry."""
    found = []
    for path in sorted(p for d in ("api", "worker", "shared", "cli") for p in (REPO / d).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            keywords = {k.arg for k in node.keywords if k.arg}
            bad = keywords & {"countdown", "eta", "autoretry_for", "retry_backoff", "default_retry_delay"}
            if isinstance(node.func, ast.Attribute) and node.func.attr == "retry":
                bad.add("Task.retry")
            if bad:
                found.append(f"{path.relative_to(REPO)}:{node.lineno}: {sorted(bad)}")
    assert found == []


def test_transient_failures_retry_at_once_and_stop_at_the_cap(
        settings: Settings, engine: Engine, client: TestClient, workers: Workers) -> None:
    """No sweeper runs here: each retry is a fresh message sent after a short pause, the cap is in Postgres."""
    worker = workers.start(fault="raise")
    started = time.monotonic()
    job = submit(client, small_jpeg())
    done = wait_status(engine, job, TERMINAL, 60)
    elapsed = time.monotonic() - started
    assert (done.status, done.error_code, done.attempts) == ("dead", "attempts_exhausted", settings.max_attempts)
    assert len(workers.trace.starts(job)) == settings.max_attempts
    # Three attempts and two pauses of at most a second each; a countdown or the visibility timeout
    # (61 s here) would take far longer.
    assert elapsed < 20, elapsed
    received = [json.loads(line) for line in worker.output().splitlines()
                if line.startswith("{") and '"Task anonymize.image[' in line and "received" in line]
    assert len(received) == settings.max_attempts + 1  # the last delivery finds the cap reached
    assert {r["data"]["eta"] for r in received} == {None}
