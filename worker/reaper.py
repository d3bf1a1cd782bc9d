"""The sweeper: one pass puts right what crashes and lost messages leave behind.

- running jobs whose lease expired go back to `queued` (or `dead` past the attempt cap) and are republished;
- queued jobs that waited too long are republished (Redis may have lost the message; Postgres did not),
  each kind to its own task and judged against its own queue's depth;
- originals, anonymized outputs and access archives past their retention times are deleted (one function
  per kind; nothing not yet due is touched);
- access requests whose message was lost, or whose attempt died, are published again;
- erasure requests are published when their message may be lost, their pass died, or their second sweep is
  due (the grace period after the first pass has passed): the only way that sweep starts;
- objects a crashed or losing attempt wrote beside a finished job's output are deleted;
- webhook deliveries that are due (new, or waiting out a retry's backoff) are published: the only way a
  retry is scheduled, since Celery countdowns are not trusted on Redis.
Rows are taken with FOR UPDATE SKIP LOCKED, so two reapers at once never double a job.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from shared.errors import ReasonCode
from shared.gdpr.retention import purge_expired_archives, purge_expired_outputs
from shared.queues import TaskName
from shared.settings import Settings
from shared.states import TERMINAL, JobStatus
from shared.storage import Storage
from shared.tables import Job
from shared.timeutil import utcnow
from shared.webhook_outbox import enqueue_job_events
from worker.gdpr_access import republishable
from worker.gdpr_erasure import due_erasures
from worker.publisher import Publisher
from worker.webhook_delivery import due_deliveries

log = logging.getLogger("veil.reaper")
BATCH = 500

Publish = Callable[[Iterable[uuid.UUID]], list[uuid.UUID]]
QueueDepth = Callable[[], int | None]


@dataclass
class ReapReport:
    requeued: int = 0
    dead: int = 0
    republished: int = 0
    inputs_deleted: int = 0
    orphans_deleted: int = 0
    outputs_deleted: int = 0
    archives_deleted: int = 0
    published: list[uuid.UUID] = field(default_factory=list)
    webhooks_published: list[uuid.UUID] = field(default_factory=list)
    access_published: list[uuid.UUID] = field(default_factory=list)
    erasures_published: list[uuid.UUID] = field(default_factory=list)


def reap_once(*, engine: Engine, storage: Storage, settings: Settings, publish: Publish,
              queue_depth: QueueDepth = lambda: None, publish_video: Publish | None = None,
              video_queue_depth: QueueDepth = lambda: None, publish_webhooks: Publish | None = None,
              webhook_queue_depth: QueueDepth = lambda: None, publish_access: Publish | None = None,
              access_queue_depth: QueueDepth = lambda: None, publish_gdpr: Publish | None = None,
              gdpr_queue_depth: QueueDepth = lambda: None) -> ReapReport:
    """One pass. `publish` and `queue_depth` are for image jobs, `publish_video` and `video_queue_depth` for
    video jobs (without `publish_video`, queued videos wait for a pass that has it). A queue's depth (messages
    waiting in the broker) keeps a long backlog from being republished over and over: only as many stale jobs
    of that kind as its queue is short of are sent again. The same holds for due webhook deliveries and
    `webhook_queue_depth`."""
    report = ReapReport()
    expired = _requeue_expired(engine, report)
    for kind, send, depth in (("image", publish, queue_depth), ("video", publish_video, video_queue_depth)):
        if send is None:
            continue
        to_publish = expired.get(kind, []) + _take_stale_queued(engine, settings, report, depth(), kind)
        report.published += send(to_publish) if to_publish else []
    if publish_webhooks is not None:
        due = _due_webhooks(engine, webhook_queue_depth())
        report.webhooks_published = publish_webhooks(due) if due else []
    if publish_access is not None:
        lost = republishable(engine, settings, access_queue_depth())
        report.access_published = publish_access(lost) if lost else []
    if publish_gdpr is not None:
        erasures = due_erasures(engine, settings, gdpr_queue_depth())
        report.erasures_published = publish_gdpr(erasures) if erasures else []
    _purge_expired_inputs(engine, storage, report)
    report.outputs_deleted = purge_expired_outputs(engine, storage, batch=BATCH)
    report.archives_deleted = purge_expired_archives(engine, storage, batch=BATCH)
    _delete_orphans(engine, storage, report)
    if any((report.requeued, report.dead, report.republished, report.inputs_deleted, report.orphans_deleted,
            report.webhooks_published, report.outputs_deleted, report.archives_deleted, report.access_published,
            report.erasures_published)):
        log.info("reaped", extra={"requeued": report.requeued, "dead": report.dead,
                                  "republished": report.republished, "inputs_deleted": report.inputs_deleted,
                                  "outputs_deleted": report.outputs_deleted,
                                  "archives_deleted": report.archives_deleted,
                                  "orphans_deleted": report.orphans_deleted,
                                  "webhooks_published": len(report.webhooks_published),
                                  "access_published": len(report.access_published),
                                  "erasures_published": len(report.erasures_published)})
    return report


def _requeue_expired(engine: Engine, report: ReapReport) -> dict[str, list[uuid.UUID]]:
    """Expired leases back to `queued` (or `dead`); returns the requeued ids by job kind."""
    now = utcnow()
    with Session(engine) as session, session.begin():
        rows = session.execute(
            select(col(Job.id), col(Job.kind), col(Job.attempts), col(Job.max_attempts))
            .where(col(Job.status) == JobStatus.running.value, col(Job.lease_expires_at) < now)
            .limit(BATCH).with_for_update(skip_locked=True)
        ).all()
        exhausted = [r.id for r in rows if r.attempts >= r.max_attempts]
        retry = [r.id for r in rows if r.attempts < r.max_attempts]
        if exhausted:
            session.execute(update(Job).where(col(Job.id).in_(exhausted)).values(
                status=JobStatus.dead.value, error_code=ReasonCode.attempts_exhausted.value,
                error_message="The job was attempted the maximum number of times without finishing.",
                lease_owner=None, lease_expires_at=None, finished_at=now, updated_at=now,
                input_expires_at=now))
            enqueue_job_events(session, exhausted, JobStatus.dead)
        if retry:
            session.execute(update(Job).where(col(Job.id).in_(retry)).values(
                status=JobStatus.queued.value, lease_owner=None, lease_expires_at=None,
                last_published_at=now, updated_at=now))
    report.dead, report.requeued = len(exhausted), len(retry)
    by_kind: dict[str, list[uuid.UUID]] = {}
    for r in rows:
        if r.attempts < r.max_attempts:
            by_kind.setdefault(r.kind, []).append(r.id)
    return by_kind


def _due_webhooks(engine: Engine, depth: int | None) -> list[uuid.UUID]:
    due = due_deliveries(engine, BATCH)
    # Each due delivery needs one message; when the broker holds at least as many, none was lost.
    return due[:max(0, len(due) - depth)] if depth is not None else due


def _take_stale_queued(engine: Engine, settings: Settings, report: ReapReport,
                       depth: int | None, kind: str) -> list[uuid.UUID]:
    now = utcnow()
    cutoff = now - timedelta(seconds=settings.queued_republish_seconds)
    last_sent = func.coalesce(Job.last_published_at, Job.created_at)
    queued_of_kind = (col(Job.status) == JobStatus.queued.value, col(Job.kind) == kind)
    with Session(engine) as session, session.begin():
        limit = BATCH
        if depth is not None:
            # Each queued job needs one message in its kind's queue. If that queue holds at least as many as
            # there are queued jobs of the kind, none was lost (a backlog, not a loss); otherwise the
            # longest-waiting are the suspects.
            queued = session.execute(select(func.count()).select_from(Job).where(*queued_of_kind)).scalar_one()
            limit = min(BATCH, max(0, queued - depth))
        ids = list(session.execute(
            select(col(Job.id))
            .where(*queued_of_kind, last_sent < cutoff)
            .order_by(last_sent).limit(limit).with_for_update(skip_locked=True)
        ).scalars()) if limit else []
        if ids:
            # Stamped in the same transaction: a second reaper sees them as freshly published.
            session.execute(update(Job).where(col(Job.id).in_(ids)).values(last_published_at=now))
    report.republished += len(ids)
    return ids


def _purge_expired_inputs(engine: Engine, storage: Storage, report: ReapReport) -> None:
    now = utcnow()
    with Session(engine) as session:
        rows = session.execute(
            select(col(Job.id), col(Job.input_key)).where(
                col(Job.input_key).is_not(None), col(Job.input_expires_at) <= now,
                col(Job.status).in_([s.value for s in TERMINAL]),
            ).limit(BATCH)
        ).all()
        for row in rows:
            storage.delete(row.input_key)
            session.execute(update(Job).where(col(Job.id) == row.id, col(Job.input_key) == row.input_key)
                            .values(input_key=None, updated_at=now))
            report.inputs_deleted += 1
        session.commit()


def _delete_orphans(engine: Engine, storage: Storage, report: ReapReport) -> None:
    # Only recently finished jobs can gain an orphan (a crashed or losing attempt), so scan just those.
    since = utcnow() - timedelta(hours=1)
    with Session(engine) as session:
        rows = session.execute(
            select(col(Job.id), col(Job.output_key)).where(
                col(Job.status).in_([s.value for s in TERMINAL]), col(Job.updated_at) >= since
            ).limit(5 * BATCH)
        ).all()
    for row in rows:
        for key in storage.list(f"outputs/{row.id}"):
            if key != row.output_key and storage.delete(key):
                report.orphans_deleted += 1


def reap_and_publish(*, engine: Engine, storage: Storage, settings: Settings, publisher: Publisher) -> ReapReport:
    """One pass that rings the broker for what it finds: the periodic task and `veil reap` both use this."""
    return reap_once(
        engine=engine, storage=storage, settings=settings,
        publish=lambda ids: publisher.publish(TaskName.anonymize_image, ids),
        queue_depth=lambda: publisher.queue_depth(TaskName.anonymize_image),
        publish_video=lambda ids: publisher.publish(TaskName.anonymize_video, ids),
        video_queue_depth=lambda: publisher.queue_depth(TaskName.anonymize_video),
        publish_webhooks=lambda ids: publisher.publish(TaskName.deliver_webhook, ids),
        webhook_queue_depth=lambda: publisher.queue_depth(TaskName.deliver_webhook),
        publish_access=lambda ids: publisher.publish(TaskName.gdpr_access, ids),
        access_queue_depth=lambda: publisher.queue_depth(TaskName.gdpr_access),
        publish_gdpr=lambda ids: publisher.publish(TaskName.gdpr_erase, ids),
        gdpr_queue_depth=lambda: publisher.queue_depth(TaskName.gdpr_erase),
    )
