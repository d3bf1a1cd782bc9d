"""What `veil eval` measures: named predictors built from the engine. The only module that knows the engine's API.

A predictor takes a BGR image and returns (detections, the padded int boxes that get masked): exactly what
the service's ImageAnonymizer detects and masks for a preset, or for one registry model at its native
settings (`--detector`), padded as the default preset pads that model's task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from shared.settings import Settings
from worker.engine.detection_engine import DetectionEngines
from worker.engine.detections import Detections
from worker.engine.errors import EngineError
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions, ImageAnonymizer
from worker.engine.presets import PRESETS
from worker.engine.registry import ModelRegistry
from worker.evaluation.evaluate import Predictor
from worker.evaluation.native import NATIVE, NativeDetector


class CandidateError(ValueError):
    """A --preset or --detector that cannot run here (unknown, missing, refused licence); the message says why."""


@dataclass(frozen=True)
class Candidate:
    name: str
    predict: Predictor


def anonymizer_predictor(anonymizer: ImageAnonymizer, options: AnonymizeOptions) -> Predictor:
    """The anonymizer's own detections and padded boxes; its detectors are built here, so a missing or
    refused model fails now, before any image is read."""
    engine = anonymizer.engines.get(options.preset)
    for task in options.targets or engine.targets:
        engine.detector(task)

    def predict(bgr: np.ndarray) -> tuple[Detections, np.ndarray]:
        _, detections, padded = anonymizer.process_array(bgr, options)
        return detections, padded

    return predict


def candidate_name(name: str, threshold: float | None) -> str:
    return name if threshold is None else f"{name}@{threshold:g}"


def build_candidates(settings: Settings, *, presets: Sequence[str] = (), detectors: Sequence[str] = (),
                     targets: Sequence[str] = ("face",), thresholds: Sequence[float] = ()) -> list[Candidate]:
    """One candidate per preset and per detector named (the service's default preset when none is), each at its
    own threshold, or once per threshold given (named "fast@0.4"): a threshold sweep in one table and plot."""
    presets, detectors = list(dict.fromkeys(presets)), list(dict.fromkeys(detectors))  # names key the results
    levels: list[float | None] = list(dict.fromkeys(thresholds)) or [None]
    for level in levels:
        if level is not None and not 0.0 < level <= 1.0:
            raise CandidateError(f"a threshold must be in (0, 1], not {level:g}")
    for kind, names, known in (("preset", presets, PRESETS), ("detector", detectors, tuple(NATIVE))):
        unknown = [n for n in names if n not in known]
        if unknown:
            raise CandidateError(f"unknown {kind} {unknown[0]!r}; this build has: {', '.join(known)}")
    registry = ModelRegistry.from_settings(settings)
    # Solid is the cheapest mask and masks exactly the boxes the others would.
    solid = MaskStyle.SOLID
    try:
        shared = ImageAnonymizer(DetectionEngines.from_loader(registry.load_session, registry.record,
                                                              default_preset=settings.default_preset))
        preset_names = list(presets) or ([] if detectors else [settings.default_preset])
        out = [Candidate(candidate_name(p, level), anonymizer_predictor(shared, AnonymizeOptions(
                   targets=tuple(targets), preset=p, mask=solid, score_threshold=level)))
               for p in preset_names for level in levels]
        for name in detectors:
            detector = NativeDetector(name, registry.load_session)
            single = ImageAnonymizer(DetectionEngines.fixed(detector, record=registry.record))
            out.extend(Candidate(candidate_name(name, level), anonymizer_predictor(single, AnonymizeOptions(
                targets=(detector.task,), mask=solid, score_threshold=level))) for level in levels)
    except EngineError as exc:
        raise CandidateError(str(exc)) from None  # "code: message"
    return out
