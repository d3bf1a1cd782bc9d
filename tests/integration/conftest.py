"""Integration fixtures: real PostgreSQL, real Redis, a real `celery worker` subprocess, the real app.

VEIL_TEST_DATABASE_URL (an admin URL: a database is created per run) and VEIL_TEST_REDIS_URL point the
suite at running servers; without them it starts throwaway ones from the system's binaries.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlmodel import Session

from api.app import create_app
from shared import api_keys, tenants
from shared.db import make_engine
from shared.migrate import upgrade
from shared.scopes import Scope
from shared.settings import Settings
from tests.support.services import create_database, drop_database, free_port, throwaway_postgres, throwaway_redis

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def pg_admin_url() -> Iterator[str]:
    if url := os.environ.get("VEIL_TEST_DATABASE_URL"):
        yield url
        return
    with throwaway_postgres() as url:
        yield url


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if url := os.environ.get("VEIL_TEST_REDIS_URL"):
        yield url
        return
    with throwaway_redis() as url:
        yield url


@pytest.fixture(scope="session")
def database_url(pg_admin_url: str) -> Iterator[str]:
    name = f"veil_test_{uuid.uuid4().hex[:10]}"
    url = create_database(pg_admin_url, name)
    yield url
    drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    root = tmp_path_factory.mktemp("veil")
    s = Settings(
        data_dir=root / "data", database_url=database_url, broker_url=redis_url,
        storage_root=root / "storage", lease_seconds=6, queued_republish_seconds=2,
        task_time_limit_seconds=60, visibility_timeout_seconds=300, ort_threads=1, log_level="INFO",
    )
    upgrade(make_engine(s))
    return s


@pytest.fixture(scope="session")
def engine(settings: Settings) -> Engine:
    return make_engine(settings)


def settings_env(settings: Settings) -> dict[str, str]:
    """The settings as VEIL_ variables, for a subprocess to rebuild the same Settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    for name, value in settings.model_dump(mode="json", exclude_none=True).items():
        env[f"VEIL_{name.upper()}"] = json.dumps(value) if isinstance(value, list | dict) else str(value)
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class WorkerProcess:
    proc: subprocess.Popen[bytes]
    log: Path
    metrics_url: str | None = None  # the worker's own /metrics, when started with a metrics port

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            # The main process only: it stops its pool children itself (a group-wide SIGTERM can deadlock
            # billiard's shutdown when a child dies holding the task queue's lock).
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def start_worker(settings: Settings, log: Path, queues: str = "images,maintenance,gdpr",
                 extra_env: dict[str, str] | None = None, metrics_port: int | None = None) -> WorkerProcess:
    handle = log.open("wb")
    metrics_env = {"VEIL_WORKER_METRICS_PORT": str(metrics_port)} if metrics_port else {}
    proc = subprocess.Popen(
        [sys.executable, "-m", "cli.main", "worker", "--queues", queues, "--concurrency", "1"],
        cwd=REPO, env={**settings_env(settings), **metrics_env, **(extra_env or {})}, stdout=handle,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    worker = WorkerProcess(proc, log, f"http://127.0.0.1:{metrics_port}/metrics" if metrics_port else None)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if " ready." in worker.output():
            return worker
        if not worker.alive():
            raise RuntimeError("worker exited during start-up:\n" + worker.output()[-3000:])
        time.sleep(0.2)
    worker.stop()
    raise RuntimeError("worker not ready in time:\n" + worker.output()[-3000:])


@pytest.fixture(scope="session")
def worker(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[WorkerProcess]:
    w = start_worker(settings, tmp_path_factory.mktemp("worker") / "worker.log", metrics_port=free_port())
    yield w
    w.stop()


TENANT = "acme"


def make_key(engine: Engine, tenant_id: str, scopes: list[Scope], **kwargs: object) -> str:
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=tenant_id)
        return api_keys.create(session=session, tenant_id=tenant_id, scopes=scopes, **kwargs)[1]  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def api_key(engine: Engine) -> str:
    return make_key(engine, TENANT, [Scope.jobs_write, Scope.jobs_read])


@pytest.fixture(scope="session")
def client(settings: Settings, api_key: str) -> Iterator[TestClient]:
    """The API as tenant `acme`, with a key that may submit and read jobs."""
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {api_key}"}) as c:
        yield c


@pytest.fixture(scope="session")
def subject_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The API as tenant `acme`, with a key that may only make data-subject requests."""
    key = make_key(engine, TENANT, [Scope.subject_requests])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


@pytest.fixture(autouse=True)
def clean_state(engine: Engine, settings: Settings) -> None:
    """Cross-process tests share committed rows, so start each test from an empty table and store."""
    # The session's worker may still be touching a row of the last test: TRUNCATE can then lose a deadlock
    # to it (PostgreSQL aborts one side). The worker's side is a short transaction, so try again.
    for attempt in range(5):
        try:
            with engine.begin() as conn:
                conn.execute(text("TRUNCATE job, audit_event, subject_request CASCADE"))
            break
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.2 * (attempt + 1))
    root = settings.resolved_storage_root
    for sub in ("inputs", "outputs", "access"):
        target = root / sub
        if target.exists():
            subprocess.run(["rm", "-rf", str(target)], check=True)


def wait_for_status(client: TestClient, job_id: str, statuses: set[str], timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    body: dict = {}
    while time.monotonic() < deadline:
        body = client.get(f"/v1/jobs/{job_id}").json()
        if body.get("status") in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not reach {statuses} in {timeout}s; last: {body.get('status')}")


def stored_keys(settings: Settings) -> list[str]:
    root = settings.resolved_storage_root
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*")
                  if p.is_file() and ".tmp" not in p.relative_to(root).parts)
