"""The API's Prometheus collector: gauges computed at scrape time from PostgreSQL and the broker.

Nothing is counted in the API processes themselves, so any number of them behind a load balancer give the
same answer and a restart loses nothing. A source that cannot be read is reported as
`veil_metrics_source_up{source=...} 0` and its gauges are left out, rather than failing the scrape.
Labels are statuses, kinds, queue and request-type names only: no tenant, key, subject or file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy.engine import Engine

from shared.metrics_snapshot import TableSnapshot, take_snapshot
from shared.timeutil import utcnow

log = logging.getLogger("veil.metrics")

QueueDepths = Callable[[], Mapping[str, int] | None]
_DAY = 86400.0


class VeilCollector(Collector):
    def __init__(self, engine: Engine, queue_depths: QueueDepths) -> None:
        self._engine = engine
        self._queue_depths = queue_depths

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("veil_metrics_source_up", "Whether the last scrape could read this source.",
                               labels=["source"])
        snapshot = self._snapshot()
        up.add_metric(["database"], 1.0 if snapshot is not None else 0.0)
        if snapshot is not None:
            yield from table_metrics(snapshot)
        depth = GaugeMetricFamily("veil_queue_depth", "Messages waiting in the broker queue.", labels=["queue"])
        depths = self._queue_depths()
        for queue, value in sorted((depths or {}).items()):
            depth.add_metric([queue], float(value))
        up.add_metric(["broker"], 1.0 if depths is not None else 0.0)
        yield depth
        yield up

    def _snapshot(self) -> TableSnapshot | None:
        try:
            with self._engine.connect() as conn:
                return take_snapshot(conn, utcnow())
        except Exception as exc:  # an outage shows as source_up 0; /readyz says which check failed
            log.warning("metrics: database unreadable", extra={"error": type(exc).__name__})
            return None


def table_metrics(snap: TableSnapshot) -> Iterator[GaugeMetricFamily]:
    jobs = GaugeMetricFamily("veil_jobs", "Jobs in the job table by status and kind.", labels=["status", "kind"])
    for (status, kind), count in sorted(snap.jobs.items()):
        jobs.add_metric([status, kind], float(count))
    yield jobs

    oldest = GaugeMetricFamily("veil_oldest_queued_job_age_seconds",
                               "Seconds since the longest-waiting queued job was submitted (0: none queued).",
                               labels=["kind"])
    for kind in sorted({kind for _, kind in snap.jobs}):
        created = snap.oldest_queued.get(kind)
        oldest.add_metric([kind], max(0.0, (snap.taken_at - created).total_seconds()) if created else 0.0)
    yield oldest

    open_ = GaugeMetricFamily("veil_subject_requests_open", "Data-subject requests not yet completed or failed.",
                              labels=["type"])
    overdue = GaugeMetricFamily("veil_subject_requests_overdue", "Open data-subject requests past their deadline.",
                                labels=["type"])
    nearest = GaugeMetricFamily("veil_subject_request_deadline_days",
                                "Days to the nearest deadline of an open request (negative: overdue). "
                                "Absent when none is open.", labels=["type"])
    for type_, stats in sorted(snap.subject_requests.items()):
        open_.add_metric([type_], float(stats.open))
        overdue.add_metric([type_], float(stats.overdue))
        if stats.nearest_due_at is not None:
            nearest.add_metric([type_], (stats.nearest_due_at - snap.taken_at).total_seconds() / _DAY)
    yield open_
    yield overdue
    yield nearest
