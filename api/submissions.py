"""Accepting an upload as a job: validate, store, commit the row, then publish. A plain function."""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from pydantic import ValidationError
from sqlmodel import Session

from api.problems import Problem
from shared import audit, job_queries
from shared.api_keys import Principal
from shared.callback_urls import UnsafeCallbackUrl, check_callback_url
from shared.errors import ReasonCode
from shared.job_options import JobOptions
from shared.queues import KIND_TASKS
from shared.settings import Settings
from shared.storage import CHUNK, ObjectTooLarge, Storage, input_key
from shared.subjects import hash_subject_refs
from shared.tables import Job, Tenant
from shared.tenant_limits import active_jobs, limits_for, storage_used
from shared.timeutil import utcnow
from worker.engine.errors import EngineError
from worker.engine.image_io import media_type, sniff_image_format
from worker.engine.video import probe_video, sniff_video_format
from worker.publisher import Publisher
from worker.video_job import VIDEO_MEDIA_TYPES, video_limits

log = logging.getLogger("veil.api")
MAX_SUBJECT_REFS = 20
SNIFF_BYTES = 4096


@dataclass(frozen=True)
class _Kind:
    kind: str
    media_type: str
    max_bytes: int


def _sniff(head: bytes, *, image_limit: int, video_limit: int) -> _Kind:
    """Images first, then videos, by content; the name or declared type of the upload is never trusted."""
    image_format = sniff_image_format(head)
    if image_format is not None:
        return _Kind("image", media_type(image_format), image_limit)
    container = sniff_video_format(head)
    if container is not None and container in VIDEO_MEDIA_TYPES:
        return _Kind("video", VIDEO_MEDIA_TYPES[container], video_limit)
    raise Problem(415, "unsupported_media_type",
                  "The file is not an image or video Veil can read (JPEG, PNG, WebP, MP4, MOV, MKV or AVI, "
                  "judged by content).")


def _video_limit(tenant: Tenant, settings: Settings) -> int:
    # A tenant's own upload cap, when it has one, bounds videos too: it may be allowed less, never more.
    limit = settings.max_video_upload_bytes
    return limit if tenant.max_upload_bytes is None else min(limit, tenant.max_upload_bytes)


@dataclass(frozen=True)
class Submission:
    job: Job
    created: bool


def parse_options(raw: str | None) -> JobOptions:
    if raw is None or raw.strip() == "":
        return JobOptions()
    try:
        return JobOptions.model_validate_json(raw)
    except ValidationError as exc:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Problem(422, "invalid_options", "The options are not valid.", errors=errors) from None


def parse_subject_refs(raw: str | None) -> dict[str, str]:
    if raw is None or raw.strip() == "":
        return {}
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        raise Problem(422, "invalid_subject_refs", "subject_refs must be a JSON object.") from None
    if (not isinstance(value, dict) or len(value) > MAX_SUBJECT_REFS
            or not all(isinstance(k, str) and k.strip() and _is_identifier_value(v) for k, v in value.items())):
        raise Problem(422, "invalid_subject_refs",
                      f"subject_refs must be a JSON object of at most {MAX_SUBJECT_REFS} "
                      "names to non-empty strings or numbers.")
    return {k: str(v).strip() for k, v in value.items()}


def parse_recorded_at(raw: str | None) -> datetime | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        raise Problem(422, "invalid_recorded_at", "recorded_at must be an ISO 8601 date and time.") from None
    if moment.tzinfo is None:
        raise Problem(422, "invalid_recorded_at", "recorded_at needs a UTC offset, e.g. 2026-03-03T08:15:00+01:00.")
    return moment


def parse_callback_url(raw: str | None, settings: Settings) -> str | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        return check_callback_url(raw.strip(), allow_private=settings.webhook_allow_private)
    except UnsafeCallbackUrl as exc:
        raise Problem(422, "invalid_callback_url", str(exc)) from None


def _is_identifier_value(value: object) -> bool:
    # bool is an int to Python, but `true` is no identifier; blank strings would all hash alike.
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return False
    return 0 < len(str(value).strip()) <= 256


