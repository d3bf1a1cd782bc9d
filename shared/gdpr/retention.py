"""Storage limitation (Art. 5(1)(e)): delete each kind of stored object once its retention time has passed.

One function per kind, each run by every reaper pass (originals: `worker.reaper._purge_expired_inputs`).
Each deletes the object first and then forgets its key with a compare-and-set on the key it read, so a crash
in between leaves a row that the next pass finishes, never an object no row points to. Nothing that is not
yet due is touched, and rows are kept: the job's record and the request's proof outlive the files.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlmodel import col

from shared.storage import Storage
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow

BATCH = 500


def purge_expired_outputs(engine: Engine, storage: Storage, *, now: datetime | None = None,
                          batch: int = BATCH) -> int:
    """Anonymized outputs past `output_expires_at` (VEIL_KEEP_OUTPUTS_DAYS); the job then shows no result."""
    now = now or utcnow()
    deleted = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(col(Job.id), col(Job.output_key)).where(
                col(Job.output_key).is_not(None), col(Job.output_expires_at) <= now).limit(batch)
        ).all()
        for row in rows:
            storage.delete(row.output_key)
            deleted += conn.execute(
                update(Job).where(col(Job.id) == row.id, col(Job.output_key) == row.output_key)
                .values(output_key=None, updated_at=now)).rowcount
    return deleted


def purge_expired_archives(engine: Engine, storage: Storage, *, now: datetime | None = None,
                           batch: int = BATCH) -> int:
    """Access archives past `archive_expires_at` (VEIL_KEEP_ACCESS_ARCHIVES_DAYS); the expiry time is kept,
    so the API can answer 410 `archive_expired` rather than pretend there never was one."""
    now = now or utcnow()
    deleted = 0
    with engine.begin() as conn:
        rows = conn.execute(
            select(col(SubjectRequest.id), col(SubjectRequest.archive_key)).where(
                col(SubjectRequest.archive_key).is_not(None), col(SubjectRequest.archive_expires_at) <= now,
            ).limit(batch)
        ).all()
        for row in rows:
            storage.delete(row.archive_key)
            deleted += conn.execute(
                update(SubjectRequest)
                .where(col(SubjectRequest.id) == row.id, col(SubjectRequest.archive_key) == row.archive_key)
                .values(archive_key=None)).rowcount
    return deleted
