"""Steps every kind of job runner shares: load the input, fail, give back, and finish with cleanup."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from sqlmodel import Session

from shared import job_claims
from shared.errors import DETERMINISTIC, ReasonCode
from shared.job_options import JobOptions
from shared.job_queries import forget_objects
from shared.states import JobStatus
from shared.storage import output_key
from shared.tables import Job
from shared.timeutil import utcnow
from worker.context import WorkerContext
from worker.engine.errors import EngineError, ModelUnusable

log = logging.getLogger("veil.worker")


class JobRunner(Protocol):
    def __call__(self, ctx: WorkerContext, job_id: uuid.UUID, *,
                 on_claimed: Callable[[uuid.UUID], object] | None = None) -> Outcome: ...


class Outcome(StrEnum):
    succeeded = "succeeded"
    failed = "failed"
    skipped = "skipped"  # not ours: finished, cancelled, or held by a live lease elsewhere
    lost = "lost"  # we ran it but someone else finalized first; our output was removed
    retry = "retry"  # transient error: back in the queue


@dataclass(frozen=True)
class JobInput:
    key: str | None
    options: JobOptions


def load_input(ctx: WorkerContext, job_id: uuid.UUID) -> JobInput | None:
    """None: the row is gone (erased between our claim and now), so there is nothing to work on."""
    with Session(ctx.engine) as session:
        job = session.get(Job, job_id)
        return None if job is None else JobInput(key=job.input_key, options=JobOptions.model_validate(job.options))


Started = tuple[job_claims.Claim, str, JobOptions]


def start(ctx: WorkerContext, job_id: uuid.UUID, *,
          on_claimed: Callable[[uuid.UUID], object] | None = None) -> Started | Outcome:
    """Claim the job and find its stored input: (claim, input key, options), or the Outcome that ends it here.

    `on_claimed` runs once the claim has committed, e.g. to announce `job.running` before the work."""
    claim = job_claims.claim(ctx.engine, job_id, lease_seconds=ctx.settings.lease_seconds)
    if claim is None:
        return Outcome.skipped
    if on_claimed is not None:
        on_claimed(job_id)
    job_input = load_input(ctx, job_id)
    if job_input is None:  # erased between our claim and now: there is nothing left to work on
        return Outcome.lost
    if job_input.key is None or not ctx.storage.exists(job_input.key):
        fail(ctx, claim, ReasonCode.input_missing, "The uploaded file is no longer stored.")
        return Outcome.failed
    return claim, job_input.key, job_input.options


def fail(ctx: WorkerContext, claim: job_claims.Claim, code: ReasonCode, message: str) -> None:
    job_claims.finalize(ctx.engine, claim, JobStatus.failed, error_code=code.value, error_message=message,
                        input_expires_at=utcnow() + timedelta(days=ctx.settings.keep_failed_inputs_days))
    log.info("job failed", extra={"job_id": str(claim.job_id), "reason": code.value})


def give_back(ctx: WorkerContext, claim: job_claims.Claim, exc: BaseException) -> Outcome:
    # The exception text may quote file contents or paths: log its type only.
    log.warning("job attempt failed; requeued", extra={"job_id": str(claim.job_id), "attempt": claim.attempt,
                                                        "error": type(exc).__name__})
    return Outcome.retry if job_claims.release(ctx.engine, claim) else Outcome.lost


def attempt_failed(ctx: WorkerContext, claim: job_claims.Claim, exc: Exception) -> Outcome:
    """An engine error the input itself causes fails the job now; so does a model this worker cannot use
    (missing, altered or licence refused), which no retry of the job here would mend (the worker records it,
    see WorkerContext.model_unusable);
    anything else may be transient, so the job goes back for another attempt (the attempt cap ends one that
    always fails)."""
    if isinstance(exc, ModelUnusable):
        ctx.model_unusable(exc, str(claim.job_id))
        fail(ctx, claim, ReasonCode(exc.code), exc.message)
        return Outcome.failed
    if isinstance(exc, EngineError) and exc.code in DETERMINISTIC:
        fail(ctx, claim, ReasonCode(exc.code), exc.message)
        return Outcome.failed
    return give_back(ctx, claim, exc)


def store_output(ctx: WorkerContext, claim: job_claims.Claim, path: Path, suffix: str) -> str | Outcome:
    """Upload this attempt's output under a key of its own, so a second delivery never overwrites it: the key,
    or the Outcome when the store is unreachable or refused (another attempt may succeed)."""
    key = output_key(str(claim.job_id), claim.token.rsplit(":", 1)[-1], suffix)
    try:
        ctx.storage.put_file(key, path)
    except Exception as exc:
        return give_back(ctx, claim, exc)
    return key


def finish(ctx: WorkerContext, claim: job_claims.Claim, *, output_key: str, input_key: str | None,
           **values: Any) -> Outcome:
    """Finalize as succeeded with the retention times set; a loser deletes its output, a winner the original."""
    settings, now = ctx.settings, utcnow()
    won = job_claims.finalize(
        ctx.engine, claim, JobStatus.succeeded, output_key=output_key, progress=1.0,
        input_expires_at=now + timedelta(hours=settings.keep_originals_hours),
        output_expires_at=(now + timedelta(days=settings.keep_outputs_days)
                           if settings.keep_outputs_days is not None else None),
        error_code=None, error_message=None, **values,
    )
    if not won:
        # Cancelled, erased or taken over while we worked: leave nothing behind.
        ctx.storage.delete(output_key)
        return Outcome.lost
    if settings.keep_originals_hours == 0 and input_key is not None:
        # Data minimisation: the original holds the unmasked faces; once the job is done it has no use.
        ctx.storage.delete(input_key)
        with Session(ctx.engine) as session:
            forget_objects(session=session, job_id=claim.job_id, input_key=None)
    return Outcome.succeeded
