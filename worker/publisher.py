"""Ring the doorbell: tell the broker that a committed job exists. Postgres stays the record."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

from celery import Celery

from shared.queues import TASK_QUEUES, TaskName

log = logging.getLogger("veil.publisher")


class Publisher:
    def __init__(self, app: Celery) -> None:
        self._app = app

    def publish(self, task: TaskName, job_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
        """Send one message per job; returns the ids sent. A broker error is logged, never raised:
        the row is committed, and the sweeper republishes what was not sent."""
        sent: list[uuid.UUID] = []
        for job_id in job_ids:
            try:
                self._app.send_task(task.value, args=[str(job_id)], queue=TASK_QUEUES[task].value)
            except Exception as exc:  # any broker failure: the sweeper will retry
                log.warning("publish failed; the sweeper will republish", extra={"job_id": str(job_id),
                            "error": type(exc).__name__})
                break
            sent.append(job_id)
        return sent

    def queue_depth(self, task: TaskName) -> int | None:
        """Messages waiting in the task's queue, or None when the broker cannot say (or is down)."""
        try:
            with self._app.connection_for_read() as conn:
                declared = conn.default_channel.queue_declare(queue=TASK_QUEUES[task].value, passive=True)
                return int(declared.message_count)
        except Exception as exc:  # unreachable broker or a queue not declared yet: depth unknown
            log.info("queue depth unknown", extra={"queue": TASK_QUEUES[task].value, "error": type(exc).__name__})
            return None