def submit(*, session: Session, storage: Storage, publisher: Publisher, settings: Settings, principal: Principal,
           upload: BinaryIO, options: JobOptions, subject_refs: dict[str, str],
           idempotency_key: str | None, callback_url: str | None = None,
           recorded_at: datetime | None = None) -> Submission:
    tenant_id = principal.tenant_id
    if idempotency_key is not None:
        replay = job_queries.get_by_idempotency_key(session=session, tenant_id=tenant_id, key=idempotency_key)
        if replay is not None:
            # A retried request must not be refused by limits its first try already passed.
            return _replay(replay, upload, options)
    tenant = session.get(Tenant, tenant_id)
    assert tenant is not None  # the principal's tenant exists: authentication checked it
    limits = limits_for(tenant, settings)
    busy = limits.max_active_jobs is not None and active_jobs(session=session, tenant_id=tenant_id)
    if limits.max_active_jobs is not None and busy >= limits.max_active_jobs:
        raise Problem(429, "too_many_active_jobs",
                      f"At most {limits.max_active_jobs} jobs may be queued or running at once.",
                      headers={"Retry-After": "5"})
    kind = _sniff(upload.read(SNIFF_BYTES), image_limit=limits.max_upload_bytes,
                  video_limit=_video_limit(tenant, settings))
    upload.seek(0)

    job_id = uuid.uuid4()
    key = input_key(str(job_id))
    try:
        stored = storage.put_stream(key, upload, max_bytes=kind.max_bytes)
    except ObjectTooLarge:
        raise Problem(413, "payload_too_large", "The upload is too large.", limit_bytes=kind.max_bytes,
                      kind=kind.kind) from None
    if stored.size == 0:
        storage.delete(key)
        raise Problem(415, "unsupported_media_type", "The file is empty.")
    if kind.kind == "video":
        _check_video(storage, key, settings)
    if limits.storage_quota_bytes is not None and (
            storage_used(session=session, tenant_id=tenant_id) + stored.size > limits.storage_quota_bytes):
        storage.delete(key)
        raise Problem(413, "storage_quota_exceeded", "The tenant's storage quota would be exceeded.",
                      quota_bytes=limits.storage_quota_bytes)

    options_json = options.model_dump(mode="json")
    job = Job(id=job_id, tenant_id=tenant_id, kind=kind.kind, idempotency_key=idempotency_key,
              input_key=key, input_media_type=kind.media_type, input_bytes=stored.size,
              input_sha256=stored.sha256, options=options_json, max_attempts=settings.max_attempts,
              subject_ref_hashes=hash_subject_refs(subject_refs, settings.subject_key),
              callback_url=callback_url, recorded_at=recorded_at, last_published_at=utcnow())
    try:
        job, created = job_queries.insert(session=session, job=job)
    except BaseException:
        storage.delete(key)
        raise
    if not created:  # lost a race with the same key: the other request's job stands
        storage.delete(key)
        if job.input_sha256 != stored.sha256 or job.options != options_json:
            raise _key_reused()
        return Submission(job=job, created=False)
    audit.record(session=session, tenant_id=tenant_id, key_id=principal.key_id, action="job.create",
                 resource_type="job", resource_id=str(job.id))

    # Only now that the row is committed: a message for a row that does not exist would be worse
    # than a row without a message, which the sweeper republishes.
    publisher.publish(KIND_TASKS[job.kind], [job.id])
    log.info("job accepted", extra={"job_id": str(job.id), "kind": job.kind, "bytes": stored.size})
    return Submission(job=job, created=True)


def _check_video(storage: Storage, key: str, settings: Settings) -> None:
    """Read the header and first frame now, so a file that is no readable video, or one over the duration or
    resolution limits, is refused at upload rather than queued. Decoding all of it is the worker's."""
    try:
        with storage.local_file(key) as path:
            probe_video(path, video_limits(settings))
    except EngineError as exc:
        storage.delete(key)
        if exc.code in (ReasonCode.video_too_long, ReasonCode.video_too_large):
            raise Problem(422, exc.code, "The video is over the service's limits.", detail=exc.message,
                          max_duration_s=settings.max_video_duration_s,
                          max_width=settings.max_video_width, max_height=settings.max_video_height) from None
        # Not a readable video (no video stream, no frames, a broken container): the same refusal as any
        # file Veil cannot read, with the specific reason beside it.
        raise Problem(415, "unsupported_media_type", "The file is not a video Veil can read.",
                      detail=exc.message, reason=exc.code) from None
    except BaseException:
        storage.delete(key)
        raise


def _replay(job: Job, upload: BinaryIO, options: JobOptions) -> Submission:
    digest = hashlib.sha256()
    while chunk := upload.read(CHUNK):
        digest.update(chunk)
    if job.input_sha256 != digest.hexdigest() or job.options != options.model_dump(mode="json"):
        raise _key_reused()
    return Submission(job=job, created=False)


def _key_reused() -> Problem:
    return Problem(409, "idempotency_key_reused", "This Idempotency-Key was already used for a different request.")
