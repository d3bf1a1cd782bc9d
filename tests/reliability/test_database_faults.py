"""PostgreSQL restarted while jobs run: the API answers 503 problem+json meanwhile, recovers, and no job is lost."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from shared.settings import Settings
from tests.reliability.conftest import (
    TERMINAL,
    Sweeper,
    Workers,
    job_row,
    outputs,
    reap,
    slow_jpeg,
    small_jpeg,
    submit,
    wait_for,
    wait_status,
)
from tests.support.services import PostgresServer

pytestmark = [pytest.mark.reliability, pytest.mark.timeout(240)]


def assert_problem_503(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 503 and body["code"] in {"database_unavailable", "not_ready"}
    assert "Traceback" not in response.text and "psycopg" not in response.text


def test_postgres_restart_while_jobs_run(settings: Settings, engine: Engine, client: TestClient,
                                         workers: Workers, pg_server: PostgresServer) -> None:
    workers.start()
    with Sweeper(settings, engine) as sweeper:
        running = submit(client, slow_jpeg(), "large.jpg")
        waiting = [submit(client, small_jpeg()) for _ in range(4)]
        wait_for(lambda: workers.trace.starts(running), 60, "the first job to start")
        pg_server.stop()
        try:
            # The outage lasts until the running attempt has finished its image and met the dead database
            # (its heartbeat and finalize fail), and the sweeper has failed at least once.
            errors = sweeper.errors
            wait_for(lambda: workers.trace.ends(running) and sweeper.errors > errors, 60,
                     "the worker and the sweeper to meet the outage")
            assert_problem_503(client.get(f"/v1/jobs/{running}"))
            assert_problem_503(client.get("/v1/jobs"))
            assert_problem_503(client.post("/v1/jobs", files={"file": ("p.jpg", small_jpeg(), "image/jpeg")}))
            ready = client.get("/readyz")
            assert_problem_503(ready)
            assert ready.json()["checks"]["database"].startswith("error: ")
        finally:
            pg_server.start()
        wait_for(lambda: client.get("/readyz").status_code == 200, 60, "the API to be ready again", interval=0.5)
        assert client.get(f"/v1/jobs/{running}").status_code == 200
        later = submit(client, small_jpeg())
        for job in [running, *waiting, later]:
            wait_status(engine, job, TERMINAL, 120)
    reap(settings, engine)  # removes the output the interrupted attempt wrote but could not record
    for job in [running, *waiting, later]:
        done = job_row(engine, job)
        assert done.status == "succeeded", (job, done.status, done.error_code)
        assert outputs(settings, job) == [done.output_key]
    assert workers.trace.parallel_runs() == []
