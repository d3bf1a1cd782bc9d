"""Receiving, reading and extending data-subject requests. Every query is scoped by tenant."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from shared.gdpr.deadlines import check_extension, due_at
from shared.subjects import hash_subject_refs
from shared.tables import SubjectRequest
from shared.timeutil import utcnow

OPEN_STATUSES = ("received", "in_progress", "sweeping")


class RequestError(ValueError):
    """A request that cannot be made as asked; the message names the rule, never the subject."""


def create(*, session: Session, tenant_id: str, type: Literal["erasure", "access"], secret: str,
           subject_refs: Mapping[str, str] | None = None, recorded_from: datetime | None = None,
           recorded_to: datetime | None = None, job_ids: Sequence[uuid.UUID] = (), reference: str | None = None,
           now: datetime | None = None) -> SubjectRequest:
    if not subject_refs and recorded_from is None and recorded_to is None and not job_ids:
        raise RequestError("name the subject: subject_refs, a recorded-at range or job ids")
    if recorded_from and recorded_to and recorded_from > recorded_to:
        raise RequestError("the recorded-at range ends before it starts")
    received = now or utcnow()
    request = SubjectRequest(
        tenant_id=tenant_id, type=type, reference=reference,
        subject_ref_hashes=hash_subject_refs(subject_refs or {}, secret),
        recorded_from=recorded_from, recorded_to=recorded_to, job_ids=sorted({str(j) for j in job_ids}),
        received_at=received, due_at=due_at(received),
    )
    session.add(request)
    session.commit()
    return request


def get(*, session: Session, tenant_id: str, request_id: uuid.UUID) -> SubjectRequest | None:
    return session.exec(select(SubjectRequest).where(
        SubjectRequest.id == request_id, SubjectRequest.tenant_id == tenant_id)).one_or_none()


def list_requests(*, session: Session, tenant_id: str, state: Literal["all", "open", "overdue"] = "all",
                  now: datetime | None = None, limit: int = 100) -> list[SubjectRequest]:
    """Newest first; `overdue` are open requests past their (possibly extended) deadline, oldest due first."""
    query = select(SubjectRequest).where(SubjectRequest.tenant_id == tenant_id)
    if state in ("open", "overdue"):
        query = query.where(col(SubjectRequest.status).in_(OPEN_STATUSES))
    if state == "overdue":
        query = query.where(col(SubjectRequest.due_at) < (now or utcnow())).order_by(col(SubjectRequest.due_at))
    else:
        query = query.order_by(col(SubjectRequest.received_at).desc())
    return list(session.exec(query.limit(limit)))


def extend(*, session: Session, request: SubjectRequest, months: int, reason: str,
           now: datetime | None = None) -> SubjectRequest:
    """Record an Art. 12(3) extension; allowed only within the first month, two months at most in all."""
    if not reason.strip():
        raise RequestError("an extension needs its reason recorded")
    moment = now or utcnow()
    try:
        check_extension(received_at=request.received_at, now=moment, already_extended=request.extension_months,
                        months=months)
    except ValueError as exc:
        raise RequestError(str(exc)) from None
    request.extension_months += months
    request.extension_reason = reason.strip()
    request.extended_at = moment
    request.due_at = due_at(request.received_at, request.extension_months)
    session.add(request)
    session.commit()
    return request
