"""One image in, one masked image out: decode, detect every target, pad, mask, encode, with timings and a manifest."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.engine.detection_engine import DetectionEngine, DetectionEngines, combine
from worker.engine.detections import Detections
from worker.engine.detector import Detector
from worker.engine.errors import TARGET_UNAVAILABLE, EngineError
from worker.engine.face_yunet import YuNetDetector
from worker.engine.image_io import FORMATS, output_format, read_image, write_image
from worker.engine.masking import MaskStyle, apply_masks, pad_boxes
from worker.engine.presets import PRESETS, TARGETS, SingleScaleYuNet

SUPPORTED_TARGETS = TARGETS


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


def _check_scale(value: float | None) -> None:
    if value is not None and value < 1.0:
        raise ValueError("padding scales must be >= 1.0: shrinking a box would uncover part of what it hides")


def _check_threshold(value: float | None) -> None:
    if value is not None and not 0.0 < value <= 1.0:
        raise ValueError("score_threshold must be in (0, 1]")


@dataclass(frozen=True)
class AnonymizeOptions:
    """What to find and how to mask it. None means the default of the preset (or of its detector).

    `width_scale`, `height_scale` and `score_threshold` apply to every target; the `*_by_target` mappings
    override them for one target ("face" or "plate")."""

    targets: tuple[str, ...] | None = None  # None: every target the engine can detect
    preset: str | None = None  # None: the engine's default preset
    mask: MaskStyle = MaskStyle.BLUR
    width_scale: float | None = None
    height_scale: float | None = None
    score_threshold: float | None = None
    padding_by_target: Mapping[str, tuple[float | None, float | None]] = field(default_factory=dict)
    threshold_by_target: Mapping[str, float | None] = field(default_factory=dict)
    output_format: str = "same"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", MaskStyle(self.mask))
        if self.targets is not None:
            object.__setattr__(self, "targets", tuple(dict.fromkeys(self.targets)))
            if not self.targets or set(self.targets) - set(TARGETS):
                raise ValueError(f"targets must be a non-empty subset of {TARGETS}")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {PRESETS}")
        if set(self.padding_by_target) - set(TARGETS) or set(self.threshold_by_target) - set(TARGETS):
            raise ValueError(f"per-target options must name targets in {TARGETS}")
        for scale in (self.width_scale, self.height_scale, *(s for p in self.padding_by_target.values() for s in p)):
            _check_scale(scale)
        for threshold in (self.score_threshold, *self.threshold_by_target.values()):
            _check_threshold(threshold)
        if self.output_format != "same" and self.output_format not in FORMATS:
            raise ValueError(f"output_format must be 'same' or one of {FORMATS}")


@dataclass(frozen=True)
class TargetPlan:
    """How one target runs in one job: threshold (None: the detector's own) and padding scales."""

    threshold: float | None
    width_scale: float
    height_scale: float


def plan_targets(engine: DetectionEngine, options: AnonymizeOptions) -> dict[str, TargetPlan]:
    """Each requested target's threshold and padding: the job's values first, then the detector's calibrated
    padding, then the preset's."""
    plans = {}
    for task in options.targets or engine.targets:
        default_w, default_h = engine.padding(task)
        by_w, by_h = options.padding_by_target.get(task, (None, None))
        width = by_w if by_w is not None else options.width_scale if options.width_scale is not None else default_w
        height = by_h if by_h is not None else options.height_scale if options.height_scale is not None else default_h
        threshold = options.threshold_by_target.get(task)
        plans[task] = TargetPlan(threshold if threshold is not None else options.score_threshold, width, height)
    return plans


def pad_per_target(per_task: Mapping[str, Detections], plans: Mapping[str, TargetPlan],
                   shape: tuple[int, ...]) -> np.ndarray:
    """Padded int boxes in the order `combine` puts the detections."""
    parts = [pad_boxes(per_task[t].boxes, shape, width_scale=p.width_scale, height_scale=p.height_scale)
             for t, p in plans.items()]
    return np.concatenate(parts) if parts else np.zeros((0, 4), np.int32)


def as_engines(detection: DetectionEngines | Detector | YuNetDetector) -> DetectionEngines:
    """Accepts a bare detector too (tests, benchmarks): it then serves every preset for its target."""
    if isinstance(detection, DetectionEngines):
        return detection
    if isinstance(detection, YuNetDetector):
        return DetectionEngines.fixed(SingleScaleYuNet(detection))
    return DetectionEngines.fixed(detection)


@dataclass
class AnonymizeResult:
    detections: Detections
    masked_boxes: np.ndarray
    input_format: str
    output_format: str
    width: int
    height: int
    timings_ms: dict[str, float] = field(default_factory=dict)


class ImageAnonymizer:
    """Holds the (expensive, reusable) detectors; build one per worker process and reuse it. Detectors load on
    first use, so constructing it never opens a model (CLI help, API process)."""

    def __init__(self, detection: DetectionEngines | Detector | YuNetDetector) -> None:
        self.engines = as_engines(detection)

    def warm_up(self, options: AnonymizeOptions | None = None) -> str:
        """Build the detectors a default job needs now, so that a missing, altered or refused model stops the
        worker at start-up and the first job does not pay for the sessions. Returns the execution provider."""
        options = options or AnonymizeOptions()
        engine = self.engines.get(options.preset)
        providers = []
        for task in options.targets or engine.targets:
            try:
                providers += [r.get("provider") for r in engine.model_records(task)]
            except EngineError as exc:
                if exc.code != TARGET_UNAVAILABLE:  # a build without that target: its jobs fail, others run
                    raise
        return next((p for p in providers if p), "unknown")

    def process_array(
        self, bgr: np.ndarray, options: AnonymizeOptions, *, timings: dict[str, float] | None = None
    ) -> tuple[np.ndarray, Detections, np.ndarray]:
        """(masked copy, detections of every target, padded int boxes in the same order) for a BGR uint8 image."""
        t0 = time.perf_counter()
        engine = self.engines.get(options.preset)
        plans = plan_targets(engine, options)
        per_task = engine.detect(bgr, {task: plan.threshold for task, plan in plans.items()})
        t1 = time.perf_counter()
        padded = pad_per_target(per_task, plans, bgr.shape)
        masked = apply_masks(bgr, padded, options.mask)
        if timings is not None:
            timings["detect"] = _ms(t0, t1)
            timings["mask"] = _ms(t1, time.perf_counter())
        return masked, combine(per_task[task] for task in plans), padded

    def run(
        self,
        src: Path,
        dst: Path,
        options: AnonymizeOptions,
        *,
        max_pixels: int,
        jpeg_quality: int = 92,
        keep_metadata: bool = False,
    ) -> AnonymizeResult:
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        image = read_image(src, max_pixels=max_pixels)
        fmt = output_format(image.format, options.output_format)
        timings["decode"] = _ms(t0, time.perf_counter())
        masked, detections, padded = self.process_array(image.bgr, options, timings=timings)
        t1 = time.perf_counter()
        icc = image.icc_profile if keep_metadata else None
        write_image(dst, masked, fmt, jpeg_quality=jpeg_quality, keep_metadata=keep_metadata, icc_profile=icc)
        timings["encode"] = _ms(t1, time.perf_counter())
        return AnonymizeResult(detections, padded, image.format, fmt, image.width, image.height, timings)

    def manifest(self, options: AnonymizeOptions) -> dict[str, Any]:
        """What produced an output: the preset, every model used (name, sha256, licence, provider) and, per
        target, the operating point (scales, tiles, thresholds), the threshold applied and the padding."""
        engine = self.engines.get(options.preset)
        plans = plan_targets(engine, options)
        models: list[dict[str, Any]] = []
        tasks: dict[str, Any] = {}
        for task, plan in plans.items():
            records = engine.model_records(task)
            models.extend(records)
            tasks[task] = {
                "models": [r["name"] for r in records],
                "operating_point": engine.detector(task).operating_point(),
                "score_threshold": engine.threshold(task, plan.threshold),
                "padding": {"width_scale": plan.width_scale, "height_scale": plan.height_scale},
            }
        return {
            "preset": engine.preset,
            "targets": list(plans),
            "models": models,
            "tasks": tasks,
            "mask": options.mask.value,
            "output_format": options.output_format,
        }
