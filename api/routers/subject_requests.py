"""/v1/subject-requests: GDPR erasure (Art. 17) and access (Art. 15) requests, their deadlines and their proof.

The subject's identifiers arrive here once, are hashed under the subject key, and are never returned or logged.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import FileResponse

from api.auth import require
from api.deps import PublisherDep, SessionDep, SettingsDep, StorageDep
from api.object_download import object_response
from api.problems import Problem
from api.schemas import problem_responses
from api.subject_request_schemas import (
    ExtensionIn,
    ReceiptOut,
    SubjectRequestIn,
    SubjectRequestList,
    SubjectRequestOut,
)
from shared import audit
from shared.api_keys import Principal
from shared.gdpr import requests
from shared.gdpr.intake import receive
from shared.gdpr.requests import OPEN_STATUSES, RequestError
from shared.scopes import Scope
from shared.tables import SubjectRequest
from shared.timeutil import utcnow

SubjectRequests = Annotated[Principal, Depends(require(Scope.subject_requests))]

router = APIRouter(prefix="/v1/subject-requests", tags=["subject requests"],
                   responses=problem_responses(401, 403, 404, 422, 429, 503))


def _request_or_404(session: SessionDep, tenant: str, request_id: uuid.UUID) -> SubjectRequest:
    request = requests.get(session=session, tenant_id=tenant, request_id=request_id)
    if request is None:
        raise Problem(404, "subject_request_not_found", "No such subject request.")
    return request


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 with an offset that leaves the calendar
        raise Problem(422, "invalid_subject", "recorded_from and recorded_to must be real UTC times.") from None


@router.post("", status_code=202, response_model=SubjectRequestOut)
def create_subject_request(body: SubjectRequestIn, response: Response, session: SessionDep,
                           settings: SettingsDep, publisher: PublisherDep,
                           principal: SubjectRequests) -> SubjectRequestOut:
    """Receive a request: due one calendar month from now; the work starts at once."""
    subject = body.subject
    try:
        request = receive(session=session, doorbell=publisher, secret=settings.subject_key,
                          tenant_id=principal.tenant_id, key_id=principal.key_id, type=body.type,
                          subject_refs=subject.refs(), recorded_from=_utc(subject.recorded_from),
                          recorded_to=_utc(subject.recorded_to), job_ids=subject.job_ids or (),
                          reference=body.reference)
    except RequestError as exc:
        raise Problem(422, "invalid_subject", str(exc)) from None
    response.headers["Location"] = f"{(settings.public_url or '').rstrip('/')}/v1/subject-requests/{request.id}"
    return SubjectRequestOut.of(request)


@router.get("", response_model=SubjectRequestList)
def list_subject_requests(
    session: SessionDep, principal: SubjectRequests,
    state: Annotated[Literal["open", "overdue", "all"], Query(
        description="open: not yet completed; overdue: open and past the (extended) deadline, oldest due first.")
    ] = "all",
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> SubjectRequestList:
    found = requests.list_requests(session=session, tenant_id=principal.tenant_id, state=state, limit=limit)
    return SubjectRequestList(items=[SubjectRequestOut.of(r) for r in found])


@router.get("/{request_id}", response_model=SubjectRequestOut)
def get_subject_request(request_id: uuid.UUID, session: SessionDep,
                        principal: SubjectRequests) -> SubjectRequestOut:
    return SubjectRequestOut.of(_request_or_404(session, principal.tenant_id, request_id))


@router.post("/{request_id}/extend", response_model=SubjectRequestOut, responses=problem_responses(409))
def extend_subject_request(request_id: uuid.UUID, body: ExtensionIn, session: SessionDep,
                           principal: SubjectRequests) -> SubjectRequestOut:
    """Art. 12(3): extend by one or two months, recorded with its reason within the first month."""
    request = _request_or_404(session, principal.tenant_id, request_id)
    if request.status not in OPEN_STATUSES:
        raise Problem(409, "extension_refused", "The request is no longer open.",
                      rule="only an open request can be extended")
    try:
        request = requests.extend(session=session, request=request, months=body.months, reason=body.reason)
    except RequestError as exc:
        raise Problem(409, "extension_refused", "The deadline cannot be extended.", rule=str(exc)) from None
    audit.record(session=session, tenant_id=principal.tenant_id, key_id=principal.key_id,
                 action="subject_request.extend", resource_type="subject_request", resource_id=str(request.id))
    return SubjectRequestOut.of(request)


@router.get("/{request_id}/receipt", response_model=ReceiptOut, responses=problem_responses(409))
def get_receipt(request_id: uuid.UUID, session: SessionDep, principal: SubjectRequests) -> ReceiptOut:
    """The proof of what was done, and its SHA-256 (of the receipt as canonical JSON) to keep beside it."""
    request = _request_or_404(session, principal.tenant_id, request_id)
    if request.status != "completed" or request.receipt is None or request.receipt_sha256 is None:
        raise Problem(409, "receipt_not_ready", "The request is not completed yet.", request_status=request.status)
    return ReceiptOut(receipt=request.receipt, sha256=request.receipt_sha256)


@router.get("/{request_id}/archive", response_class=FileResponse,
            responses={200: {"content": {"application/zip": {}}, "description": "The access archive"},
                       **problem_responses(409, 410)})
def get_archive(request_id: uuid.UUID, session: SessionDep, storage: StorageDep,
                principal: SubjectRequests) -> Response:
    """An access request's archive: the subject's job records and anonymized outputs, never the originals."""
    request = _request_or_404(session, principal.tenant_id, request_id)
    if request.type != "access":
        raise Problem(404, "archive_not_found", "Only access requests have an archive.")
    if request.status != "completed":
        raise Problem(409, "archive_not_ready", "The archive is not ready yet.", request_status=request.status)
    expired = Problem(410, "archive_expired", "The archive was deleted: its retention time ended, or it was erased.",
                      expires_at=request.archive_expires_at.isoformat() if request.archive_expires_at else None)
    if request.archive_key is None or (request.archive_expires_at and request.archive_expires_at <= utcnow()):
        raise expired
    try:
        response = object_response(storage, request.archive_key, media_type="application/zip",
                                   filename=f"access-{request.id}.zip")
    except FileNotFoundError:
        raise expired from None
    audit.record(session=session, tenant_id=principal.tenant_id, key_id=principal.key_id,
                 action="subject_request.archive.download", resource_type="subject_request",
                 resource_id=str(request.id))
    return response
