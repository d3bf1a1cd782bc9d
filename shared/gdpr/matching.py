"""Which of a tenant's jobs a data-subject request covers.

Explicit job ids match as given. Identifiers and a recorded-at range narrow together: a job matches when
it carries every identifier named (as keyed hashes) and was recorded inside the range. "Vehicle X between
08:00 and 09:00 on 3 March" is both; "every drive of driver D" is one identifier and no range.
"""

from __future__ import annotations

import uuid

from sqlmodel import Session, col, select

from shared.tables import Job, SubjectRequest


def matching_job_ids(*, session: Session, request: SubjectRequest) -> list[uuid.UUID]:
    found: set[uuid.UUID] = set()
    explicit = [uuid.UUID(j) for j in request.job_ids]
    if explicit:
        found.update(session.exec(
            select(Job.id).where(Job.tenant_id == request.tenant_id, col(Job.id).in_(explicit))
        ))
    if request.subject_ref_hashes or request.recorded_from or request.recorded_to:
        query = select(Job.id, Job.subject_ref_hashes).where(Job.tenant_id == request.tenant_id)
        if request.recorded_from is not None:
            query = query.where(col(Job.recorded_at) >= request.recorded_from)
        if request.recorded_to is not None:
            query = query.where(col(Job.recorded_at) <= request.recorded_to)
        wanted = set(request.subject_ref_hashes)
        # JSON lists are compared here rather than in SQL, to stay portable across PostgreSQL and SQLite.
        found.update(job_id for job_id, hashes in session.exec(query) if wanted <= set(hashes or []))
    return sorted(found)
