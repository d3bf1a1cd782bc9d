"""Run one image job: claim, anonymize, store the output, finalize. Safe to run twice for one job."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from shared import job_claims
from shared.errors import DETERMINISTIC, ReasonCode
from shared.job_options import JobOptions
from shared.storage import output_key
from shared.version import software_version
from worker.context import WorkerContext
from worker.engine.errors import EngineError
from worker.engine.image_io import extension, media_type
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions, AnonymizeResult
from worker.job_steps import Outcome, fail, finish, give_back, load_input
from worker.lease import LeaseKeeper

log = logging.getLogger("veil.worker")


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
    job_input = load_input(ctx, job_id)
    if job_input is None:  # erased between our claim and now: there is nothing left to work on
        return Outcome.lost
    if job_input.key is None or not ctx.storage.exists(job_input.key):
        fail(ctx, claim, ReasonCode.input_missing, "The uploaded file is no longer stored.")
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
                fail(ctx, claim, ReasonCode(exc.code), exc.message)
                return Outcome.failed
            return give_back(ctx, claim, exc)
        except Exception as exc:  # unknown: maybe transient; the attempt cap ends a job that always fails
            return give_back(ctx, claim, exc)
        if lease.lost.is_set():
            return Outcome.lost
        key = output_key(str(job_id), claim.token.rsplit(":", 1)[-1], extension(result.output_format))
        output_bytes = out_path.stat().st_size
        ctx.storage.put_file(key, out_path)
        elapsed_ms = (time.perf_counter() - started) * 1000

    return finish(
        ctx, claim, output_key=key, input_key=job_input.key,
        output_media_type=media_type(result.output_format),
        output_bytes=output_bytes,
        faces_found=sum(1 for label in result.detections.to_list() if label["label"] == "face"),
        detections=result.detections.to_list(),
        manifest=_manifest(ctx, options, result),
        timings={**{k: round(v, 2) for k, v in result.timings_ms.items()}, "total": round(elapsed_ms, 2)},
    )


def _manifest(ctx: WorkerContext, options: AnonymizeOptions, result: AnonymizeResult) -> dict[str, object]:
    return {
        **ctx.anonymizer.manifest(options),
        "software_version": software_version(),
        "output_format": result.output_format,
        "jpeg_quality": ctx.settings.jpeg_quality,
        "metadata_kept": "icc_profile" if ctx.settings.keep_metadata else "none",
    }
