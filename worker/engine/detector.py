"""What every detector offers the pipeline: boxes for one task on one BGR image, and what produced them.

Face detectors (worker/engine/faces/), plate detectors (worker/engine/plates/) and the presets that combine
them (worker/engine/presets.py) all satisfy this protocol, so the image and video pipelines, `veil eval` and
the job manifest treat a single model and a fused multi-scale ensemble the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import onnxruntime as ort

from worker.engine.detections import Detections

# Given a model name from the registry manifest, returns a verified (hash- and licence-checked) ONNX
# Runtime session for it. Detectors never open model files themselves.
SessionLoader = Callable[[str], ort.InferenceSession]


@runtime_checkable
class Detector(Protocol):
    task: str  # "face" or "plate": the label of every detection it returns

    def detect(self, bgr: np.ndarray) -> Detections:
        """Detections in pixel coordinates of `bgr` (H, W, 3 uint8), labels all equal to `task`."""
        ...

    @property
    def model_names(self) -> tuple[str, ...]:
        """Registry names of the model files this detector runs."""
        ...

    def operating_point(self) -> dict[str, Any]:
        """JSON-able description of how it runs (scales, tiles, thresholds, fusion) for job manifests."""
        ...


def has_pixels(bgr: np.ndarray) -> bool:
    """Every detector's input check: refuse anything but an H x W x 3 image; False when it has no pixels, so the
    caller returns no detections instead of running a model on an empty tensor."""
    if bgr.ndim != 3 or bgr.shape[2] != 3:
        raise ValueError("expected an H x W x 3 BGR image")
    return bgr.shape[0] > 0 and bgr.shape[1] > 0
