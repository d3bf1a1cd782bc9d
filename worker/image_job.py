"""Run one image job: claim, anonymize, store the output, finalize. Safe to run twice for one job."""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from shared.job_options import JobOptions
from shared.version import software_version
from worker.context import WorkerContext
from worker.engine.image_io import extension, media_type
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions, AnonymizeResult
from worker.job_steps import Outcome, attempt_failed, finish, start, store_output
from worker.lease import LeaseKeeper

log = logging.getLogger("veil.worker")


def engine_options(options: JobOptions) -> AnonymizeOptions:
    return AnonymizeOptions(
        targets=tuple(options.targets),
        preset=options.preset,
        mask=MaskStyle(options.mask),
        padding_by_target={t: options.padding_for(t) for t in options.targets},
        threshold_by_target={t: options.threshold_for(t) for t in options.targets},
        output_format=options.format,
    )


def run_image_job(ctx: WorkerContext, job_id: uuid.UUID, *,
                  on_claimed: Callable[[uuid.UUID], object] | None = None) -> Outcome:
    settings = ctx.settings
    started_job = start(ctx, job_id, on_claimed=on_claimed)
    if isinstance(started_job, Outcome):
        return started_job
    claim, input_key, job_options = started_job

    with tempfile.TemporaryDirectory(prefix="veil-job-") as tmp, \
            LeaseKeeper(ctx.engine, claim, lease_seconds=settings.lease_seconds) as lease:
        out_path = Path(tmp) / "output"
        options = engine_options(job_options)
        started = time.perf_counter()
        try:
            with ctx.storage.local_file(input_key) as source:
                result = ctx.anonymizer.run(
                    source, out_path, options,
                    max_pixels=settings.max_image_pixels, jpeg_quality=settings.jpeg_quality,
                    keep_metadata=settings.keep_metadata,
                )
        except Exception as exc:
            return attempt_failed(ctx, claim, exc)
        if lease.lost.is_set():
            return Outcome.lost
        output_bytes = out_path.stat().st_size
        key = store_output(ctx, claim, out_path, extension(result.output_format))
        if isinstance(key, Outcome):
            return key
        elapsed_ms = (time.perf_counter() - started) * 1000

    detections = result.detections.to_list()
    return finish(
        ctx, claim, output_key=key, input_key=input_key,
        output_media_type=media_type(result.output_format),
        output_bytes=output_bytes,
        faces_found=sum(1 for d in detections if d["label"] == "face"),
        plates_found=sum(1 for d in detections if d["label"] == "plate"),
        detections=detections,
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
