"""A video in, a masked video out: decode -> detect, track, mask -> encode, as three overlapping stages.

Stages talk through small bounded queues (the tracker's look-ahead adds `track_lead_frames` frames), so memory
stays flat however long the video is. Decoding and encoding run on their own threads; FFmpeg, swscale and
ONNX Runtime release the GIL, so all three stages make progress at once.

Each target is detected on the whole of every `cadence`-th frame (VideoOptions.cadence), and on the next frame
as well while its tracker asks for it (a new, lost or fast track): for the targets in VideoOptions.region_looks
(plates) only in the regions around the asking tracks (video.regions), for the others on the whole frame. Its
tracker carries boxes over the frames skipped.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import av
import numpy as np

from worker.engine.detection_engine import DetectionEngine, DetectionEngines, accepts_threshold
from worker.engine.detections import Detections
from worker.engine.detector import Detector
from worker.engine.errors import CORRUPT_VIDEO, EngineError
from worker.engine.face_yunet import YuNetDetector
from worker.engine.masking import apply_masks, apply_masks_i420, pad_boxes
from worker.engine.pipeline import AnonymizeOptions, TargetPlan, as_engines, plan_targets
from worker.engine.tracking import FaceTracker
from worker.engine.video.output import COPY_TYPES, OUTPUT_CODEC, VideoOutput
from worker.engine.video.probe import VideoLimits, frame_rate, open_input, probe_video, video_stream
from worker.engine.video.regions import detect_in_regions, look_regions
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
    face: AnonymizeOptions  # what to detect and mask: every target, not only faces (the name predates plates)
    crf: int = 20
    preset: str = "veryfast"
    encoder_params: str = ""  # x264 options over the preset ("key=value:key=value")
    drop_other_streams: bool = False
    track_hold_frames: int = 8
    track_lead_frames: int = 4
    # Per target, detect on every n-th frame (absent: every frame) and let the tracker carry boxes between.
    cadence: dict[str, int] = field(default_factory=dict)
    # Targets whose follow-up looks (frames their tracks ask for) cover only the regions around those tracks;
    # the others look at the whole frame then. Not faces: a faint face near the score that starts a track
    # crosses it on some frames only, and whole-frame follow-ups gave it those chances. On the temporal check
    # (60 images, cadence 2) regions left 107 face box-frames uncovered, whole frames 82, every frame 78.
    region_looks: tuple[str, ...] = ("plate",)

    def __post_init__(self) -> None:
        if not 0 <= self.crf <= 51:
            raise ValueError("crf must be in 0..51")
        if self.track_hold_frames < 0 or self.track_lead_frames < 0:
            raise ValueError("track_hold_frames and track_lead_frames must be >= 0")
        if any(n < 1 for n in self.cadence.values()):
            raise ValueError("cadence must be >= 1")

    def cadence_of(self, task: str) -> int:
        return self.cadence.get(task, 1)

    def lead_frames(self, tasks: Iterable[str]) -> int:
        """Lead frames every tracker of a run uses: enough to carry a box first found at a detection frame
        back over the skipped frames before it, and equal for all targets so their outputs line up."""
        slowest = max((self.cadence_of(t) for t in tasks), default=1)
        return max(self.track_lead_frames, slowest - 1)


@dataclass
class VideoResult:
    frames: int
    width: int
    height: int
    detections: int  # detector boxes at or above the threshold, over all frames and targets
    tracks: int  # over all targets
    masked_boxes: int  # boxes masked over all frames, including held, lead and interpolated ones
    timings_ms: dict[str, float]
    fps: float  # the video's average frame rate (not the processing speed)
    copied_streams: list[str]  # type of each stream copied unchanged ("audio", "data", "subtitle")
    output_codec: str
    output_container: str = "mp4"  # "mp4", "mov" or "mkv" (AVI input is written as Matroska)
    tracks_by_target: dict[str, int] = field(default_factory=dict)
    cadence: dict[str, int] = field(default_factory=dict)  # per target run: detected on every n-th frame
    detected_frames: dict[str, int] = field(default_factory=dict)  # per target: frames the detector saw whole
    region_frames: dict[str, int] = field(default_factory=dict)  # per target: frames it saw around tracks only


class VideoAnonymizer:
    """Holds the detectors; build one per worker process and reuse it (it may share the image anonymizer's)."""

    def __init__(self, detection: DetectionEngines | Detector | YuNetDetector) -> None:
        self.engines = as_engines(detection)

    def run(
        self,
        src: Path,
        dst: Path,
        options: VideoOptions,
        *,
        limits: VideoLimits,
        progress: Callable[[int, int], bool] | None = None,
    ) -> VideoResult:
        """Mask every requested target in `src` into `dst`. EngineError for bad input, VideoCancelled when `progress`
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
                encoder_params=options.encoder_params,
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
            tracks=sum(tracks.values()),
            tracks_by_target=tracks,
            cadence={task: options.cadence_of(task) for task in tracks},
            detected_frames={task: counts.get(f"looked_{task}", 0) for task in tracks},
            region_frames={task: counts.get(f"regions_{task}", 0) for task in tracks},
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
    ) -> tuple[dict[str, int], dict[str, int], dict[str, float]]:
        engine = self.engines.get(options.face.preset)
        plans = plan_targets(engine, options.face)
        # One tracker per target: a face track must never continue on a plate box, nor the other way round.
        trackers: dict[str, FaceTracker] = {}
        high: dict[str, float] = {}
        low: dict[str, float | None] = {}
        for task, plan in plans.items():
            detector = engine.detector(task)
            threshold = engine.threshold(task, plan.threshold)
            high[task] = 0.0 if threshold is None else threshold
            low[task] = threshold
            if threshold is not None and accepts_threshold(detector):
                low[task] = min(threshold, max(MIN_LOW_SCORE, threshold - LOW_SCORE_MARGIN))
            trackers[task] = FaceTracker(hold_frames=options.track_hold_frames,
                                         lead_frames=options.lead_frames(plans), high_score=high[task])
        # The scale each detector's region looks run at (its finest whole-frame pass; 1 when it names none).
        region_scales = {task: _region_scale(engine.detector(task), height, width) for task in plans}
        mask = options.face.mask
        looked = {task: -options.cadence_of(task) for task in plans}  # the frame each was last seen whole on
        waiting: deque[Frame] = deque()
        t = {"detect": 0.0, "track": 0.0, "mask": 0.0}
        n = {"frames": 0, "detections": 0, "masked": 0}
        last_report = time.perf_counter()

        def emit(finished: dict[str, list[tuple[int, np.ndarray]]]) -> None:
            nonlocal last_report
            for index, per_task in _by_frame(finished):
                frame = waiting.popleft()
                assert frame.index == index
                t0 = time.perf_counter()
                padded = _pad(per_task, plans, frame.shape)
                if len(padded):
                    masking = apply_masks_i420 if frame.i420 else apply_masks
                    frame = Frame(frame.index, frame.pts, masking(frame.image, padded, mask), frame.i420)
                t["mask"] += time.perf_counter() - t0
                n["masked"] += len(padded)
                stages.put_out(frame)
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
            if item.shape != (height, width):
                raise EngineError(CORRUPT_VIDEO, "the frame size changes within the video")
            t0 = time.perf_counter()
            whole, regions = _looks(item.index, looked, trackers, options, width, height, region_scales)
            looked.update({task: item.index for task in whole})
            for task in whole:
                n[f"looked_{task}"] = n.get(f"looked_{task}", 0) + 1
            for task in regions:
                n[f"regions_{task}"] = n.get(f"regions_{task}", 0) + 1
            found = _detect(engine, item, rotation, {task: low[task] for task in whole},
                            {task: (low[task], r, region_scales[task]) for task, r in regions.items()})
            t1 = time.perf_counter()
            waiting.append(item)
            finished = {}
            for task in plans:
                if task not in found:
                    finished[task] = trackers[task].skip()
                    continue
                dets = found[task]
                n["detections"] += int((dets.scores >= high[task]).sum())
                finished[task] = trackers[task].push(dets.boxes, dets.scores, regions.get(task))
            t["detect"] += t1 - t0
            t["track"] += time.perf_counter() - t1
            emit(finished)
        emit({task: tracker.flush() for task, tracker in trackers.items()})
        if n["frames"] == 0:
            raise EngineError(CORRUPT_VIDEO, "no frame of the video could be decoded")
        if progress is not None and progress(n["frames"], total) is False:
            raise VideoCancelled("cancelled")
        timings = {k: round(v * 1000, 3) for k, v in t.items()}
        return n, {task: tracker.tracks_started for task, tracker in trackers.items()}, timings


def _looks(index: int, looked: dict[str, int], trackers: dict[str, FaceTracker], options: VideoOptions,
           width: int, height: int, region_scales: dict[str, float]) -> tuple[set[str], dict[str, np.ndarray]]:
    """The targets to look for on the whole frame `index` (their cadence is due, or their tracks ask for so
    much of it that a whole look costs the same), and the regions to look in for the others whose tracks ask."""
    whole: set[str] = set()
    regions: dict[str, np.ndarray] = {}
    for task, tracker in trackers.items():
        cadence = options.cadence_of(task)
        if index - looked[task] >= cadence:
            whole.add(task)
            continue
        asking = tracker.asking(cadence)
        if not len(asking):
            continue
        around = (look_regions(asking, width, height, region_scales[task]) if task in options.region_looks
                  else None)
        if around is None:
            whole.add(task)
        else:
            regions[task] = around
    return whole, regions


def _detect(engine: DetectionEngine, frame: Frame, rotation: int, whole: dict[str, float | None],
            regions: dict[str, tuple[float | None, np.ndarray, float]]) -> dict[str, Detections]:
    """Detections per target in stored-frame coordinates: on the whole frame as a player shows it, or in the
    regions given."""
    height, width = frame.shape
    found = engine.detect(rotate_for_display(frame.bgr(), rotation), whole) if whole else {}
    out = {task: Detections(unrotate_boxes(d.boxes, rotation, width, height), d.scores, d.labels)
           for task, d in found.items()}
    for task, (threshold, around, scale) in regions.items():
        out[task] = detect_in_regions(partial(_detect_around, engine, task, threshold), frame.bgr_crop, around,
                                      rotation, scale)
    return out


def _region_scale(detector: Detector, height: int, width: int) -> float:
    scale = getattr(detector, "region_scale", None)
    return float(scale(height, width)) if callable(scale) else 1.0


def _detect_around(engine: DetectionEngine, task: str, threshold: float | None, bgr: np.ndarray) -> Detections:
    return engine.detect(bgr, {task: threshold}, around_tracks=True)[task]


def _by_frame(finished: dict[str, list[tuple[int, np.ndarray]]]) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Per-target tracker output regrouped by frame. Trackers with equal lead frames finish the same frames
    at the same push, so the lists line up."""
    lists = list(finished.values())
    frames = []
    for i, (index, _) in enumerate(lists[0] if lists else []):
        if any(other[i][0] != index for other in lists):
            raise RuntimeError("target trackers went out of step")
        frames.append((index, {task: items[i][1] for task, items in finished.items()}))
    return frames


def _pad(per_task: dict[str, np.ndarray], plans: dict[str, TargetPlan], shape: tuple[int, int]) -> np.ndarray:
    parts = [pad_boxes(boxes, shape, width_scale=plans[task].width_scale, height_scale=plans[task].height_scale)
             for task, boxes in per_task.items()]
    return np.concatenate(parts) if parts else np.zeros((0, 4), np.int32)
