"""What the job and subject-request tables say at this moment, for /metrics: counts and ages, no identities.

Read at scrape time from PostgreSQL (the record of every job), so every API process reports the same
numbers and none has to keep counters in step with the others. Across all tenants, and without a tenant
label: the operator's view, not a tenant's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlmodel import col

from shared.gdpr.requests import OPEN_STATUSES
from shared.states import JobStatus
from shared.tables import Job, SubjectRequest

JOB_KINDS = ("image", "video")
REQUEST_TYPES = ("erasure", "access")


@dataclass(frozen=True)
class SubjectRequestStats:
    open: int
    overdue: int
    nearest_due_at: datetime | None


@dataclass(frozen=True)
class TableSnapshot:
    taken_at: datetime
    # (status, kind) -> jobs; every known status and kind is present, zeros included.
    jobs: dict[tuple[str, str], int]
    # kind -> when the longest-waiting queued job was submitted; absent when none is queued.
    oldest_queued: dict[str, datetime] = field(default_factory=dict)
    subject_requests: dict[str, SubjectRequestStats] = field(default_factory=dict)


def take_snapshot(conn: Connection, now: datetime) -> TableSnapshot:
    jobs = {(status.value, kind): 0 for status in JobStatus for kind in JOB_KINDS}
    for status, kind, count in conn.execute(
        select(col(Job.status), col(Job.kind), func.count()).group_by(col(Job.status), col(Job.kind))
    ):
        jobs[(status, kind)] = int(count)

    oldest = {kind: created for kind, created in conn.execute(
        select(col(Job.kind), func.min(col(Job.created_at)))
        .where(col(Job.status) == JobStatus.queued.value).group_by(col(Job.kind))
    )}

    requests = {t: SubjectRequestStats(open=0, overdue=0, nearest_due_at=None) for t in REQUEST_TYPES}
    is_overdue = col(SubjectRequest.due_at) < now
    for type_, open_count, overdue, nearest in conn.execute(
        select(col(SubjectRequest.type), func.count(), func.count().filter(is_overdue),
               func.min(col(SubjectRequest.due_at)))
        .where(col(SubjectRequest.status).in_(OPEN_STATUSES)).group_by(col(SubjectRequest.type))
    ):
        requests[type_] = SubjectRequestStats(open=int(open_count), overdue=int(overdue), nearest_due_at=nearest)
    return TableSnapshot(taken_at=now, jobs=jobs, oldest_queued=oldest, subject_requests=requests)
