"""Messages waiting in each broker queue, read for /metrics without ever hanging a scrape."""

from __future__ import annotations

import logging

from celery import Celery
from kombu.exceptions import ChannelError

from shared.queues import QueueName

log = logging.getLogger("veil.metrics")


def queue_depths(celery: Celery) -> dict[str, int] | None:
    """Depth per queue, or None when the broker cannot be reached. A queue nobody declared yet holds nothing."""
    try:
        with celery.connection_for_read() as conn:
            # Bounded: the default channel alone would retry an unreachable broker without end.
            conn.ensure_connection(max_retries=1, timeout=2)
            channel = conn.default_channel
            depths: dict[str, int] = {}
            for queue in QueueName:
                try:
                    depths[queue.value] = int(channel.queue_declare(queue=queue.value, passive=True).message_count)
                except ChannelError:  # not declared: no worker or publisher has used it yet
                    depths[queue.value] = 0
            return depths
    except Exception as exc:  # unreachable broker: reported as source_up 0
        log.warning("metrics: broker unreadable", extra={"error": type(exc).__name__})
        return None
