"""Response bodies. Internal columns (lease, storage keys, subject hashes) never leave the service."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from shared.states import JobStatus
from shared.tables import Job


class JobError(BaseModel):
    code: str
    message: str | None


class JobLinks(BaseModel):
    self: str
    result: str
    detections: str


class VideoProgress(BaseModel):
    """Where a video job stands: updated a few times a second while it runs; final once it succeeded."""

    frames_done: int
    frames_total: int
    fps: float | None
    eta_seconds: float | None


# The key inside the job's timings under which the video worker keeps its progress (see worker/video_job.py).
VIDEO_PROGRESS_KEY = "video_progress"


class JobOut(BaseModel):
    id: uuid.UUID
    status: JobStatus
    kind: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    progress: float
    faces_found: int | None
    plates_found: int | None
    options: dict[str, Any]
    input_media_type: str | None
    input_bytes: int | None
    input_retained: bool
    input_expires_at: datetime | None
    output_expires_at: datetime | None
    recorded_at: datetime | None
    output_media_type: str | None
    timings_ms: dict[str, Any] | None
    video: VideoProgress | None = None
    manifest: dict[str, Any] | None
    error: JobError | None
    links: JobLinks

    @classmethod
    def of(cls, job: Job) -> JobOut:
        base = f"/v1/jobs/{job.id}"
        timings = dict(job.timings or {})
        progress = timings.pop(VIDEO_PROGRESS_KEY, None)
        return cls(
            id=job.id, status=JobStatus(job.status), kind=job.kind, created_at=job.created_at,
            updated_at=job.updated_at, started_at=job.started_at, finished_at=job.finished_at,
            attempts=job.attempts, progress=job.progress, faces_found=job.faces_found,
            plates_found=job.plates_found, options=job.options,
            input_media_type=job.input_media_type, input_bytes=job.input_bytes,
            input_retained=job.input_key is not None,
            input_expires_at=job.input_expires_at if job.input_key is not None else None,
            output_expires_at=job.output_expires_at if job.output_key is not None else None,
            recorded_at=job.recorded_at,
            output_media_type=job.output_media_type, timings_ms=timings or None,
            video=VideoProgress.model_validate(progress) if isinstance(progress, dict) else None,
            manifest=job.manifest,
            error=JobError(code=job.error_code, message=job.error_message) if job.error_code else None,
            links=JobLinks(self=base, result=f"{base}/result", detections=f"{base}/detections"),
        )


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class Detection(BaseModel):
    label: str
    score: float
    box: list[float]


class DetectionsOut(BaseModel):
    job_id: uuid.UUID
    status: JobStatus
    detections: list[Detection]


class Health(BaseModel):
    status: str
    checks: dict[str, str] = {}


class ProblemOut(BaseModel):
    """RFC 9457 problem details, as every error is returned."""

    type: str
    title: str
    status: int
    code: str
    instance: str | None = None
    detail: str | None = None


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for error statuses, so clients (and schema fuzzers) know errors are problem+json."""
    schema = ProblemOut.model_json_schema()
    return {status: {"description": _PROBLEM_DESCRIPTIONS.get(status, "Error"),
                     "content": {"application/problem+json": {"schema": schema}}} for status in statuses}


_PROBLEM_DESCRIPTIONS = {
    400: "Bad request", 401: "No valid API key", 403: "The key lacks a scope", 404: "No such resource",
    409: "Conflict", 413: "Too large", 415: "Unsupported media type", 422: "Invalid input",
    429: "Too many requests", 503: "A dependency is unavailable",
}
