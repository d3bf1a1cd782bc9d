"""A face detector made of several passes (model x scale), fused by weighted box fusion.

Each pass runs one model on the frame resized by one factor and is trusted for a range of face heights
(in frame pixels): an upscaled pass exists to find small faces, and its boxes for large faces are unreliable
and slow the fusion down. A fused box is scored by the weighted mean of the best scores of the passes trusted
at its height, a pass that found nothing there counting 0, so a face several passes agree on outranks one
that a single pass found with the same confidence; that is what lets a pyramid add recall without adding
as many false masks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from worker.engine.detections import Detections, fuse_boxes, nms
from worker.engine.detector import has_pixels

# A pass keeps boxes somewhat outside its trusted height range, so that a face at the edge of the range is
# fused with what the neighbouring pass found rather than counted twice.
RANGE_SLACK = 1.5
# Per-pass: the lowest score worth fusing and the overlap that makes two boxes of one pass the same face.
PASS_SCORE_FLOOR = 0.2
PASS_NMS_IOU = 0.4
# Fused boxes under this height (frame pixels) may need more score than the rest (`small_face_margin`): tiny
# boxes are false nearly twice as often (WIDER street dev, thorough at 0.27: 18 % against 10 %) and faces that
# small have a lower coverage target, so a stricter bar there buys larger faces' recall at the same false masks.
SMALL_FACE = 16.0

# (bgr image, score floor) -> (boxes xyxy in that image's pixels, scores)
Runner = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class ScalePass:
    model: str  # registry model name
    scale: float  # resize factor applied to the frame before the model sees it
    min_height: float = 0.0  # trusted range of face heights, in frame pixels
    max_height: float = float("inf")
    weight: float = 1.0
    flip: bool = False  # mirrored left-right: a second opinion with errors of its own, at the cost of a pass
    max_pixels: int | None = None  # shrink the pass to fit this many pixels (frame-size-dependent cost)


def above_threshold(
    boxes: np.ndarray, scores: np.ndarray, threshold: float, small_face_margin: float
) -> np.ndarray:
    """Which fused boxes are kept: score at least `threshold`, plus `small_face_margin` under SMALL_FACE px."""
    heights = boxes[:, 3] - boxes[:, 1]
    return scores >= threshold + np.where(heights < SMALL_FACE, small_face_margin, 0.0)


def pass_scale(scale: float, height: int, width: int, max_pixels: int | None) -> float | None:
    """The factor a pass really runs at: shrunk to fit `max_pixels`; an upscaling pass is skipped when
    that leaves it no larger than the frame, since the 1x pass already sees the frame at that size."""
    if max_pixels is None:
        return scale
    fitted = min(scale, float(np.sqrt(max_pixels / max(height * width, 1))))
    if scale > 1.0 and fitted <= 1.05:
        return None
    return fitted


class FaceEnsemble:
    task = "face"

    def __init__(
        self,
        passes: Sequence[ScalePass],
        runners: dict[str, Runner],
        *,
        preset: str,
        score_threshold: float,
        padding: tuple[float, float],
        fusion_iou: float = 0.5,
        small_face_margin: float = 0.0,
        max_pass_pixels: int = 3840 * 2160,
    ) -> None:
        if not passes:
            raise ValueError("a face ensemble needs at least one pass")
        missing = {p.model for p in passes} - runners.keys()
        if missing:
            raise ValueError(f"no runner for models {sorted(missing)}")
        self.passes = tuple(passes)
        self.runners = runners
        self.preset = preset
        self.score_threshold = score_threshold
        self.padding = padding
        self.fusion_iou = fusion_iou
        self.small_face_margin = small_face_margin
        self.max_pass_pixels = max_pass_pixels

    @property
    def model_names(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.model for p in self.passes))

    def operating_point(self) -> dict[str, Any]:
        return {
            "preset": self.preset,
            "passes": [
                {**asdict(p), "max_height": None if p.max_height == float("inf") else p.max_height}
                for p in self.passes
            ],
            "fusion": "weighted_box_fusion",
            "fusion_iou": self.fusion_iou,
            "score_threshold": self.score_threshold,
            "small_face_margin": self.small_face_margin,
            "padding": {"width": self.padding[0], "height": self.padding[1]},
            "max_pass_pixels": self.max_pass_pixels,
        }

    def detect(self, bgr: np.ndarray, *, score_threshold: float | None = None) -> Detections:
        """Faces in a BGR uint8 image. `score_threshold` overrides the preset's for this call; it applies to
        the fused score, which is lower than a single model's for a face only some passes found, and boxes
        under SMALL_FACE px need `small_face_margin` more either way."""
        if not has_pixels(bgr):
            return Detections.empty()
        h, w = bgr.shape[:2]
        boxes, scores, sources = [], [], []
        for index, spec in enumerate(self.passes):
            found = self._run_pass(spec, bgr)
            if found is not None:
                boxes.append(found[0])
                scores.append(found[1])
                sources.append(np.full(len(found[1]), index))
        if not boxes:
            return Detections.empty()
        fused, per_pass = fuse_boxes(
            np.concatenate(boxes), np.concatenate(scores), np.concatenate(sources),
            n_sources=len(self.passes), iou_threshold=self.fusion_iou,
        )
        final = self._score(fused, per_pass)
        np.clip(fused[:, 0::2], 0, w, out=fused[:, 0::2])
        np.clip(fused[:, 1::2], 0, h, out=fused[:, 1::2])
        threshold = self.score_threshold if score_threshold is None else score_threshold
        # Judged on the clipped box: its height in the frame is what decides the small-face margin.
        keep = above_threshold(fused, final, threshold, self.small_face_margin)
        keep &= (fused[:, 2] > fused[:, 0]) & (fused[:, 3] > fused[:, 1])
        fused, final = fused[keep], final[keep]
        order = np.argsort(-final, kind="stable")
        return Detections(fused[order], final[order], np.full(len(order), self.task))

    def _run_pass(self, spec: ScalePass, bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        h, w = bgr.shape[:2]
        # Upscaling passes always have a budget: 2x of a large photo would need gigabytes.
        budget = spec.max_pixels if spec.max_pixels is not None else (
            self.max_pass_pixels if spec.scale > 1.0 else None)
        scale = pass_scale(spec.scale, h, w, budget)
        if scale is None:
            return None
        image = bgr
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            # Area averaging only pays for itself on strong shrinking; at 1080p it would cost 9 ms a frame.
            interpolation = cv2.INTER_AREA if scale < 0.5 else cv2.INTER_LINEAR
            image = cv2.resize(bgr, size, interpolation=interpolation)
        if spec.flip:
            image = np.ascontiguousarray(image[:, ::-1])
        boxes, scores = self.runners[spec.model](image, PASS_SCORE_FLOOR)
        keep = nms(boxes, scores, PASS_NMS_IOU)
        boxes, scores = boxes[keep], scores[keep]
        if spec.flip:
            mirrored_x = image.shape[1] - boxes[:, [2, 0]]
            boxes = np.column_stack([mirrored_x[:, 0], boxes[:, 1], mirrored_x[:, 1], boxes[:, 3]])
        # Map back with the per-axis factor actually applied, which rounding makes differ slightly.
        boxes = boxes / np.array([image.shape[1] / w, image.shape[0] / h] * 2, np.float32)
        heights = boxes[:, 3] - boxes[:, 1]
        near = (heights >= spec.min_height / RANGE_SLACK) & (heights < spec.max_height * RANGE_SLACK)
        return boxes[near], scores[near]

    def _score(self, boxes: np.ndarray, per_pass: np.ndarray) -> np.ndarray:
        heights = (boxes[:, 3] - boxes[:, 1])[:, None]
        low = np.array([p.min_height for p in self.passes])[None]
        high = np.array([p.max_height for p in self.passes])[None]
        trusted = (heights >= low) & (heights < high)
        weights = trusted * np.array([p.weight for p in self.passes])[None]
        total = weights.sum(axis=1)
        # A box whose height no pass trusts (e.g. tiny boxes from the 1x pass only) gets score 0.
        return np.divide((per_pass * weights).sum(axis=1), total, out=np.zeros(len(boxes)), where=total > 0)
