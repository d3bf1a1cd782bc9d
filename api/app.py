"""The FastAPI app factory: settings in, app out; no configuration read at import time."""

from __future__ import annotations

from fastapi import FastAPI

from api.body_limit import BodyLimitMiddleware
from api.problems import install_problem_handlers
from api.request_log import RequestLogMiddleware
from api.routers import current_key, dashboard, health, job_requeue, jobs, metrics, subject_requests
from shared.db import make_engine
from shared.logging_setup import configure_logging
from shared.rate_limit import make_rate_limiter
from shared.settings import Settings, get_settings
from shared.storage import make_storage
from shared.version import software_version
from worker.celery_app import create_celery
from worker.publisher import Publisher

# Multipart framing around the file: boundaries, headers and the small text fields.
FORM_OVERHEAD_BYTES = 64 * 1024


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(title="Veil", version=software_version(),
                  description="Masks faces in vehicle-camera images. Jobs are asynchronous: submit, poll, fetch.")
    app.state.settings = settings
    app.state.engine = make_engine(settings)
    app.state.storage = make_storage(settings)
    app.state.celery = create_celery(settings)
    app.state.publisher = Publisher(app.state.celery)
    app.state.rate_limiter = make_rate_limiter(settings.resolved_broker_url)
    install_problem_handlers(app)
    # The kind (and so its own limit) is known only once the file starts to arrive: the body may be as large
    # as the larger limit, and the upload is held to its kind's limit while it streams to storage.
    largest = max(settings.max_upload_bytes, settings.max_video_upload_bytes)
    app.add_middleware(BodyLimitMiddleware, max_bytes=largest + FORM_OVERHEAD_BYTES)
    app.add_middleware(RequestLogMiddleware)
    app.include_router(health.router)
    app.include_router(metrics.router)
    app.include_router(jobs.router)
    app.include_router(subject_requests.router)
    app.include_router(job_requeue.router)
    app.include_router(current_key.router)
    app.include_router(dashboard.router)
    return app
