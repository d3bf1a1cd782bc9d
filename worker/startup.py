"""What `veil worker` does before Celery starts: refuse the wrong execution provider, open its /metrics."""

from __future__ import annotations

import structlog

from shared.settings import Settings
from worker.provider_check import check_required_provider

log = structlog.get_logger("veil.worker")


def prepare_worker(settings: Settings) -> None:
    """Raises ProviderCheckFailed when VEIL_REQUIRE_PROVIDER is set and not what runs the model.

    Must run before worker.tasks is imported: the metrics it defines go to multiprocess files only when
    multiprocess mode is already on."""
    if settings.require_provider is not None:
        log.info("execution provider verified", provider=check_required_provider(settings))
    if settings.worker_metrics_port is not None:
        from worker.metrics_server import enable_multiprocess, serve

        serve(settings, enable_multiprocess())
        log.info("worker metrics served", host=settings.worker_metrics_host, port=settings.worker_metrics_port)
