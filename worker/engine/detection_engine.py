"""Runs one detector per requested target and hands back their detections, labelled, with the padding to use.

`DetectionEngines` holds one `DetectionEngine` per preset, each building its detectors on first use (a job that
asks only for faces never loads a plate model). Detectors share ONNX Runtime sessions through the registry's
`SessionLoader`, so two presets running the same model hold one session.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from worker.engine.detections import Detections
from worker.engine.detector import Detector, SessionLoader
from worker.engine.errors import TARGET_UNAVAILABLE, EngineError
from worker.engine.presets import TARGETS, build_detector, check_preset, default_padding
from worker.engine.registry import default_manifest

DetectorBuilder = Callable[[str, str], Detector]  # (task, preset) -> detector
ModelRecord = Callable[[str], dict[str, Any]]  # model name -> manifest record (name, sha256, licence, ...)


def accepts_threshold(detector: Detector) -> bool:
    """Whether `detect` takes a per-call `score_threshold` (applied before NMS, so lower values find more)."""
    return _accepts(type(detector), "score_threshold")


def accepts_around_tracks(detector: Detector) -> bool:
    """Whether `detect` takes `around_tracks`: told that the image is a region around tracked objects, it may
    propose candidates more freely (a tracked object is likely there; its final threshold still applies)."""
    return _accepts(type(detector), "around_tracks")


@lru_cache(maxsize=64)
def _accepts(cls: type, parameter: str) -> bool:
    # Per class, not per call: inspecting a signature for every video frame would be wasted work.
    try:
        return parameter in inspect.signature(getattr(cls, "detect")).parameters  # noqa: B009
    except (AttributeError, TypeError, ValueError):
        return False


def default_threshold(detector: Detector) -> float | None:
    value = getattr(detector, "score_threshold", None)
    return float(value) if isinstance(value, int | float) else None


def detect(detector: Detector, bgr: np.ndarray, threshold: float | None, *,
           around_tracks: bool = False) -> Detections:
    """The detector's boxes at `threshold` (None: its own default), labelled with its task. `around_tracks`:
    `bgr` is a region around tracked objects (passed on to detectors that accept it)."""
    extra: dict[str, Any] = {"around_tracks": True} if around_tracks and accepts_around_tracks(detector) else {}
    if threshold is None:
        found = detector.detect(bgr, **extra)
    elif accepts_threshold(detector):
        found = detector.detect(bgr, score_threshold=threshold, **extra)  # type: ignore[call-arg]
    else:
        # Without a per-call threshold only raising it is possible: lower values keep the detector's default.
        found = detector.detect(bgr, **extra)
        found = found.select(found.scores >= threshold)
    return Detections(found.boxes, found.scores, np.full(len(found), detector.task))


def combine(per_task: Iterable[Detections]) -> Detections:
    parts = list(per_task)
    if not parts:
        return Detections.empty()
    return Detections(np.concatenate([d.boxes for d in parts]), np.concatenate([d.scores for d in parts]),
                      np.concatenate([d.labels for d in parts]))


class DetectionEngine:
    """The detectors of one preset, built on first use per target."""

    def __init__(self, preset: str, build: DetectorBuilder, record: ModelRecord,
                 targets: tuple[str, ...] = TARGETS) -> None:
        self.preset = preset
        self.targets = targets
        self._build = build
        self._record = record
        self._detectors: dict[str, Detector] = {}

    def detector(self, task: str) -> Detector:
        if task not in self.targets:
            raise EngineError(TARGET_UNAVAILABLE, f"no {task} detector is available")
        if task not in self._detectors:
            self._detectors[task] = self._build(task, self.preset)
        return self._detectors[task]

    def padding(self, task: str) -> tuple[float, float]:
        """Default (width, height) scales: the detector's calibrated `padding` if it has one, else the preset's."""
        calibrated = getattr(self.detector(task), "padding", None)
        if calibrated is not None:
            width, height = calibrated
            return float(width), float(height)
        return default_padding(self.preset, task)

    def threshold(self, task: str, requested: float | None) -> float | None:
        """The threshold that really applies: a detector without a per-call threshold cannot go below its own."""
        detector = self.detector(task)
        default = default_threshold(detector)
        if requested is None:
            return default
        if default is not None and not accepts_threshold(detector):
            return max(requested, default)
        return requested

    def detect(self, bgr: np.ndarray, thresholds: Mapping[str, float | None], *,
               around_tracks: bool = False) -> dict[str, Detections]:
        """Detections per task for the targets in `thresholds` (value None: the detector's own threshold)."""
        return {task: detect(self.detector(task), bgr, threshold, around_tracks=around_tracks)
                for task, threshold in thresholds.items()}

    def model_records(self, task: str) -> list[dict[str, Any]]:
        detector = self.detector(task)
        records = []
        for name in detector.model_names:
            record = {"task": task, **self._record(name)}
            provider = getattr(detector, "provider", None)
            if "provider" not in record and isinstance(provider, str):
                record["provider"] = provider
            records.append(record)
        return records


class DetectionEngines:
    """One `DetectionEngine` per preset, made on first use; `get(None)` is the default preset."""

    def __init__(self, build: DetectorBuilder, record: ModelRecord, *, default_preset: str = "balanced",
                 targets: tuple[str, ...] = TARGETS) -> None:
        self.default_preset = default_preset
        self.targets = targets
        self._build, self._record = build, record
        self._engines: dict[str, DetectionEngine] = {}

    @classmethod
    def from_loader(cls, load_session: SessionLoader, record: ModelRecord, *,
                    default_preset: str = "balanced") -> DetectionEngines:
        check_preset(default_preset)
        return cls(lambda task, preset: build_detector(task, preset, load_session), record,
                   default_preset=default_preset)

    @classmethod
    def fixed(cls, *detectors: Detector, record: ModelRecord | None = None) -> DetectionEngines:
        """The same detectors whatever the preset (tests, benchmarks and single-model evaluations)."""
        by_task = {d.task: d for d in detectors}
        return cls(lambda task, _preset: by_task[task], record or _manifest_record,
                   targets=tuple(t for t in TARGETS if t in by_task))

    def get(self, preset: str | None = None) -> DetectionEngine:
        name = preset or self.default_preset
        if name not in self._engines:
            self._engines[name] = DetectionEngine(check_preset(name), self._build, self._record, self.targets)
        return self._engines[name]


def _manifest_record(name: str) -> dict[str, Any]:
    entry = default_manifest().get(name)
    if entry is None:
        return {"name": name}
    return {"name": name, "sha256": entry.sha256, "licence": entry.licence_weights}
