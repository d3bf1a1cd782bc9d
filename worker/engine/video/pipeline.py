"""A video in, a masked video out: decode -> detect, track, mask -> encode, as three overlapping stages.

Stages talk through small bounded queues (the tracker's look-ahead adds `track_lead_frames` frames), so memory
stays flat however long the video is. Decoding and encoding run on their own threads; FFmpeg, swscale and
ONNX Runtime release the GIL, so all three stages make progress at once.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from worker.engine.errors import CORRUPT_VIDEO, EngineError
from worker.engine.face_yunet import YuNetDetector
from worker.engine.masking import apply_masks, pad_boxes
from worker.engine.pipeline import AnonymizeOptions
from worker.engine.tracking import FaceTracker
from worker.engine.video.output import COPY_TYPES, OUTPUT_CODEC, VideoOutput
from worker.engine.video.probe import VideoLimits, frame_rate, open_input, probe_video, video_stream
from worker.engine.video.stages import END, Frame, Stages, rotate_for_display, unrotate_boxes

PROGRESS_INTERVAL_S = 0.25
# ByteTrack's second stage: detections this far below the job's threshold may continue an existing track
# (a face turning away for a moment) but never start one, and are not counted as detections.
LOW_SCORE_MARGIN = 0.2
MIN_LOW_SCORE = 0.3


class VideoCancelled(Exception):
    """The progress callback asked to stop; the partial output has been deleted."""


@dataclass
class VideoOptions:
    face: AnonymizeOptions
    crf: int = 20
    preset: str = "veryfast"
    drop_other_streams: bool = False
    track_hold_frames: int = 8
    track_lead_frames: int = 4

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ValueError("crf must be in 0..51")
        if self.track_hold_frames < 0 or self.track_lead_frames < 0:
            raise ValueError("track_hold_frames and track_lead_frames must be >= 0")


@dataclass
class VideoResult:
    frames: int
    width: int
    height: int
    detections: int  # detector boxes at or above the threshold, over all frames
    tracks: int
    masked_boxes: int  # boxes masked over all frames, including held, lead and interpolated ones
    timings_ms: dict[str, float]
    fps: float  # the video's average frame rate (not the processing speed)
    copied_streams: list[str]  # type of each stream copied unchanged ("audio", "data", "subtitle")
    output_codec: str
    output_container: str = "mp4"  # "mp4", "mov" or "mkv" (AVI input is written as Matroska)


class VideoAnonymizer:
    """Holds the detector; build one per worker process and reuse it."""

    def __init__(self, detector: YuNetDetector) -> None:
        self.detector = detector

    def run(
        self,
        src: Path,
        dst: Path,
        options: VideoOptions,
        *,
        limits: VideoLimits,
        progress: Callable[[int, int], bool] | None = None,
    ) -> VideoResult:
        """Mask every face in `src` into `dst`. EngineError for bad input, VideoCancelled when `progress`
        returns False; either way no partial `dst` is left behind."""
        t_start = time.perf_counter()
        info = probe_video(src, limits)
        fmt, inp = open_input(src)
        out: VideoOutput | None = None
        stages: Stages | None = None
        try:
            vstream = video_stream(inp)
            vstream.thread_type = "AUTO"  # frame and slice threads inside FFmpeg's decoder
            others = [] if options.drop_other_streams else [s for s in inp.streams if s.type in COPY_TYPES]
            out = VideoOutput(
                dst,
                fmt,
                vstream,
                others,
                rate=frame_rate(vstream),
                rotation=info.rotation,
                crf=options.crf,
                preset=options.preset,
            )
            stages = Stages(
                inp, vstream, others, out, max_frames=limits.max_frames, max_duration_s=limits.max_duration_s
            )
            stages.start()
            counts, tracks, timings = self._process(
                stages, info.width, info.height, info.rotation, info.frames, options, progress
            )
            stages.finish()
        except BaseException:
            if stages is not None:
                stages.stop()
            if out is not None:
                out.close()
            inp.close()
            dst.unlink(missing_ok=True)
            raise
        inp.close()
        timings = {**stages.timings, **timings}
        timings["total"] = round((time.perf_counter() - t_start) * 1000, 3)
        return VideoResult(
            frames=counts["frames"],
            width=info.width,
            height=info.height,
            detections=counts["detections"],
            tracks=tracks,
            masked_boxes=counts["masked"],
            timings_ms=timings,
            fps=info.fps,
            copied_streams=list(out.copied_types),
            output_codec=OUTPUT_CODEC,
            output_container=out.container_name,
        )

    def _process(
        self,
        stages: Stages,
        width: int,
        height: int,
        rotation: int,
        total: int,
        options: VideoOptions,
        progress: Callable[[int, int], bool] | None,
    ) -> tuple[dict[str, int], int, dict[str, float]]:
        face = options.face
        threshold = self.detector.score_threshold if face.score_threshold is None else face.score_threshold
        low = min(threshold, max(MIN_LOW_SCORE, threshold - LOW_SCORE_MARGIN))
        tracker = FaceTracker(
            hold_frames=options.track_hold_frames, lead_frames=options.track_lead_frames, high_score=threshold
        )
        waiting: deque[Frame] = deque()
        t = {"detect": 0.0, "track": 0.0, "mask": 0.0}
        n = {"frames": 0, "detections": 0, "masked": 0}
        last_report = time.perf_counter()

        def emit(finished: list[tuple[int, np.ndarray]]) -> None:
            nonlocal last_report
            for index, boxes in finished:
                frame = waiting.popleft()
                assert frame.index == index
                t0 = time.perf_counter()
                padded = pad_boxes(boxes, frame.bgr.shape, width_scale=face.width_scale, height_scale=face.height_scale)
                masked = apply_masks(frame.bgr, padded, face.mask) if len(padded) else frame.bgr
                t["mask"] += time.perf_counter() - t0
                n["masked"] += len(padded)
                stages.put_out(Frame(frame.index, frame.pts, masked))
                n["frames"] += 1
                now = time.perf_counter()
                if progress is not None and now - last_report >= PROGRESS_INTERVAL_S:
                    last_report = now
                    if progress(n["frames"], total) is False:
                        raise VideoCancelled("cancelled")

        while (item := stages.get_in()) is not END:
            if isinstance(item, av.Packet):
                stages.put_out(item)
                continue
            assert isinstance(item, Frame)
            if item.bgr.shape[:2] != (height, width):
                raise EngineError(CORRUPT_VIDEO, "the frame size changes within the video")
            t0 = time.perf_counter()
            upright = rotate_for_display(item.bgr, rotation)
            found = self.detector.detect(upright, score_threshold=low)
            boxes = unrotate_boxes(found.boxes, rotation, width, height)
            t1 = time.perf_counter()
            n["detections"] += int((found.scores >= threshold).sum())
            waiting.append(item)
            finished = tracker.push(boxes, found.scores)
            t["detect"] += t1 - t0
            t["track"] += time.perf_counter() - t1
            emit(finished)
        emit(tracker.flush())
        if n["frames"] == 0:
            raise EngineError(CORRUPT_VIDEO, "no frame of the video could be decoded")
        if progress is not None and progress(n["frames"], total) is False:
            raise VideoCancelled("cancelled")
        timings = {k: round(v * 1000, 3) for k, v in t.items()}
        return n, tracker.tracks_started, timings
