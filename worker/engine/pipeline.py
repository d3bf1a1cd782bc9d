"""One image in, one masked image out: decode, detect, pad, mask, encode, with timings and a manifest."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from worker.engine.detections import Detections
from worker.engine.face_yunet import YuNetDetector
from worker.engine.image_io import FORMATS, output_format, read_image, write_image
from worker.engine.masking import MaskStyle, apply_masks, pad_boxes

SUPPORTED_TARGETS = ("face",)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000, 3)


@dataclass(frozen=True)
class AnonymizeOptions:
    targets: tuple[str, ...] = ("face",)
    mask: MaskStyle = MaskStyle.BLUR
    width_scale: float = 1.2
    height_scale: float = 1.5
    score_threshold: float | None = None  # None: the detector's default
    output_format: str = "same"

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask", MaskStyle(self.mask))
        object.__setattr__(self, "targets", tuple(self.targets))
        unknown = set(self.targets) - set(SUPPORTED_TARGETS)
        if unknown or not self.targets:
            raise ValueError(f"targets must be a non-empty subset of {SUPPORTED_TARGETS}")
        if self.width_scale < 1.0 or self.height_scale < 1.0:
            raise ValueError("padding scales must be >= 1.0: shrinking a box would uncover part of a face")
        if self.score_threshold is not None and not 0.0 < self.score_threshold <= 1.0:
            raise ValueError("score_threshold must be in (0, 1]")
        if self.output_format != "same" and self.output_format not in FORMATS:
            raise ValueError(f"output_format must be 'same' or one of {FORMATS}")


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
    """Holds the (expensive, reusable) detector; build one per worker process and reuse it."""

    def __init__(self, detector: YuNetDetector | None = None) -> None:
        self._detector = detector

    @property
    def detector(self) -> YuNetDetector:
        # Lazy so importing or constructing the anonymizer never loads a model (CLI help, API process).
        if self._detector is None:
            self._detector = YuNetDetector()
        return self._detector

    def process_array(
        self, bgr: np.ndarray, options: AnonymizeOptions, *, timings: dict[str, float] | None = None
    ) -> tuple[np.ndarray, Detections, np.ndarray]:
        """(masked copy, detections, padded int boxes) for a BGR uint8 image; fills `timings` if given."""
        t0 = time.perf_counter()
        # The threshold is applied inside the detector's decode, so a per-call value below the detector's
        # default still finds the lower-scoring faces instead of filtering an already-thresholded list.
        detections = self.detector.detect(bgr, score_threshold=options.score_threshold)
        t1 = time.perf_counter()
        padded = pad_boxes(
            detections.boxes, bgr.shape, width_scale=options.width_scale, height_scale=options.height_scale
        )
        masked = apply_masks(bgr, padded, options.mask)
        if timings is not None:
            timings["detect"] = _ms(t0, t1)
            timings["mask"] = _ms(t1, time.perf_counter())
        return masked, detections, padded

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
        """What produced an output: model identities, thresholds, padding and mask style."""
        det = self.detector
        threshold = det.score_threshold if options.score_threshold is None else options.score_threshold
        return {
            "models": [
                {
                    "task": "face",
                    "name": det.name,
                    "sha256": det.sha256,
                    "licence": det.licence,
                    "provider": det.provider,
                },
            ],
            "targets": list(options.targets),
            "score_threshold": threshold,
            "nms_threshold": det.nms_threshold,
            "padding": {"width_scale": options.width_scale, "height_scale": options.height_scale},
            "mask": options.mask.value,
            "output_format": options.output_format,
        }
