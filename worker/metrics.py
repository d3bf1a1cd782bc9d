"""What only a worker process knows: how long jobs took, video frames per second, the execution provider.

Celery runs tasks in forked pool children, so each child records into prometheus-client's multiprocess
files (one set per process, in a folder made fresh by `veil worker`), and the worker's main process serves
their sum on its own port (`VEIL_WORKER_METRICS_PORT`, see worker/metrics_server.py). Prometheus scrapes
every worker host like that; the API's /metrics covers what PostgreSQL and Redis know.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge, Histogram
from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared.tables import Job
from worker.video_job import PROGRESS_KEY

# Photos take well under a second; long videos many minutes (up to the video task time limit).
SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
FPS_BUCKETS = (1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 45.0, 60.0, 90.0, 120.0, 240.0)


class WorkerMetrics:
    """Labels are kinds, outcomes and provider names only."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        # `registry=None` in multiprocess mode: the values live in the per-process files, which the main
        # process's collector reads; registering them anywhere else would double-count.
        self.job_seconds = Histogram(
            "veil_job_processing_seconds", "Wall time of one job attempt in a worker, claim to finalize.",
            ["kind", "outcome"], buckets=SECONDS_BUCKETS, registry=registry)
        self.video_fps = Histogram(
            "veil_video_fps", "Frames per second of a finished video job (decode, detect, mask, encode).",
            buckets=FPS_BUCKETS, registry=registry)
        # livemax: a pool child that exited stops counting (metrics_server marks it dead).
        self.provider = Gauge(
            "veil_worker_execution_provider", "1 for the ONNX Runtime execution provider a worker process runs on.",
            ["provider"], multiprocess_mode="livemax", registry=registry)
        self.model_unusable = Gauge(
            "veil_worker_model_missing",
            "1 for a model a worker process needed and could not use (missing, altered, licence refused): jobs "
            "that use it fail at once with that reason.",
            ["model"], multiprocess_mode="livemax", registry=registry)

    def observe_job(self, kind: str, outcome: str, seconds: float) -> None:
        self.job_seconds.labels(kind=kind, outcome=outcome).observe(seconds)

    def observe_video_fps(self, fps: float) -> None:
        if fps > 0:
            self.video_fps.observe(fps)

    def set_provider(self, provider: str) -> None:
        self.provider.labels(provider=provider).set(1)

    def set_models_unusable(self, models: Iterable[str]) -> None:
        for model in models:
            self.model_unusable.labels(model=model).set(1)


def finished_video_fps(engine: Engine, job_id: uuid.UUID) -> float:
    """The frames per second the video runner recorded for a job it finished (0 when none was recorded)."""
    with Session(engine) as session:
        job = session.get(Job, job_id)
        detail = (job.timings or {}).get(PROGRESS_KEY) if job is not None else None
    fps = detail.get("fps") if isinstance(detail, dict) else None
    return float(fps) if isinstance(fps, int | float) else 0.0
