"""/v1/jobs: submit, read, list, fetch results, cancel. Routes fetch, check and delegate."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from api.auth import ReadJobs, WriteJobs
from api.body_limit import BodyTooLarge
from api.deps import PublisherDep, SessionDep, SettingsDep, StorageDep
from api.object_download import object_response
from api.problems import Problem
from api.schemas import DetectionsOut, JobOut, JobPage, problem_responses
from api.submissions import (
    MAX_SUBJECT_REFS,
    parse_callback_url,
    parse_options,
    parse_recorded_at,
    parse_subject_refs,
    submit,
)
from api.upload_schema import upload_openapi
from shared import audit, job_queries
from shared.queues import TaskName
from shared.states import JobStatus
from shared.tables import Job
from shared.webhook_outbox import due_for_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=problem_responses(401, 403, 404, 422, 429, 503))

_UPLOAD_SCHEMA = upload_openapi(MAX_SUBJECT_REFS)


def _job_or_404(session: SessionDep, tenant: str, job_id: uuid.UUID) -> Job:
    job = job_queries.get(session=session, tenant_id=tenant, job_id=job_id)
    if job is None:
        raise Problem(404, "job_not_found", "No such job.")
    return job


@router.post("", status_code=202, response_model=JobOut, openapi_extra=_UPLOAD_SCHEMA,
             responses={200: {"model": JobOut, "description": "Replay: the job this Idempotency-Key made before"},
                        **problem_responses(400, 409, 413, 415)})
async def create_job(
    request: Request, response: Response, session: SessionDep, storage: StorageDep, publisher: PublisherDep,
    settings: SettingsDep, principal: WriteJobs,
    idempotency_key: Annotated[str | None, Header(max_length=255)] = None,
) -> JobOut:
    try:
        form = await request.form(max_files=1, max_fields=8)
    except BodyTooLarge:
        raise Problem(413, "payload_too_large", "The upload is too large.",
                      limit_bytes=max(settings.max_upload_bytes, settings.max_video_upload_bytes)) from None
    except Exception:  # malformed multipart bodies come in many shapes; all are the client's
        raise Problem(400, "malformed_multipart", "The request body is not valid multipart/form-data.") from None
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Problem(422, "file_missing", "Send the image or video as a multipart field named 'file'.")
        options = parse_options(_text(form.get("options")))
        refs = parse_subject_refs(_text(form.get("subject_refs")))
        callback = parse_callback_url(_text(form.get("callback_url")), settings)
        recorded_at = parse_recorded_at(_text(form.get("recorded_at")))
        result = await run_in_threadpool(
            submit, session=session, storage=storage, publisher=publisher, settings=settings,
            principal=principal, upload=upload.file, options=options, subject_refs=refs,
            idempotency_key=idempotency_key, callback_url=callback, recorded_at=recorded_at,
        )
    finally:
        await form.close()
    response.headers["Location"] = f"{(settings.public_url or '').rstrip('/')}/v1/jobs/{result.job.id}"
    if not result.created:
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
    return JobOut.of(result.job)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise Problem(422, "invalid_field", "options and subject_refs must be text fields, not files.")


@router.get("", response_model=JobPage, responses=problem_responses(400))
def list_jobs(
    session: SessionDep, principal: ReadJobs,
    status: JobStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> JobPage:
    try:
        page = job_queries.list_page(session=session, tenant_id=principal.tenant_id, status=status, limit=limit,
                                     cursor=cursor)
    except ValueError:
        raise Problem(400, "invalid_cursor", "The cursor is not one this API issued.") from None
    return JobPage(items=[JobOut.of(j) for j in page.items], next_cursor=page.next_cursor)


@router.get("/{job_id}", response_model=JobOut)
def get_job(job_id: uuid.UUID, session: SessionDep, principal: ReadJobs) -> JobOut:
    return JobOut.of(_job_or_404(session, principal.tenant_id, job_id))


@router.get("/{job_id}/result", response_class=FileResponse,
            responses={200: {"content": {"image/jpeg": {}, "image/png": {}, "image/webp": {}, "video/mp4": {},
                                         "video/quicktime": {}, "video/x-matroska": {}, "video/x-msvideo": {}}},
                       **problem_responses(409)})
def get_result(job_id: uuid.UUID, session: SessionDep, storage: StorageDep, principal: ReadJobs) -> Response:
    job = _job_or_404(session, principal.tenant_id, job_id)
    if job.status != JobStatus.succeeded.value or job.output_key is None:
        raise Problem(409, "result_not_ready", "The job has no result to download.", job_status=job.status)
    extension = job.output_key.rsplit(".", 1)[-1]
    try:
        response = object_response(storage, job.output_key, filename=f"{job.id}.{extension}",
                                   media_type=job.output_media_type or "application/octet-stream")
    except FileNotFoundError:
        raise Problem(409, "result_not_ready", "The job has no result to download.", job_status=job.status) from None
    audit.record(session=session, tenant_id=principal.tenant_id, key_id=principal.key_id,
                 action="job.result.download", resource_type="job", resource_id=str(job.id))
    return response


@router.get("/{job_id}/detections", response_model=DetectionsOut)
def get_detections(job_id: uuid.UUID, session: SessionDep, principal: ReadJobs) -> DetectionsOut:
    job = _job_or_404(session, principal.tenant_id, job_id)
    return DetectionsOut.model_validate(
        {"job_id": job.id, "status": job.status, "detections": job.detections or []})


@router.delete("/{job_id}", status_code=204, response_class=Response)
def delete_job(job_id: uuid.UUID, session: SessionDep, storage: StorageDep, publisher: PublisherDep,
               principal: WriteJobs) -> Response:
    """Cancel the job if it is queued or running, and delete its input and output."""
    job = _job_or_404(session, principal.tenant_id, job_id)
    if job_queries.cancel(session=session, tenant_id=principal.tenant_id, job_id=job.id):
        # Committed: now ring for the `job.cancelled` webhook (the sweeper rings again if this is lost).
        publisher.publish(TaskName.deliver_webhook, due_for_job(session, job.id))
    session.refresh(job)
    for key in (job.input_key, job.output_key):
        if key is not None:
            storage.delete(key)
    job_queries.forget_objects(session=session, job_id=job.id, input_key=None, output_key=None)
    audit.record(session=session, tenant_id=principal.tenant_id, key_id=principal.key_id, action="job.delete",
                 resource_type="job", resource_id=str(job.id))
    return Response(status_code=204)
