"""An admin's second chance for a failed or dead job: back to `queued`, scoped by tenant, as one compare-and-set.

This is not a worker transition (the state machine keeps failed and dead terminal for workers and the reaper):
it is a person deciding that the cause is gone, e.g. a model file restored or a worker fixed.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import update
from sqlmodel import Session, col

from shared.states import JobStatus
from shared.tables import Job
from shared.timeutil import utcnow

REQUEUEABLE: frozenset[JobStatus] = frozenset({JobStatus.failed, JobStatus.dead})


class Refusal(StrEnum):
    not_requeueable = "job_not_requeueable"  # not failed or dead (or it changed while we looked)
    input_gone = "input_missing"  # the upload was deleted (retention, erasure): nothing to run again


def refusal(job: Job, input_exists: bool) -> Refusal | None:
    """Why this job cannot be requeued, or None when it can."""
    if job.status not in REQUEUEABLE:
        return Refusal.not_requeueable
    if job.input_key is None or not input_exists:
        return Refusal.input_gone
    return None


def requeue(*, session: Session, tenant_id: str, job: Job, extra_attempts: int) -> bool:
    """Put the job back in the queue with `extra_attempts` more attempts; commits. False: it changed meanwhile.

    The attempts already made stay counted (the record shows every try); the cap is raised instead.
    The reaper deletes inputs of terminal jobs only, so the upload is safe once this has committed."""
    now = utcnow()
    result = session.exec(
        update(Job)
        .where(
            col(Job.id) == job.id,
            col(Job.tenant_id) == tenant_id,
            col(Job.status) == job.status,
            col(Job.input_key) == job.input_key,
            col(Job.status).in_([s.value for s in REQUEUEABLE]),
        )
        .values(status=JobStatus.queued.value, max_attempts=Job.attempts + extra_attempts,
                lease_owner=None, lease_expires_at=None, started_at=None, finished_at=None,
                progress=0.0, timings=None, error_code=None, error_message=None, input_expires_at=None,
                last_published_at=now, updated_at=now)
    )
    session.commit()
    return result.rowcount == 1
