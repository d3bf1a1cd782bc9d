"""Carry out an Art. 17 erasure request, in two passes, and leave a receipt that proves it.

Pass 1 (`received` -> `in_progress` -> `sweeping`): match the tenant's jobs, cancel those still queued or
running (a worker holding one loses its heartbeat and its finalize compare-and-set, and deletes what it
wrote), then erase every place in the registry, recording the counts place by place.
Pass 2 (`sweeping`, once `sweep_after` has passed): erase again, which catches what a worker wrote after
pass 1 (a crash between its write and its finalize leaves an object nobody else would delete), then verify
every place; all zero: the receipt is built and the request is `completed`. Otherwise it stays `sweeping`
and the sweeper tries again after the grace period.

Each pass is claimed by a compare-and-set that sets `sweep_after` to a lease (the task's hard time limit),
and `attempts` is the fencing token of every later write, so a pass that died is taken over once its lease
runs out, and the pass it died in can no longer write. Every step is safe to repeat: the matched ids are
kept on the request (a job erased by a dead pass is not matched again, but still verified), and a request
already completed is returned untouched. Pass 2 is started by the sweeper, never by a Celery countdown.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from shared.gdpr.erasure_registry import REGISTRY
from shared.gdpr.matching import matching_job_ids
from shared.gdpr.receipt import build_receipt
from shared.settings import Settings
from shared.states import ACTIVE, JobStatus
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow
from shared.webhook_outbox import enqueue_job_events
from worker.context import WorkerContext

log = logging.getLogger("veil.gdpr")
CHUNK = 500
LEASE_MARGIN_S = 30


class ErasureOutcome(StrEnum):
    completed = "completed"  # verified and receipted by this call
    already_completed = "already_completed"  # nothing to do, nothing changed
    sweeping = "sweeping"  # pass 1 done, or verification failed: the sweeper starts pass 2 when due
    retry = "retry"  # a pass failed (error_code says so); the sweeper publishes it again after the grace period
    skipped = "skipped"  # unknown, not an erasure, or a pass is held elsewhere / not due yet


class _Lost(Exception):
    """Our pass was taken over (its lease ran out): stop writing."""


Pass = Callable[[WorkerContext, uuid.UUID, int], ErasureOutcome]


def run_erasure(ctx: WorkerContext, request_id: uuid.UUID) -> str:
    """Run whichever pass is due; pass 2 follows pass 1 at once when the grace period is zero."""
    with Session(ctx.engine) as session:
        request = session.get(SubjectRequest, request_id)
        if request is None or request.type != "erasure":
            return ErasureOutcome.skipped.value
        if request.status == "completed":
            return ErasureOutcome.already_completed.value
    outcome = ErasureOutcome.skipped
    token = _claim(ctx, request_id, or_(col(SubjectRequest.status) == "received",
                                        col(SubjectRequest.status) == "in_progress"), "in_progress")
    if token is not None:
        outcome = _guarded(ctx, request_id, token, _first_pass)
    if outcome in (ErasureOutcome.skipped, ErasureOutcome.sweeping):
        token = _claim(ctx, request_id, col(SubjectRequest.status) == "sweeping", "sweeping")
        if token is not None:
            outcome = _guarded(ctx, request_id, token, _second_pass)
    return outcome.value


def _lease(ctx: WorkerContext) -> timedelta:
    return timedelta(seconds=ctx.settings.task_time_limit_seconds + LEASE_MARGIN_S)


def _claim(ctx: WorkerContext, request_id: uuid.UUID, status: ColumnElement[bool], new_status: str) -> int | None:
    """Take the request for one pass; its `attempts` after the claim is the token, None: not ours now."""
    now = utcnow()
    # `received` needs no due time; a held pass is due again once its lease (sweep_after) has run out.
    due = or_(col(SubjectRequest.status) == "received", col(SubjectRequest.sweep_after) <= now)
    with ctx.engine.begin() as conn:
        return conn.execute(
            update(SubjectRequest)
            .where(col(SubjectRequest.id) == request_id, col(SubjectRequest.type) == "erasure", status, due)
            .values(status=new_status, attempts=SubjectRequest.attempts + 1, sweep_after=now + _lease(ctx),
                    started_at=func.coalesce(SubjectRequest.started_at, now))
            .returning(col(SubjectRequest.attempts))
        ).scalar_one_or_none()


def _held(request_id: uuid.UUID, token: int) -> ColumnElement[bool]:
    return and_(col(SubjectRequest.id) == request_id, col(SubjectRequest.attempts) == token,
                col(SubjectRequest.status).in_(("in_progress", "sweeping")))


def _write(ctx: WorkerContext, request_id: uuid.UUID, token: int, **values: Any) -> None:
    with ctx.engine.begin() as conn:
        if conn.execute(update(SubjectRequest).where(_held(request_id, token)).values(**values)).rowcount != 1:
            raise _Lost


def _guarded(ctx: WorkerContext, request_id: uuid.UUID, token: int, run: Pass) -> ErasureOutcome:
    try:
        outcome = run(ctx, request_id, token)
    except _Lost:
        log.warning("erasure pass taken over", extra={"request_id": str(request_id)})
        return ErasureOutcome.skipped
    except Exception as exc:  # storage or database trouble: retried once the lease is released
        log.warning("erasure pass failed", extra={"request_id": str(request_id), "error": type(exc).__name__})
        retry_at = utcnow() + timedelta(seconds=ctx.settings.erasure_grace_seconds)
        with contextlib.suppress(Exception):  # if even this fails, the lease runs out on its own
            _write(ctx, request_id, token, error_code="erasure_error", sweep_after=retry_at)
        return ErasureOutcome.retry
    log.info("erasure pass done", extra={"request_id": str(request_id), "outcome": outcome.value})
    return outcome


def _load(ctx: WorkerContext, request_id: uuid.UUID) -> SubjectRequest:
    with Session(ctx.engine) as session:
        request = session.get(SubjectRequest, request_id)
        if request is None:
            raise _Lost
        session.expunge(request)
        return request


def _add(counts: dict[str, int], place: str, n: int) -> dict[str, int]:
    return {**counts, place: counts.get(place, 0) + n}


def _first_pass(ctx: WorkerContext, request_id: uuid.UUID, token: int) -> ErasureOutcome:
    request = _load(ctx, request_id)
    result: dict[str, Any] = dict(request.result or {})
    ids, cancelled = _match_and_cancel(ctx, request, token)
    result["jobs_cancelled"] = int(result.get("jobs_cancelled", 0)) + cancelled
    erased: dict[str, int] = {place.name: 0 for place in REGISTRY} | dict(result.get("erased", {}))
    for place in REGISTRY:
        erased = _add(erased, place.name, place.erase(ctx, ids))
        # Recorded place by place: a pass that dies half-way keeps the counts of what it did erase.
        result["erased"] = erased
        _write(ctx, request_id, token, result=dict(result))
    _write(ctx, request_id, token, status="sweeping",
           sweep_after=utcnow() + timedelta(seconds=ctx.settings.erasure_grace_seconds))
    return ErasureOutcome.sweeping


def _match_and_cancel(ctx: WorkerContext, request: SubjectRequest, token: int) -> tuple[list[uuid.UUID], int]:
    """Match, remember the matches, and cancel the active ones, in one transaction."""
    now = utcnow()
    with Session(ctx.engine) as session:
        found = matching_job_ids(session=session, request=request)
        # A retry after a dead pass no longer matches what that pass erased; keep verifying those too.
        ids = sorted(set(found) | {uuid.UUID(j) for j in request.matched_job_ids})
        cancelled: list[uuid.UUID] = []
        for start in range(0, len(ids), CHUNK):
            cancelled.extend(session.execute(
                update(Job)
                .where(col(Job.id).in_(ids[start:start + CHUNK]), col(Job.tenant_id) == request.tenant_id,
                       col(Job.status).in_([s.value for s in ACTIVE]))
                .values(status=JobStatus.cancelled.value, lease_owner=None, lease_expires_at=None,
                        finished_at=now, updated_at=now, error_code="cancelled",
                        error_message="The job was cancelled by a data-subject erasure.")
                .returning(col(Job.id))
            ).scalars())
        enqueue_job_events(session, cancelled, JobStatus.cancelled)
        stored = session.exec(
            update(SubjectRequest).where(_held(request.id, token))
            .values(matched_job_ids=[str(j) for j in ids])
        ).rowcount
        if stored != 1:
            session.rollback()
            raise _Lost
        session.commit()
    return ids, len(cancelled)


def _second_pass(ctx: WorkerContext, request_id: uuid.UUID, token: int) -> ErasureOutcome:
    request = _load(ctx, request_id)
    ids = [uuid.UUID(j) for j in request.matched_job_ids]
    result: dict[str, Any] = dict(request.result or {})
    late: dict[str, int] = {place.name: 0 for place in REGISTRY} | dict(result.get("late_writes", {}))
    for place in REGISTRY:
        late = _add(late, place.name, place.erase(ctx, ids))
    result["late_writes"] = late
    verification = _verify(ctx, ids)
    result["verification"] = verification
    now = utcnow()
    if any(v["remaining"] for v in verification.values()):
        _write(ctx, request_id, token, result=result, error_code="verification_failed",
               sweep_after=now + timedelta(seconds=ctx.settings.erasure_grace_seconds))
        return ErasureOutcome.sweeping
    receipt, sha256 = build_receipt(request, result.get("erased", {}), verification, late, now,
                                    jobs_cancelled=int(result.get("jobs_cancelled", 0)))
    result["changed"] = receipt["changed"]
    _write(ctx, request_id, token, status="completed", completed_at=now, sweep_after=None, error_code=None,
           result=result, receipt=receipt, receipt_sha256=sha256)
    return ErasureOutcome.completed


def _verify(ctx: WorkerContext, ids: Sequence[uuid.UUID]) -> dict[str, dict[str, Any]]:
    return {place.name: {"method": place.verify_method, "remaining": place.verify(ctx, ids)} for place in REGISTRY}


def due_erasures(engine: Engine, settings: Settings, depth: int | None, limit: int = 500) -> list[uuid.UUID]:
    """Erasure requests to publish: `received` a while ago (the message may be lost), `sweeping` past their
    grace period (pass 2 is due: this is how it starts), or a pass whose lease ran out. As with jobs, when
    the broker holds at least as many messages as there are candidates, none was lost."""
    now = utcnow()
    waiting = now - timedelta(seconds=settings.queued_republish_seconds)
    with Session(engine) as session:
        due = list(session.exec(select(SubjectRequest.id).where(
            col(SubjectRequest.type) == "erasure",
            or_(and_(col(SubjectRequest.status) == "received", col(SubjectRequest.received_at) < waiting),
                and_(col(SubjectRequest.status).in_(("in_progress", "sweeping")),
                     col(SubjectRequest.sweep_after) <= now)),
        ).order_by(col(SubjectRequest.received_at)).limit(limit)))
    return due[:max(0, len(due) - depth)] if depth is not None else due
