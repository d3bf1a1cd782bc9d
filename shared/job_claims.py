"""Compare-and-set transitions a worker makes on a job row: claim, heartbeat, finalize, release.

Each is one UPDATE whose WHERE clause states what must still be true; zero rows updated means somebody
else (another delivery, the reaper, a cancellation, an erasure) got there first, and the caller backs off.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from shared.errors import ReasonCode
from shared.states import JobStatus
from shared.tables import Job
from shared.timeutil import utcnow
from shared.webhook_outbox import enqueue_job_event


@dataclass(frozen=True)
class Claim:
    job_id: uuid.UUID
    token: str
    attempt: int


def new_lease_token() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _claimable(job_id: uuid.UUID, now: datetime) -> ColumnElement[bool]:
    return and_(
        col(Job.id) == job_id,
        or_(
            col(Job.status) == JobStatus.queued.value,
            and_(col(Job.status) == JobStatus.running.value, col(Job.lease_expires_at) < now),
        ),
    )


def claim(engine: Engine, job_id: uuid.UUID, *, lease_seconds: int) -> Claim | None:
    """Take the job, or mark it dead when it has used up its attempts. None: not ours to run."""
    now, token = utcnow(), new_lease_token()
    with engine.begin() as conn:
        attempt = conn.execute(
            update(Job)
            .where(_claimable(job_id, now), col(Job.attempts) < col(Job.max_attempts))
            .values(
                status=JobStatus.running.value,
                attempts=Job.attempts + 1,
                lease_owner=token,
                lease_expires_at=now + timedelta(seconds=lease_seconds),
                started_at=func.coalesce(Job.started_at, now),
                updated_at=now,
            )
            .returning(col(Job.attempts))
        ).scalar_one_or_none()
        if attempt is not None:
            enqueue_job_event(conn, job_id, JobStatus.running)
            return Claim(job_id=job_id, token=token, attempt=attempt)
        dead = conn.execute(
            update(Job)
            .where(_claimable(job_id, now), col(Job.attempts) >= col(Job.max_attempts))
            .values(
                status=JobStatus.dead.value,
                error_code=ReasonCode.attempts_exhausted.value,
                error_message="The job was attempted the maximum number of times without finishing.",
                lease_owner=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
                # Like the reaper's dead path: nothing will read the unmasked original again.
                input_expires_at=now,
            )
        ).rowcount
        if dead == 1:
            enqueue_job_event(conn, job_id, JobStatus.dead)
    return None


def _held(c: Claim) -> ColumnElement[bool]:
    return and_(col(Job.id) == c.job_id, col(Job.status) == JobStatus.running.value, col(Job.lease_owner) == c.token)


def renew(engine: Engine, c: Claim, *, lease_seconds: int, progress: float | None = None) -> bool:
    """Extend the lease. False: the job was cancelled, erased or taken over; stop working on it."""
    now = utcnow()
    values: dict[str, Any] = {"lease_expires_at": now + timedelta(seconds=lease_seconds), "updated_at": now}
    if progress is not None:
        values["progress"] = progress
    with engine.begin() as conn:
        return conn.execute(update(Job).where(_held(c)).values(**values)).rowcount == 1


def finalize(engine: Engine, c: Claim, status: JobStatus, **values: Any) -> bool:
    """Move a held job to a terminal status. False: we lost it, and must clean up what we wrote."""
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            update(Job)
            .where(_held(c))
            .values(status=status.value, lease_owner=None, lease_expires_at=None, finished_at=now,
                    updated_at=now, **values)
        )
        if result.rowcount != 1:
            return False
        enqueue_job_event(conn, c.job_id, status)
        return True


def release(engine: Engine, c: Claim) -> bool:
    """Give a held job back to the queue after a transient error; the attempt stays counted."""
    now = utcnow()
    with engine.begin() as conn:
        result = conn.execute(
            update(Job)
            .where(_held(c))
            .values(status=JobStatus.queued.value, lease_owner=None, lease_expires_at=None, updated_at=now)
        )
        return result.rowcount == 1
