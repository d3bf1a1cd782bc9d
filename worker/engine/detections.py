"""Detector output as plain arrays, plus greedy non-maximum suppression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True, eq=False)
class Detections:
    """N detections: `boxes` (N, 4) float32 x1, y1, x2, y2 in pixels of the image given to the detector,
    `scores` (N,) float32 and `labels` (N,) str array ("face", ...)."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        labels = np.asarray(self.labels, dtype=str).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError("boxes, scores and labels must have the same length")
        # Read-only arrays make the frozen dataclass honestly immutable, not just its attribute bindings.
        for name, arr in (("boxes", boxes), ("scores", scores), ("labels", labels)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)

    def __len__(self) -> int:
        return len(self.scores)

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, dtype=str))

    def select(self, index: np.ndarray) -> Detections:
        """A subset by boolean mask or integer indices."""
        return Detections(self.boxes[index], self.scores[index], self.labels[index])

    def to_list(self) -> list[dict[str, Any]]:
        return [
            {
                "label": str(label),
                "score": round(float(score), 4),
                "box": [round(float(v), 1) for v in box],
            }
            for box, score, label in zip(self.boxes, self.scores, self.labels, strict=True)
        ]


def box_area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[..., 2] - boxes[..., 0], 0, None) * np.clip(boxes[..., 3] - boxes[..., 1], 0, None)


def iou_one_to_many(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = box_area(box) + box_area(boxes) - inter
    return np.divide(inter, union, out=np.zeros_like(inter, dtype=np.float64), where=union > 0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy NMS: indices of kept boxes, highest score first. One vectorised IoU row per kept box."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep: list[int] = []
    while order.size:
        best = order[0]
        keep.append(int(best))
        rest = order[1:]
        order = rest[iou_one_to_many(boxes[best], boxes[rest]) <= iou_threshold]
    return np.asarray(keep, dtype=np.int64)


def fuse_boxes(
    boxes: np.ndarray, scores: np.ndarray, sources: np.ndarray, *, n_sources: int, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Cluster detections of several sources (models, scales, tiles) and fuse each cluster into one box.

    Clusters are formed greedily like NMS: the highest-scoring unassigned box takes every unassigned box
    whose IoU with it exceeds `iou_threshold`. The fused box is the score-weighted mean of its cluster
    (Solovyev et al., "Weighted boxes fusion", 2021), so boxes that several passes agree on are averaged
    rather than the single top one kept.

    `sources` (N,) holds integer source indices below `n_sources`. Returns the fused boxes (M, 4) and each
    source's best score in each cluster (M, n_sources), 0 where a source found nothing there.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    sources = np.asarray(sources, dtype=np.int64).reshape(-1)
    if not len(boxes) == len(scores) == len(sources):
        raise ValueError("boxes, scores and sources must have the same length")
    if len(boxes) and (sources.min() < 0 or sources.max() >= n_sources):
        raise ValueError("a source index is outside 0..n_sources-1")
    fused_boxes: list[np.ndarray] = []
    source_scores: list[np.ndarray] = []
    order = np.argsort(-scores, kind="stable")
    while order.size:
        overlap = iou_one_to_many(boxes[order[0]], boxes[order]) > iou_threshold
        overlap[0] = True
        members, order = order[overlap], order[~overlap]
        w = scores[members]
        fused_boxes.append((boxes[members] * w[:, None]).sum(axis=0) / max(w.sum(), 1e-12))
        best = np.zeros(n_sources)
        np.maximum.at(best, sources[members], w)
        source_scores.append(best)
    if not fused_boxes:
        return np.zeros((0, 4), np.float32), np.zeros((0, n_sources), np.float32)
    return np.asarray(fused_boxes, np.float32), np.asarray(source_scores, np.float32)


def weighted_box_fusion(
    boxes: np.ndarray,
    scores: np.ndarray,
    sources: np.ndarray,
    *,
    source_weights: np.ndarray,
    iou_threshold: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted box fusion (see fuse_boxes) scored by the weighted mean over all sources of each source's
    best score, a source that found nothing counting 0: an object several sources agree on outranks one
    that a single source found with the same confidence. Returns (boxes (M, 4), scores (M,)), best first.
    """
    weights = np.asarray(source_weights, dtype=np.float64).reshape(-1)
    fused, per_source = fuse_boxes(boxes, scores, sources, n_sources=len(weights), iou_threshold=iou_threshold)
    fused_scores = (per_source @ weights / weights.sum()).astype(np.float32)
    rank = np.argsort(-fused_scores, kind="stable")
    return fused[rank], fused_scores[rank]
