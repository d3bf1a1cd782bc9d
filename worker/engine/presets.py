"""Detection presets (`fast`, `balanced`, `thorough`): per target, which detector runs and how boxes are padded.

The detectors themselves come from `worker.engine.faces.build_face_detector(preset, load_session)` and
`worker.engine.plates.build_plate_detector(preset, load_session)`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

import numpy as np

from worker.engine.detections import Detections
from worker.engine.detector import Detector, SessionLoader
from worker.engine.face_yunet import YuNetDetector
from worker.engine.faces import build_face_detector
from worker.engine.onnx_session import active_provider
from worker.engine.plates import build_plate_detector

PresetName = Literal["fast", "balanced", "thorough"]
PRESETS: tuple[str, ...] = get_args(PresetName)
TARGETS = ("face", "plate")

# (width scale, height scale) per target, used unless the detector carries its own calibrated `padding` or the
# job asks for other values. Faces: 1.2 x 1.5 raised faces at least 80 % covered from 0.54 to 0.69 on
# WIDER FACE street (hair, ears and chin are part of a face). Plates: labelled boxes hug the characters and
# some are shifted, so a little margin on every side.
DEFAULT_PADDING: Mapping[str, tuple[float, float]] = {"face": (1.2, 1.5), "plate": (1.15, 1.3)}
PRESET_PADDING: Mapping[str, Mapping[str, tuple[float, float]]] = {p: DEFAULT_PADDING for p in PRESETS}

_BUILDERS: Mapping[str, Callable[[str, SessionLoader], Detector]] = {
    "face": build_face_detector, "plate": build_plate_detector}


def check_preset(preset: str) -> str:
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}")
    return preset


def build_detector(task: str, preset: str, load_session: SessionLoader) -> Detector:
    """The detector a preset runs for one target."""
    check_preset(preset)
    if task not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    return _BUILDERS[task](preset, load_session)


def default_padding(preset: str, task: str) -> tuple[float, float]:
    return PRESET_PADDING[check_preset(preset)][task]


class SingleScaleYuNet:
    """YuNet once at the image's native resolution, as a `Detector`: what an anonymizer built directly on a
    `YuNetDetector` runs (tests, benchmarks' baselines)."""

    task = "face"

    def __init__(self, yunet: YuNetDetector) -> None:
        self.yunet = yunet

    @property
    def model_names(self) -> tuple[str, ...]:
        return (self.yunet.name,)

    @property
    def score_threshold(self) -> float:
        return self.yunet.score_threshold

    @property
    def provider(self) -> str:
        return active_provider(self.yunet.session)

    def detect(self, bgr: np.ndarray, *, score_threshold: float | None = None) -> Detections:
        return self.yunet.detect(bgr, score_threshold=score_threshold)

    def operating_point(self) -> dict[str, Any]:
        return {"detector": "yunet_single_scale", "scales": [1.0], "tiles": None,
                "score_threshold": self.yunet.score_threshold, "nms_threshold": self.yunet.nms_threshold}
