"""Art. 15 access: gather what Veil holds on a data subject into one zip the tenant can hand over.

The archive holds each matched job's record (`jobs.json`) and its stored anonymized output (`media/`). The
originals are never included: they show everyone else in the picture unmasked. Safe to run twice: the claim
is a compare-and-set, the archive lands atomically under one key, and only the claim's holder completes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import uuid
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from shared.gdpr.matching import matching_job_ids
from shared.gdpr.receipt import RECEIPT_VERSION, receipt_sha256
from shared.settings import Settings
from shared.storage import Storage
from shared.tables import Job, SubjectRequest
from shared.timeutil import utcnow
from shared.version import software_version
from worker.context import WorkerContext

log = logging.getLogger("veil.gdpr")

README = """\
Data-subject access archive (GDPR Art. 15), made by Veil for request {request_id} on {generated_at}.

jobs.json  every image job that matched the request: when it was uploaded and recorded, its status, the
           options it ran with, the manifest (models, software version, mask), the face boxes detected,
           timings, error code, and until when its files are kept.
media/     the anonymized result of each matched job that is still stored, named <job id>.<extension>.

The original uploads are not included, and never will be: they show other people (passers-by, other road
users) unmasked, and handing them over would disclose their personal data. Where an original is still held,
jobs.json says so (input_retained) and until when (input_expires_at).

The subject's identifiers are not in this archive: Veil keeps them only as keyed hashes, which identify no one.
This archive is deleted from Veil on {expires_at}.
"""


class AccessOutcome(StrEnum):
    completed = "completed"
    skipped = "skipped"  # not ours: done, taken by a live attempt, not an access request, or gone
    failed = "failed"  # attempts used up


@dataclass(frozen=True)
class _Matched:
    request: SubjectRequest
    records: list[dict[str, Any]]
    outputs: list[tuple[uuid.UUID, str]]


def archive_key(request_id: uuid.UUID) -> str:
    return f"access/{request_id}/archive.zip"


def _stale_before(settings: Settings, now: datetime) -> datetime:
    # Celery kills a task at its time limit; an attempt older than that (and a margin) died without finishing.
    return now - timedelta(seconds=settings.task_time_limit_seconds + settings.lease_seconds)


def _takeable(request_id: uuid.UUID, settings: Settings, now: datetime) -> ColumnElement[bool]:
    return and_(col(SubjectRequest.id) == request_id, col(SubjectRequest.type) == "access", or_(
        col(SubjectRequest.status) == "received",
        and_(col(SubjectRequest.status) == "in_progress",
             col(SubjectRequest.started_at) < _stale_before(settings, now))))


def claim(engine: Engine, settings: Settings, request_id: uuid.UUID) -> datetime | None:
    """received -> in_progress (or take over a dead attempt). Returns the claim's start time, the token."""
    now = utcnow()
    with engine.begin() as conn:
        taken = conn.execute(update(SubjectRequest).where(
            _takeable(request_id, settings, now), col(SubjectRequest.attempts) < settings.max_attempts,
        ).values(status="in_progress", started_at=now, attempts=SubjectRequest.attempts + 1)).rowcount
        if taken == 1:
            return now
        conn.execute(update(SubjectRequest).where(
            _takeable(request_id, settings, now), col(SubjectRequest.attempts) >= settings.max_attempts,
        ).values(status="failed", error_code="attempts_exhausted"))
    return None


def republishable(engine: Engine, settings: Settings, depth: int | None, limit: int = 500) -> list[uuid.UUID]:
    """Access requests whose message may be lost (still `received` a while after receipt) or whose attempt
    died (`in_progress` past the time limit). As with jobs, when the broker holds at least as many messages
    as there are suspects, none was lost."""
    now = utcnow()
    waiting = now - timedelta(seconds=settings.queued_republish_seconds)
    with Session(engine) as session:
        due = list(session.exec(select(SubjectRequest.id).where(
            col(SubjectRequest.type) == "access",
            or_(and_(col(SubjectRequest.status) == "received", col(SubjectRequest.received_at) < waiting),
                and_(col(SubjectRequest.status) == "in_progress",
                     col(SubjectRequest.started_at) < _stale_before(settings, now))),
        ).order_by(col(SubjectRequest.received_at)).limit(limit)))
    return due[:max(0, len(due) - depth)] if depth is not None else due


