"""The webhook outbox: a delivery row written in the same transaction as the job's status change.

Writing the row beside the change (rather than posting from the code that made it) means a status change is
never announced without having happened, and never happens without being announced: a crash after the commit
leaves a `pending` row that the sweeper's doorbell finds. Callers add the row only when their compare-and-set
actually changed the job, so one transition yields one event.

The payload says what changed and where to look, nothing more: no subject references, file names, storage
keys or error text, since it leaves Veil for a URL the tenant chose.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from sqlmodel import col

from shared.states import JobStatus
from shared.tables import Job, WebhookDelivery
from shared.timeutil import utcnow

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


def event_name(status: JobStatus | str) -> str:
    return f"job.{JobStatus(status).value}"


def _connection(conn: Connection | Session) -> Connection:
    # A Session's connection() is the one its current transaction runs on: the row commits with the change.
    return conn.connection() if isinstance(conn, Session) else conn


def enqueue_job_event(conn: Connection | Session, job_id: uuid.UUID, event: JobStatus | str) -> uuid.UUID | None:
    """Add a pending delivery of `job.<event>` for the job when it has a callback URL; its id, or None.

    Call inside the transaction that made the change, after the UPDATE, so the payload shows the new row."""
    connection = _connection(conn)
    job = connection.execute(
        select(col(Job.tenant_id), col(Job.callback_url), col(Job.status), col(Job.error_code),
               col(Job.faces_found), col(Job.plates_found)).where(col(Job.id) == job_id)
    ).one_or_none()
    if job is None or not job.callback_url:
        return None
    now, delivery_id, name = utcnow(), uuid.uuid4(), event_name(event)
    connection.execute(insert(WebhookDelivery).values(
        id=delivery_id, tenant_id=job.tenant_id, job_id=job_id, url=job.callback_url, event=name,
        payload=_payload(delivery_id, name, now.isoformat(), job_id, JobStatus(event).value, job.error_code,
                         job.faces_found, job.plates_found),
        status=PENDING, attempts=0, created_at=now, next_attempt_at=now,
    ))
    return delivery_id


def enqueue_job_events(conn: Connection | Session, job_ids: Iterable[uuid.UUID],
                       event: JobStatus | str) -> list[uuid.UUID]:
    return [d for job_id in job_ids if (d := enqueue_job_event(conn, job_id, event)) is not None]


def _payload(delivery_id: uuid.UUID, event: str, created_at: str, job_id: uuid.UUID, status: str,
             error_code: str | None, faces_found: int | None, plates_found: int | None) -> dict[str, Any]:
    base = f"/v1/jobs/{job_id}"
    return {
        "id": str(delivery_id),
        "event": event,
        "created_at": created_at,
        "data": {
            "job_id": str(job_id),
            "status": status,
            "error_code": error_code,
            "faces_found": faces_found,
            "plates_found": plates_found,
            "links": {"self": base, "result": f"{base}/result", "detections": f"{base}/detections"},
        },
    }


def due_for_job(conn: Connection | Session, job_id: uuid.UUID) -> list[uuid.UUID]:
    """The job's pending deliveries that are due now, oldest first: what to ring the doorbell for."""
    return list(_connection(conn).execute(
        select(col(WebhookDelivery.id))
        .where(col(WebhookDelivery.job_id) == job_id, col(WebhookDelivery.status) == PENDING,
               col(WebhookDelivery.next_attempt_at) <= utcnow())
        .order_by(col(WebhookDelivery.created_at))
    ).scalars())
