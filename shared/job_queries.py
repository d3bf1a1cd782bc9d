"""Reads and writes of job rows made on behalf of a tenant. Every query here is scoped by tenant."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from shared.states import ACTIVE, JobStatus
from shared.tables import Job
from shared.timeutil import utcnow
from shared.webhook_outbox import enqueue_job_event


def get(*, session: Session, tenant_id: str, job_id: uuid.UUID) -> Job | None:
    """The tenant's job, or None: another tenant's job is indistinguishable from a missing one."""
    return session.exec(
        select(Job).where(col(Job.id) == job_id, col(Job.tenant_id) == tenant_id)
    ).one_or_none()


def get_by_idempotency_key(*, session: Session, tenant_id: str, key: str) -> Job | None:
    return session.exec(
        select(Job).where(col(Job.tenant_id) == tenant_id, col(Job.idempotency_key) == key)
    ).one_or_none()


def insert(*, session: Session, job: Job) -> tuple[Job, bool]:
    """Insert and commit. With an idempotency key already used, return that job and False instead."""
    session.add(job)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        if job.idempotency_key is None:
            raise
        existing = get_by_idempotency_key(session=session, tenant_id=job.tenant_id, key=job.idempotency_key)
        if existing is None:
            raise
        return existing, False
    return job, True


@dataclass(frozen=True)
class Page:
    items: Sequence[Job]
    next_cursor: str | None


def _encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), str(job.id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError for anything that is not a cursor this API issued."""
    try:
        created, job_id = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when, ident = datetime.fromisoformat(created), uuid.UUID(job_id)
    except Exception as exc:  # malformed base64, JSON, date or UUID: all the same to the caller
        raise ValueError("invalid cursor") from exc
    if when.tzinfo is None:  # every cursor we issue carries its UTC offset
        raise ValueError("invalid cursor")
    return when, ident


def list_page(
    *, session: Session, tenant_id: str, status: JobStatus | None, limit: int, cursor: str | None
) -> Page:
    """Newest first; a keyset cursor so pages stay stable while new jobs arrive."""
    query = select(Job).where(col(Job.tenant_id) == tenant_id)
    if status is not None:
        query = query.where(col(Job.status) == status.value)
    if cursor is not None:
        created, job_id = decode_cursor(cursor)
        query = query.where(
            or_(col(Job.created_at) < created, and_(col(Job.created_at) == created, col(Job.id) < job_id))
        )
    rows = list(
        session.exec(
            query.order_by(col(Job.created_at).desc(), col(Job.id).desc()).limit(limit + 1)
        )
    )
    more = len(rows) > limit
    rows = rows[:limit]
    return Page(items=rows, next_cursor=_encode_cursor(rows[-1]) if more and rows else None)


def cancel(*, session: Session, tenant_id: str, job_id: uuid.UUID) -> bool:
    """Cancel a queued or running job. A worker still running it loses its finalize and cleans up."""
    now = utcnow()
    result = session.exec(
        update(Job)
        .where(
            col(Job.id) == job_id,
            col(Job.tenant_id) == tenant_id,
            col(Job.status).in_([s.value for s in ACTIVE]),
        )
        .values(status=JobStatus.cancelled.value, lease_owner=None, lease_expires_at=None,
                finished_at=now, updated_at=now, error_code="cancelled",
                error_message="The job was cancelled by its owner.")
    )
    cancelled = result.rowcount == 1
    if cancelled:
        enqueue_job_event(session, job_id, JobStatus.cancelled)
    session.commit()
    return cancelled


def forget_objects(*, session: Session, job_id: uuid.UUID, **keys: Any) -> None:
    """Record that stored objects are gone (set their key columns to None)."""
    session.execute(update(Job).where(col(Job.id) == job_id).values(updated_at=utcnow(), **keys))
    session.commit()


def mark_published(*, session: Session, job_ids: Sequence[uuid.UUID]) -> None:
    if job_ids:
        session.execute(
            update(Job).where(col(Job.id).in_(job_ids)).values(last_published_at=utcnow())
        )
        session.commit()