def build_access_archive(ctx: WorkerContext, request_id: uuid.UUID) -> AccessOutcome:
    started = claim(ctx.engine, ctx.settings, request_id)
    if started is None:
        with Session(ctx.engine) as session:
            request = session.get(SubjectRequest, request_id)
            failed = request is not None and request.status == "failed" and request.type == "access"
        return AccessOutcome.failed if failed else AccessOutcome.skipped
    matched = _match(ctx.engine, request_id)
    expires = utcnow() + timedelta(days=ctx.settings.keep_access_archives_days)
    key = archive_key(request_id)
    with tempfile.TemporaryDirectory(prefix="veil-access-") as tmp:
        path = Path(tmp) / "archive.zip"
        media = _write_zip(path, ctx.storage, request_id, matched, expires)
        size, digest = path.stat().st_size, _sha256_file(path)
        ctx.storage.put_file(key, path)  # atomic: a reader never sees half an archive
    now = utcnow()
    result = {"jobs_matched": len(matched.records), "media_files": media,
              "outputs_not_stored": len(matched.records) - media, "archive_bytes": size}
    receipt = _receipt(matched.request, started, now, result, digest, expires)
    with ctx.engine.begin() as conn:
        won = conn.execute(update(SubjectRequest).where(
            col(SubjectRequest.id) == request_id, col(SubjectRequest.status) == "in_progress",
            col(SubjectRequest.started_at) == started,
        ).values(status="completed", completed_at=now, archive_key=key, archive_expires_at=expires,
                 matched_job_ids=[r["id"] for r in matched.records], result=result, receipt=receipt,
                 receipt_sha256=receipt_sha256(receipt), error_code=None)).rowcount == 1
    if not won:
        # A later attempt took over and writes the same key; its archive stands, so leave the object alone.
        return AccessOutcome.skipped
    log.info("access archive built", extra={"request_id": str(request_id), "jobs": len(matched.records),
                                            "media_files": media})
    return AccessOutcome.completed


def _receipt(request: SubjectRequest, started: datetime, now: datetime, result: dict[str, int], archive_sha256: str,
             expires: datetime) -> dict[str, Any]:
    """What was provided and when, as erasure receipts say it: counts and times, no personal data."""
    return {
        "receipt_version": RECEIPT_VERSION, "type": "access", "request_id": str(request.id),
        "tenant_id": request.tenant_id, "received_at": _iso(request.received_at), "started_at": _iso(started),
        "completed_at": _iso(now), "due_at": _iso(request.due_at), "extension_months": request.extension_months,
        "deadline_met": now <= request.due_at, **result, "archive_sha256": archive_sha256,
        "archive_expires_at": _iso(expires), "originals_included": False, "software_version": software_version(),
    }


def _match(engine: Engine, request_id: uuid.UUID) -> _Matched:
    with Session(engine) as session:
        request = session.get(SubjectRequest, request_id)
        assert request is not None  # we hold its claim; requests are never deleted
        ids = matching_job_ids(session=session, request=request)
        jobs = session.exec(select(Job).where(col(Job.tenant_id) == request.tenant_id, col(Job.id).in_(ids))
                            .order_by(col(Job.created_at), col(Job.id))).all() if ids else []
        return _Matched(request=request, records=[job_record(j) for j in jobs],
                        outputs=[(j.id, j.output_key) for j in jobs if j.output_key is not None])


def job_record(job: Job) -> dict[str, Any]:
    """What the archive says of a job: its record and metadata, never the subject hashes or storage keys."""
    return {
        "id": str(job.id), "kind": job.kind, "status": job.status,
        "created_at": _iso(job.created_at), "recorded_at": _iso(job.recorded_at),
        "started_at": _iso(job.started_at), "finished_at": _iso(job.finished_at),
        "options": job.options, "manifest": job.manifest, "detections": job.detections, "timings_ms": job.timings,
        "faces_found": job.faces_found, "plates_found": job.plates_found,
        "error_code": job.error_code,
        "input_media_type": job.input_media_type, "input_bytes": job.input_bytes,
        "input_retained": job.input_key is not None,
        "input_expires_at": _iso(job.input_expires_at) if job.input_key is not None else None,
        "output_media_type": job.output_media_type,
        "output_expires_at": _iso(job.output_expires_at) if job.output_key is not None else None,
        "media_file": None,
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _write_zip(path: Path, storage: Storage, request_id: uuid.UUID, matched: _Matched, expires: datetime) -> int:
    by_id = {r["id"]: r for r in matched.records}
    media = 0
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for job_id, key in matched.outputs:
            name = f"media/{job_id}.{key.rsplit('.', 1)[-1]}"
            try:
                with storage.open(key) as source, archive.open(
                        zipfile.ZipInfo(name, date_time=utcnow().timetuple()[:6]), "w") as target:
                    shutil.copyfileobj(source, target)
            except FileNotFoundError:  # deleted by retention or the tenant since we read the row
                continue
            by_id[str(job_id)]["media_file"] = name
            media += 1
        generated = utcnow().isoformat(timespec="seconds")
        archive.writestr("jobs.json", json.dumps({"request_id": str(request_id), "generated_at": generated,
                                                  "jobs": matched.records}, indent=2, ensure_ascii=False))
        archive.writestr("README.txt", README.format(request_id=request_id, generated_at=generated,
                                                     expires_at=expires.isoformat(timespec="seconds")))
    return media


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(1024 * 1024):
            digest.update(chunk)
    return digest.hexdigest()
