"""Fault tests: their own throwaway PostgreSQL and Redis, real `celery worker` subprocesses, the real app.

Each test gets a fresh Redis and a fresh database (on a PostgreSQL server per module), so it may stop,
restart or FLUSHALL them without disturbing anything else. The settings are shrunk (4 s lease, 2 s
republish delay, 30 s task limit, 61 s visibility timeout) so that recovery which takes minutes in
production takes seconds here. Recovery comes from the sweeper (`reap_and_publish`), never from waiting
out the visibility timeout.

Workers run `tests.reliability.faulty_worker`: the real `veil worker` with a probe in the engine that
records every run and catches two live runs of one job (see that module).
"""

from __future__ import annotations

import functools
import io
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import redis
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.app import create_app
from shared import tenants
from shared.db import make_engine
from shared.migrate import upgrade
from shared.scopes import Scope
from shared.settings import Settings
from shared.storage import LocalStorage, input_key
from shared.tables import Job
from shared.timeutil import utcnow
from tests.images import astronaut_jpeg, astronaut_rgb
from tests.integration.conftest import REPO, WorkerProcess, make_key, settings_env
from tests.reliability.faulty_worker import TRACE_FILE
from tests.support.services import (
    PostgresServer,
    RedisServer,
    create_database,
    drop_database,
    throwaway_postgres_server,
    throwaway_redis_server,
)
from worker.celery_app import create_celery
from worker.publisher import Publisher
from worker.reaper import ReapReport, reap_and_publish

TENANT = "chaos"
TERMINAL = {"succeeded", "failed", "dead", "cancelled"}
log = logging.getLogger("veil.tests.reliability")


# --- servers, database, settings, API --------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_server() -> Iterator[PostgresServer]:
    with throwaway_postgres_server() as server:
        yield server


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with throwaway_redis_server() as server:
        yield server


def fault_settings(database_url: str, broker_url: str, root: Path) -> Settings:
    return Settings(
        data_dir=root / "data", database_url=database_url, broker_url=broker_url, storage_root=root / "storage",
        lease_seconds=4, queued_republish_seconds=2, reap_interval_seconds=1, max_attempts=3,
        task_time_limit_seconds=30, visibility_timeout_seconds=61,  # must exceed twice the task limit
        ort_threads=1, log_level="INFO", requests_per_minute=None,
        # The slow photo is sized for about 3 s of `balanced` work: under the 30 s task limit with room to
        # spare, so these tests exercise leases and crashes, not the cost of the default `thorough` preset.
        default_preset="balanced",
    )


@pytest.fixture
def settings(pg_server: PostgresServer, redis_server: RedisServer, tmp_path: Path) -> Iterator[Settings]:
    name = f"veil_rel_{uuid.uuid4().hex[:10]}"
    s = fault_settings(create_database(pg_server.url, name), redis_server.url, tmp_path)
    migrated = make_engine(s)
    upgrade(migrated)
    migrated.dispose()
    yield s
    if not pg_server.running:  # a test that took it away and failed before bringing it back
        pg_server.start()
    drop_database(pg_server.url, name)


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    e = make_engine(settings)
    yield e
    e.dispose()


@pytest.fixture
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    key = make_key(engine, TENANT, [Scope.jobs_write, Scope.jobs_read])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as c:
        yield c


# --- workers ---------------------------------------------------------------------------------------------


