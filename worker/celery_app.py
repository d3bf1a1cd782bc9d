"""The Celery app, configured from settings for at-least-once delivery that is safe to repeat.

See ../shared/guides/reliability.md for the Celery issue behind each setting.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import Celery

from shared.queues import TASK_QUEUES, TaskName
from shared.settings import Settings


def celery_config(settings: Settings) -> dict[str, Any]:
    config: dict[str, Any] = {
        "broker_url": settings.resolved_broker_url,
        "task_acks_late": True,  # a killed worker's task is redelivered, not lost (#14)
        "task_reject_on_worker_lost": True,  # ...also when the child dies of a signal; attempts capped in SQL
        "worker_prefetch_multiplier": 1,
        "task_ignore_result": True,  # results live in Postgres, not a second copy in Redis
        "result_backend": None,
        "task_routes": {name.value: {"queue": queue.value} for name, queue in TASK_QUEUES.items()},
        "task_default_queue": "default",
        "task_time_limit": settings.task_time_limit_seconds,
        "task_soft_time_limit": max(1, settings.task_time_limit_seconds - 10),
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 3,
        # Publishing must not hang a request when the broker is down: the sweeper republishes.
        "task_publish_retry_policy": {"max_retries": 1, "interval_start": 0, "interval_step": 0.2},
        "worker_hijack_root_logger": False,
        "worker_concurrency": settings.worker_concurrency,
        "beat_schedule": {
            "reap": {"task": TaskName.reap.value, "schedule": timedelta(seconds=settings.reap_interval_seconds)}
        },
    }
    if settings.uses_embedded_broker:
        folder = settings.broker_folder
        for sub in ("queue", "processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        config["broker_transport_options"] = {
            "data_folder_in": str(folder / "queue"),
            "data_folder_out": str(folder / "queue"),
            "processed_folder": str(folder / "processed"),
            # Exchange bindings live here; kombu's default is a `control` folder in the working directory.
            "control_folder": str(folder / "control"),
            "store_processed": False,
            # The filesystem transport polls; its 1 s default would cap the embedded service at a job a second.
            "polling_interval": 0.05,
        }
        # The filesystem transport has no fan-out exchange for remote control.
        config["worker_enable_remote_control"] = False
        config["worker_send_task_events"] = False
    else:
        # Above twice the longest task: a task that outlives it is delivered again while running (#5935).
        config["broker_transport_options"] = {"visibility_timeout": settings.visibility_timeout_seconds}
        config["broker_pool_limit"] = 10
    return config


def create_celery(settings: Settings) -> Celery:
    app = Celery("veil", set_as_current=False)
    app.conf.update(celery_config(settings))
    return app
