"""Run one video job: claim, probe, anonymize frame by frame, store the output, finalize. Safe to run twice.

Progress goes to the job row a few times a second in one compare-and-set UPDATE that also renews the lease:
zero rows updated means the job was cancelled, erased or taken over, and the engine is told to stop (it
deletes its partial output); so a cancellation is noticed within one progress interval, not one heartbeat.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import and_, update
from sqlmodel import col

from shared import job_claims
from shared.job_options import JobOptions
from shared.settings import Settings
from shared.states import JobStatus
from shared.tables import Job
from shared.timeutil import utcnow
from shared.version import software_version
from worker.context import WorkerContext
from worker.engine.video import VideoCancelled, VideoLimits, VideoOptions, VideoResult, probe_video
from worker.engine.video.output import encoder_fields
from worker.image_job import engine_options
from worker.job_steps import Outcome, attempt_failed, finish, start, store_output
from worker.lease import LeaseKeeper

log = logging.getLogger("veil.worker")

# Container (as sniffed, or as the engine writes it) -> media type and file extension.
VIDEO_MEDIA_TYPES: dict[str, str] = {
    "mp4": "video/mp4", "mov": "video/quicktime", "mkv": "video/x-matroska", "avi": "video/x-msvideo",
}
_ALIASES = {"matroska": "mkv", "quicktime": "mov", "webm": "mkv"}
# Inside Job.timings: frames done and total, fps and ETA while a video runs (api.schemas.VIDEO_PROGRESS_KEY).
PROGRESS_KEY = "video_progress"
PROGRESS_INTERVAL_S = 0.5


def container_name(container: str) -> str:
    name = container.lower().split(",")[0].strip()
    return _ALIASES.get(name, name)


def video_media_type(container: str) -> str:
    return VIDEO_MEDIA_TYPES.get(container_name(container), "application/octet-stream")


def video_limits(settings: Settings) -> VideoLimits:
    return VideoLimits(max_duration_s=settings.max_video_duration_s, max_width=settings.max_video_width,
                       max_height=settings.max_video_height)


def video_options(options: JobOptions, settings: Settings) -> VideoOptions:
    """A job's options for the video engine: its preset, else the video one (cheaper per frame than photos'
    because tracking carries boxes between detections), and the cadence per target from the settings."""
    what = engine_options(options)
    thresholds = dict(what.threshold_by_target)
    if "face" in thresholds and thresholds["face"] is None and what.score_threshold is None:
        thresholds["face"] = settings.video_face_threshold
    what = replace(what, preset=options.preset or settings.video_detection_preset, threshold_by_target=thresholds)
    return VideoOptions(face=what, **encoder_fields(settings),
                        cadence={"face": settings.video_face_cadence, "plate": settings.video_plate_cadence})


class ProgressWriter:
    """The engine's progress callback: throttled writes of progress to the row, renewing the lease as it goes.
    Returns False (stop) once the job is no longer ours."""

    def __init__(self, ctx: WorkerContext, claim: job_claims.Claim, lease: LeaseKeeper, *,
                 interval_s: float = PROGRESS_INTERVAL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._ctx, self._claim, self._lease = ctx, claim, lease
        self._interval, self._clock = interval_s, clock
        self._started = clock()
        self._last = float("-inf")

    def __call__(self, frames_done: int, frames_total: int) -> bool:
        if self._lease.lost.is_set():
            return False
        now = self._clock()
        if now - self._last < self._interval:
            return True
        self._last = now
        fraction = min(1.0, frames_done / frames_total) if frames_total > 0 else 0.0
        # Below 1.0 until finalize: "1.0" means the output is stored.
        fraction = round(min(fraction, 0.99), 4)
        self._lease.report(fraction)
        detail = progress_detail(frames_done, frames_total, now - self._started)
        try:
            held = self._write(fraction, detail)
        except Exception as exc:  # a database blip: the lease keeper still renews; carry on
            log.warning("progress write failed", extra={"job_id": str(self._claim.job_id),
                                                        "error": type(exc).__name__})
            return True
        if not held:
            self._lease.lost.set()
        return held

    def _write(self, fraction: float, detail: dict[str, Any]) -> bool:
        now, c = utcnow(), self._claim
        held = and_(col(Job.id) == c.job_id, col(Job.status) == JobStatus.running.value,
                    col(Job.lease_owner) == c.token)
        with self._ctx.engine.begin() as conn:
            return conn.execute(update(Job).where(held).values(
                progress=fraction, timings={PROGRESS_KEY: detail}, updated_at=now,
                lease_expires_at=now + timedelta(seconds=self._ctx.settings.lease_seconds),
            )).rowcount == 1


def progress_detail(frames_done: int, frames_total: int, elapsed_s: float) -> dict[str, Any]:
    fps = frames_done / elapsed_s if elapsed_s > 0 and frames_done > 0 else None
    eta = max(0.0, (frames_total - frames_done) / fps) if fps and frames_total > 0 else None
    return {"frames_done": frames_done, "frames_total": frames_total,
            "fps": round(fps, 2) if fps is not None else None,
            "eta_seconds": round(eta, 1) if eta is not None else None}


def run_video_job(ctx: WorkerContext, job_id: uuid.UUID, *,
                  on_claimed: Callable[[uuid.UUID], object] | None = None) -> Outcome:
    settings = ctx.settings
    started_job = start(ctx, job_id, on_claimed=on_claimed)
    if isinstance(started_job, Outcome):
        return started_job
    claim, input_key, job_options = started_job

    limits = video_limits(settings)
    options = video_options(job_options, settings)
    with tempfile.TemporaryDirectory(prefix="veil-video-") as tmp, \
            LeaseKeeper(ctx.engine, claim, lease_seconds=settings.lease_seconds) as lease:
        out_path = Path(tmp) / "output"
        started = time.perf_counter()
        try:
            with ctx.storage.local_file(input_key) as src:
                info = probe_video(src, limits)
                result = ctx.video_anonymizer.run(src, out_path, options, limits=limits,
                                                  progress=ProgressWriter(ctx, claim, lease))
        except VideoCancelled:
            log.info("video job stopped: no longer ours", extra={"job_id": str(job_id)})
            return Outcome.lost
        except Exception as exc:
            return attempt_failed(ctx, claim, exc)
        if lease.lost.is_set():
            return Outcome.lost
        container = container_name(result.output_container)
        output_bytes = out_path.stat().st_size
        key = store_output(ctx, claim, out_path, f".{container}")
        if isinstance(key, Outcome):
            return key
        elapsed_s = time.perf_counter() - started

    return finish(
        ctx, claim, output_key=key, input_key=input_key,
        output_media_type=video_media_type(container),
        output_bytes=output_bytes,
        faces_found=result.tracks_by_target.get("face", 0),
        plates_found=result.tracks_by_target.get("plate", 0),
        manifest=_manifest(ctx, options, result, info_codec=info.codec),
        timings={**{k: round(v, 2) for k, v in result.timings_ms.items()}, "total": round(elapsed_s * 1000, 2),
                 PROGRESS_KEY: progress_detail(result.frames, result.frames, elapsed_s) | {"eta_seconds": 0.0}},
    )


def _manifest(ctx: WorkerContext, options: VideoOptions, result: VideoResult, *,
              info_codec: str) -> dict[str, object]:
    return {
        **ctx.anonymizer.manifest(options.face),
        "software_version": software_version(),
        "kind": "video",
        "input_codec": info_codec,
        "output_codec": result.output_codec,
        "output_container": container_name(result.output_container),
        "crf": options.crf,
        "encoder_preset": options.preset,  # x264's; "preset" above is the detection preset
        "frames": result.frames,
        "fps": result.fps,
        "width": result.width,
        "height": result.height,
        "detections": result.detections,
        "tracks": result.tracks,
        "tracks_by_target": dict(result.tracks_by_target),
        "masked_boxes": result.masked_boxes,
        "copied_streams": list(result.copied_streams),
        "dropped_other_streams": options.drop_other_streams,
        "tracker": {"hold_frames": options.track_hold_frames, "lead_frames": options.lead_frames(result.cadence),
                    "cadence": dict(result.cadence)},
        "metadata_kept": "none",
    }
