"""Thin Celery tasks: parse the message, call a plain function, nothing else."""

from __future__ import annotations

import logging
import random
import time
import uuid

import structlog
from celery import Celery
from celery.signals import task_prerun, worker_process_init

from shared.queues import KIND_TASKS, TaskName
from shared.settings import Settings
from shared.webhook_outbox import due_for_job
from worker.context import ProcessLocal, WorkerContext
from worker.engine.errors import ModelUnusable
from worker.gdpr_access import build_access_archive
from worker.gdpr_erasure import run_erasure
from worker.image_job import run_image_job
from worker.job_steps import JobRunner, Outcome
from worker.metrics import WorkerMetrics, finished_video_fps
from worker.publisher import Publisher
from worker.reaper import reap_and_publish
from worker.startup_heap import freeze_startup_heap
from worker.video_job import run_video_job
from worker.webhook_delivery import deliver

log = logging.getLogger("veil.worker")
TASK_KINDS = {task: kind for kind, task in KIND_TASKS.items()}


def register_tasks(app: Celery, settings: Settings) -> ProcessLocal:
    context = ProcessLocal(lambda: WorkerContext.build(settings))
    publisher = Publisher(app)
    metrics = WorkerMetrics()

    @worker_process_init.connect(weak=False)
    def _warm_up(**_: object) -> None:
        # In each child, after fork: check the default preset's models (licence, hash) and open their ONNX
        # Runtime sessions now, so the first job does not wait. Celery only logs what this handler raises and
        # takes jobs all the same, so a model it cannot use is recorded where it is watched: the error log and
        # /metrics (jobs that need it then fail at once with model_missing, model_integrity or
        # model_licence_refused).
        ctx = context()
        try:
            metrics.set_provider(ctx.anonymizer.warm_up())
        except ModelUnusable as exc:
            ctx.model_unusable(exc)
            metrics.set_models_unusable(ctx.unusable_models)
        freeze_startup_heap()

    @task_prerun.connect(weak=False)
    def _fresh_log_context(**_: object) -> None:
        # A pool child runs task after task: the ids bound for the last one must not leak into this one.
        structlog.contextvars.clear_contextvars()

    def ring_webhooks(job: uuid.UUID) -> None:
        # After the status change committed. Never lets the job fail: a lost ring is the sweeper's to repeat.
        try:
            with context().engine.connect() as conn:
                due = due_for_job(conn, job)
        except Exception as exc:  # the database is unreachable: the sweeper finds the rows later
            log.warning("webhook doorbell skipped", extra={"job_id": str(job), "error": type(exc).__name__})
            return
        publisher.publish(TaskName.deliver_webhook, due)

    def run_job(runner: JobRunner, task: TaskName, job_id: str) -> str:
        job = uuid.UUID(job_id)
        structlog.contextvars.bind_contextvars(job_id=str(job))
        started = time.perf_counter()
        outcome = runner(context(), job, on_claimed=ring_webhooks)
        metrics.set_models_unusable(context().unusable_models)
        kind = TASK_KINDS[task]
        metrics.observe_job(kind, outcome.value, time.perf_counter() - started)
        if kind == "video" and outcome is Outcome.succeeded:
            metrics.observe_video_fps(finished_video_fps(context().engine, job))
        ring_webhooks(job)
        if outcome is Outcome.retry:
            # A short jittered pause, then a fresh message: never a Celery countdown (ETA tasks are
            # duplicated or lost on Redis, celery#2481), and the attempt cap lives in the database.
            time.sleep(random.uniform(0.2, 1.0))
            publisher.publish(task, [job])
        return outcome.value

    @app.task(name=TaskName.anonymize_image.value)
    def anonymize_image(job_id: str) -> str:
        return run_job(run_image_job, TaskName.anonymize_image, job_id)

    # Its own queue and time limit: a long video never holds up photos, nor hits the photo task's limit.
    video_limit = settings.resolved_video_time_limit_seconds

    @app.task(name=TaskName.anonymize_video.value, time_limit=video_limit,
              soft_time_limit=max(1, video_limit - 10))
    def anonymize_video(job_id: str) -> str:
        return run_job(run_video_job, TaskName.anonymize_video, job_id)

    @app.task(name=TaskName.reap.value)
    def reap() -> dict[str, int]:
        ctx = context()
        report = reap_and_publish(engine=ctx.engine, storage=ctx.storage, settings=ctx.settings,
                                  publisher=publisher)
        return {"requeued": report.requeued, "dead": report.dead, "republished": report.republished,
                "webhooks_published": len(report.webhooks_published), "outputs_deleted": report.outputs_deleted,
                "archives_deleted": report.archives_deleted}

    @app.task(name=TaskName.deliver_webhook.value)
    def deliver_webhook(delivery_id: str) -> str:
        structlog.contextvars.bind_contextvars(delivery_id=delivery_id)
        ctx = context()
        return deliver(ctx.engine, uuid.UUID(delivery_id), ctx.settings).value

    @app.task(name=TaskName.gdpr_erase.value)
    def gdpr_erase(request_id: str) -> str:
        structlog.contextvars.bind_contextvars(subject_request_id=request_id)
        return run_erasure(context(), uuid.UUID(request_id))

    @app.task(name=TaskName.gdpr_access.value)
    def gdpr_access(request_id: str) -> str:
        structlog.contextvars.bind_contextvars(subject_request_id=request_id)
        return build_access_archive(context(), uuid.UUID(request_id)).value

    return context


def create_worker_app(settings: Settings) -> Celery:
    from worker.celery_app import create_celery

    app = create_celery(settings)
    register_tasks(app, settings)
    return app
