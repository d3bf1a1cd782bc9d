"""A worker's own /metrics: prometheus-client multiprocess mode across the Celery pool, served by the main process.

`enable_multiprocess` must run in the main process before the pool forks and before any metric exists:
prometheus-client decides at import time, from PROMETHEUS_MULTIPROC_DIR, whether values go to per-process
files, and forked children inherit that choice. The folder is new for every `veil worker` run, as the
library requires (stale files from an earlier run would be summed in), and removed when it exits.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

from celery.signals import worker_process_shutdown
from prometheus_client import CollectorRegistry, multiprocess, start_http_server, values

from shared.settings import Settings

ENV = "PROMETHEUS_MULTIPROC_DIR"


def enable_multiprocess() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="veil-worker-metrics-"))
    os.environ[ENV] = str(folder)
    # prometheus_client may already be imported (its value class chosen without the folder): choose again.
    values.ValueClass = values.get_value_class()
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # a forked child inherits atexit hooks; only the main process cleans up
            shutil.rmtree(folder, ignore_errors=True)

    atexit.register(remove)

    @worker_process_shutdown.connect(weak=False)
    def _mark_dead(pid: int | None = None, **_: object) -> None:
        # Drops the exiting child's live gauges (its provider); its counts and histograms stay in the sum.
        multiprocess.mark_process_dead(pid or os.getpid(), str(folder))

    return folder


def serve(settings: Settings, folder: Path) -> None:
    """Serve the sum over all pool processes on VEIL_WORKER_METRICS_HOST:PORT, from a thread of this process."""
    assert settings.worker_metrics_port is not None
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))
    start_http_server(settings.worker_metrics_port, addr=settings.worker_metrics_host, registry=registry)
