"""Run one image job: claim, anonymize, store the output, finalize. Safe to run twice for one job."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path

from sqlmodel import Session

from shared import job_claims
from shared.errors import DETERMINISTIC, ReasonCode
from shared.job_options import JobOptions
from shared.job_queries import forget_objects
from shared.states import JobStatus
from shared.storage import output_key
from shared.tables import Job
from shared.timeutil import utcnow
from shared.version import software_version
from worker.context import WorkerContext
from worker.engine.errors import EngineError
from worker.engine.image_io import extension, media_type
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions, AnonymizeResult
from worker.lease import LeaseKeeper

log = logging.getLogger("veil.worker")


class Outcome(StrEnum):
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"  # not ours: finished, cancelled, or held by a live lease elsewhere
    lost = "lost"  # we ran it but someone else finalized first; our output was removed
    retry = "retry"  # transient error: back in the queue


@dataclass(frozen=True)
class _Input:
    key: str | None
    options: JobOptions


def engine_options(options: JobOptions) -> AnonymizeOptions:
    return AnonymizeOptions(
        targets=tuple(options.targets),
        mask=MaskStyle(options.mask),
        width_scale=options.padding.width,
        height_scale=options.padding.height,
        score_threshold=options.threshold,
        output_format=options.format,
    )


def run_image_job(ctx: WorkerContext, job_id: uuid.UUID, *,
                  on_claimed: Callable[[uuid.UUID], object] | None = None) -> Outcome:
    """`on_claimed` runs once the claim has committed, e.g. to announce `job.running` before the work."""
    settings = ctx.settings
    claim = job_claims.claim(ctx.engine, job_id, lease_seconds=settings.lease_seconds)
    if claim is None:
        return Outcome.skipped
    if on_claimed is not None:
        on_claimed(job_id)
    job_input = _load_input(ctx, job_id)
    if job_input is None:  # erased between our claim and now: there is nothing left to work on
        return Outcome.lost
    if job_input.key is None or not ctx.storage.exists(job_input.key):
        _fail(ctx, claim, ReasonCode.input_missing, "The uploaded file is no longer stored.")
        return Outcome.failed

    with tempfile.TemporaryDirectory(prefix="veil-job-") as tmp, \
            LeaseKeeper(ctx.engine, claim, lease_seconds=settings.lease_seconds) as lease:
        out_path = Path(tmp) / "output"
        options = engine_options(job_input.options)
        started = time.perf_counter()
        try:
            result = ctx.anonymizer.run(
                ctx.storage.local_path(job_input.key), out_path, options,
                max_pixels=settings.max_image_pixels, jpeg_quality=settings.jpeg_quality,
                keep_metadata=settings.keep_metadata,
            )
        except EngineError as exc:
            if exc.code in DETERMINISTIC:
                _fail(ctx, claim, ReasonCode(exc.code), exc.message)
                return Outcome.failed
            return _give_back(ctx, claim, exc)
        except Exception as exc:  # unknown: maybe transient; the attempt cap ends a job that always fails
            return _give_back(ctx, claim, exc)
        if lease.lost.is_set():
            return Outcome.lost
        key = output_key(str(job_id), claim.token.rsplit(":", 1)[-1], extension(result.output_format))
        output_bytes = out_path.stat().st_size
        ctx.storage.put_file(key, out_path)
        elapsed_ms = (time.perf_counter() - started) * 1000

    won = job_claims.finalize(
        ctx.engine, claim, JobStatus.succeeded,
        output_key=key,
        output_media_type=media_type(result.output_format),
        output_bytes=output_bytes,
        faces_found=sum(1 for label in result.detections.to_list() if label["label"] == "face"),
        detections=result.detections.to_list(),
        manifest=_manifest(ctx, options, result),
        timings={**{k: round(v, 2) for k, v in result.timings_ms.items()}, "total": round(elapsed_ms, 2)},
        progress=1.0,
        input_expires_at=utcnow() + timedelta(hours=settings.keep_originals_hours),
        output_expires_at=(utcnow() + timedelta(days=settings.keep_outputs_days)
                           if settings.keep_outputs_days is not None else None),
        error_code=None,
        error_message=None,
    )
    if not won:
        # Cancelled, erased or taken over while we worked: leave nothing behind.
        ctx.storage.delete(key)
        return Outcome.lost
    if settings.keep_originals_hours == 0:
        _delete_input(ctx, job_id, job_input.key)
    return Outcome.succeeded


def _load_input(ctx: WorkerContext, job_id: uuid.UUID) -> _Input | None:
    with Session(ctx.engine) as session:
        job = session.get(Job, job_id)
        return None if job is None else _Input(key=job.input_key, options=JobOptions.model_validate(job.options))


def _fail(ctx: WorkerContext, claim: job_claims.Claim, code: ReasonCode, message: str) -> None:
    job_claims.finalize(ctx.engine, claim, JobStatus.failed, error_code=code.value, error_message=message,
                        input_expires_at=utcnow() + timedelta(days=ctx.settings.keep_failed_inputs_days))
    log.info("job failed", extra={"job_id": str(claim.job_id), "reason": code.value})


def _give_back(ctx: WorkerContext, claim: job_claims.Claim, exc: BaseException) -> Outcome:
    # The exception text may quote file contents or paths: log its type only.
    log.warning("job attempt failed; requeued", extra={"job_id": str(claim.job_id), "attempt": claim.attempt,
                                                        "error": type(exc).__name__})
    return Outcome.retry if job_claims.release(ctx.engine, claim) else Outcome.lost


def _delete_input(ctx: WorkerContext, job_id: uuid.UUID, key: str) -> None:
    # Data minimisation: the original holds the unmasked faces; once the job is done it has no use.
    ctx.storage.delete(key)
    with Session(ctx.engine) as session:
        forget_objects(session=session, job_id=job_id, input_key=None)


def _manifest(ctx: WorkerContext, options: AnonymizeOptions, result: AnonymizeResult) -> dict[str, object]:
    return {
        **ctx.anonymizer.manifest(options),
        "software_version": software_version(),
        "output_format": result.output_format,
        "jpeg_quality": ctx.settings.jpeg_quality,
        "metadata_kept": "icc_profile" if ctx.settings.keep_metadata else "none",
    }