class Workers:
    """Starts `faulty_worker` processes for one test and SIGKILLs whatever is left at its end."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        self.settings, self.folder = settings, folder
        self.trace = Trace(folder / "trace")
        self.trace.folder.mkdir(parents=True, exist_ok=True)
        self.started: list[WorkerProcess] = []

    def start(self, *, fault: str | None = None, concurrency: int = 1,
              queues: str = "images,maintenance") -> WorkerProcess:
        env = settings_env(self.settings) | {"RELIABILITY_TRACE": str(self.trace.folder)}
        if fault:
            env["RELIABILITY_FAULT"] = fault
        log_path = self.folder / f"worker-{len(self.started)}.log"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.faulty_worker", "--queues", queues,
             "--concurrency", str(concurrency)],
            cwd=REPO, env=env, stdout=log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        )
        worker = WorkerProcess(proc, log_path)
        self.started.append(worker)
        wait_for(lambda: " ready." in worker.output() or not worker.alive(), 120, "a worker to start")
        if not worker.alive():
            raise RuntimeError("worker exited during start-up:\n" + worker.output()[-3000:])
        return worker

    def kill_all(self) -> None:
        for worker in self.started:
            kill_group(worker)

    def logs(self) -> str:
        return "\n".join(w.output() for w in self.started)


@pytest.fixture
def workers(settings: Settings, tmp_path: Path) -> Iterator[Workers]:
    w = Workers(settings, tmp_path)
    try:
        yield w
    finally:
        w.kill_all()


def kill_group(worker: WorkerProcess) -> None:
    """SIGKILL the worker and its pool children at once: a machine that lost power."""
    if worker.alive():
        os.killpg(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait(timeout=30)


def pool_children(pid: int) -> list[int]:
    """The worker's pool processes, read from /proc (no psutil here)."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class Trace:
    """What `faulty_worker` recorded: which process ran which job, and any two live runs of one job."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def lines(self) -> list[list[str]]:
        path = self.folder / TRACE_FILE
        return [line.split() for line in path.read_text().splitlines()] if path.exists() else []

    def starts(self, job_id: str | uuid.UUID) -> list[int]:
        return [int(p) for kind, job, p in self.lines() if kind == "start" and job == str(job_id)]

    def ends(self, job_id: str | uuid.UUID) -> list[int]:
        return [int(p) for kind, job, p in self.lines() if kind == "end" and job == str(job_id)]

    def parallel_runs(self) -> list[list[str]]:
        return [line for line in self.lines() if line[0] == "parallel"]


# --- sweeper ---------------------------------------------------------------------------------------------


def reap(settings: Settings, engine: Engine, publisher: Publisher | None = None) -> ReapReport:
    return reap_and_publish(engine=engine, storage=LocalStorage(settings.resolved_storage_root), settings=settings,
                            publisher=publisher or Publisher(create_celery(settings)))


class Sweeper:
    """The periodic reaper in a thread, with one long-lived publisher, as beat runs it in production.
    A pass that fails (the database or broker is away) is logged and tried again next time."""

    def __init__(self, settings: Settings, engine: Engine, interval: float = 0.5) -> None:
        self.settings, self.engine, self.interval = settings, engine, interval
        self.publisher = Publisher(create_celery(settings))
        self.passes = self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sweeper", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                reap(self.settings, self.engine, self.publisher)
                self.passes += 1
            except Exception as exc:  # the service is supposed to survive this; so is the sweeper
                self.errors += 1
                log.info("sweeper pass failed: %s", type(exc).__name__)

    def __enter__(self) -> Sweeper:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


# --- jobs ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def slow_jpeg() -> bytes:
    """6000x4000: smooth noise with the astronaut pasted in. About 3 s of work on a 2-core machine."""
    rng = np.random.default_rng(7)
    small = rng.integers(0, 256, (500, 750, 3), dtype=np.uint8)
    canvas = np.asarray(Image.fromarray(small).resize((6000, 4000), Image.Resampling.BILINEAR)).copy()
    face = astronaut_rgb()
    canvas[200:200 + face.shape[0], 300:300 + face.shape[1]] = face
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def small_jpeg() -> bytes:
    return astronaut_jpeg()


def submit(client: TestClient, data: bytes, name: str = "photo.jpg") -> str:
    response = client.post("/v1/jobs", files={"file": (name, data, "image/jpeg")})
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def job_row(engine: Engine, job_id: str | uuid.UUID) -> Job:
    with Session(engine) as session:
        job = session.get(Job, uuid.UUID(str(job_id)))
        assert job is not None
        return job


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def wait_status(engine: Engine, job_id: str | uuid.UUID, statuses: set[str], timeout: float = 90) -> Job:
    found: list[Job] = []

    def reached() -> bool:
        found[:] = [job_row(engine, job_id)]
        return found[0].status in statuses

    try:
        wait_for(reached, timeout, f"job {job_id} to reach {sorted(statuses)}", interval=0.1)
    except AssertionError as exc:
        last = found[0] if found else None
        raise AssertionError(f"{exc}; last status {last.status if last else None}, "
                             f"attempts {last.attempts if last else None}") from None
    return found[0]


def outputs(settings: Settings, job_id: str | uuid.UUID) -> list[str]:
    return list(LocalStorage(settings.resolved_storage_root).list(f"outputs/{job_id}"))


def broker(settings: Settings) -> redis.Redis:
    assert settings.broker_url is not None
    return redis.Redis.from_url(settings.broker_url, socket_timeout=5)


def queue_state(settings: Settings) -> tuple[int, int]:
    """(messages waiting in the images queue, messages delivered but not acknowledged)."""
    with broker(settings) as r:
        return int(r.llen("images")), int(r.hlen("unacked"))


def insert_job(engine: Engine, settings: Settings, data: bytes | None = None) -> uuid.UUID:
    """A committed job with its input stored, as the API leaves it, but no message published yet."""
    job_id = uuid.uuid4()
    key = input_key(str(job_id))
    LocalStorage(settings.resolved_storage_root).put_stream(key, io.BytesIO(data or small_jpeg()))
    with Session(engine) as session:
        tenants.ensure(session=session, tenant_id=TENANT)
    with Session(engine) as session:
        session.add(Job(id=job_id, tenant_id=TENANT, input_key=key, input_media_type="image/jpeg",
                        max_attempts=settings.max_attempts, last_published_at=utcnow()))
        session.commit()
    return job_id
