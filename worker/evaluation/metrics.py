"""Detection quality for one class over a set of images: coverage recall, recall, precision, AP50, false masks.

Definitions (issue #3):
- C80: share of counted (not ignored) labelled boxes at least 80 % covered by the union of the masks drawn
  (the padded int boxes), whichever detection or class produced them. A mask is what hides a face or plate,
  so this is the figure privacy depends on; the IoU figures judge the detector.
- Recall and precision at IoU 0.5 with COCO's greedy matching: detections by falling score, each takes the
  unmatched labelled box it overlaps most (counted boxes before ignored ones). A detection matched to an
  ignored box is neither a true nor a false positive.
- AP50: area under the precision-recall curve with precision made monotone (all-point interpolation).
- False mask: a detection whose IoU with every labelled box (of any class, ignored ones included) is below
  0.3: it masks background, not a face or plate that is merely badly framed.
- Size buckets by labelled box height (px). Within a bucket, as in COCO's area ranges, boxes of other sizes
  count as ignored, and an unmatched detection of another size is ignored too; false masks are bucketed by
  the detection's own height.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from numpy.typing import ArrayLike

MATCH_IOU = 0.5
FALSE_MASK_IOU = 0.3
COVERED_FRACTION = 0.8
SIZE_BUCKETS: dict[str, tuple[float, float]] = {
    "<16": (0.0, 16.0),
    "16-32": (16.0, 32.0),
    "32-64": (32.0, 64.0),
    ">=64": (64.0, float("inf")),
}

TP, FP, IGNORED = 1, 0, -1


@dataclass(frozen=True)
class ClassSample:
    """One image, one class: labelled boxes, the detector's boxes for that class, and every mask drawn."""

    truth: np.ndarray  # (N, 4) xyxy
    ignore: np.ndarray  # (N,) bool
    boxes: np.ndarray  # (D, 4) xyxy detections of this class
    scores: np.ndarray  # (D,)
    masks: np.ndarray  # (M, 4) int xyxy: all masks drawn on the image, of any class
    other_truth: np.ndarray  # (K, 4) xyxy labelled boxes of the other classes: a mask on them is not false

    @classmethod
    def of(cls, truth: ArrayLike, ignore: ArrayLike, boxes: ArrayLike, scores: ArrayLike, masks: ArrayLike,
           other_truth: ArrayLike = ()) -> ClassSample:
        return cls(np.asarray(truth, np.float64).reshape(-1, 4), np.asarray(ignore, bool).reshape(-1),
                   np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64).reshape(-1),
                   np.asarray(masks, np.float64).reshape(-1, 4), np.asarray(other_truth, np.float64).reshape(-1, 4))


@dataclass
class ClassMetrics:
    images: int
    counted: int  # labelled boxes that count (not ignored)
    detections: int
    true_positives: int
    false_positives: int
    c80: float | None
    recall: float | None
    precision: float | None
    ap50: float | None
    false_masks: int
    false_masks_per_image: float | None
    # The precision-recall curve behind AP50 (for plots); not part of the table.
    curve_recall: list[float] = field(default_factory=list, repr=False)
    curve_precision: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, *, curve: bool = False) -> dict[str, object]:
        out = asdict(self)
        if not curve:
            out.pop("curve_recall")
            out.pop("curve_precision")
        return out


def iou_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def coverage(truth: ArrayLike, masks: ArrayLike) -> np.ndarray:
    """Fraction of each labelled box's area inside the union of `masks`, exactly (no rasterising at a scale).

    The box is cut into the cells that all mask edges inside it make; a cell is covered or not as a whole.
    """
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    masks = np.asarray(masks, np.float64).reshape(-1, 4)
    out = np.zeros(len(truth))
    for i, (x1, y1, x2, y2) in enumerate(truth):
        area = (x2 - x1) * (y2 - y1)
        if area <= 0 or not len(masks):
            continue
        clipped = np.stack([np.clip(masks[:, 0], x1, x2), np.clip(masks[:, 1], y1, y2),
                            np.clip(masks[:, 2], x1, x2), np.clip(masks[:, 3], y1, y2)], axis=1)
        clipped = clipped[(clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])]
        if not len(clipped):
            continue
        xs = np.unique(np.concatenate([[x1, x2], clipped[:, 0], clipped[:, 2]]))
        ys = np.unique(np.concatenate([[y1, y2], clipped[:, 1], clipped[:, 3]]))
        cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
        inside_x = (clipped[:, 0, None] <= cx) & (cx < clipped[:, 2, None])  # (M, nx)
        inside_y = (clipped[:, 1, None] <= cy) & (cy < clipped[:, 3, None])  # (M, ny)
        covered = (inside_y[:, :, None] & inside_x[:, None, :]).any(axis=0)  # (ny, nx)
        cell_area = np.diff(ys)[:, None] * np.diff(xs)[None, :]
        out[i] = float((cell_area * covered).sum() / area)
    return out


def coverage_from_pixels(truth: ArrayLike, masked: np.ndarray) -> np.ndarray:
    """Coverage measured on an output image: the share of each labelled box's pixels flagged in `masked` (H, W).

    With a solid mask and a lossless format every pixel outside the masks is the input's, so `masked` can be
    "output differs from input, or equals the mask colour", and this agrees with coverage() on whole pixels.
    """
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    h, w = masked.shape[:2]
    out = np.zeros(len(truth))
    for i, (x1, y1, x2, y2) in enumerate(np.rint(truth).astype(np.int64)):
        xa, ya, xb, yb = max(0, x1), max(0, y1), min(w, x2), min(h, y2)
        area = (x2 - x1) * (y2 - y1)
        if area > 0 and xb > xa and yb > ya:
            out[i] = float(masked[ya:yb, xa:xb].sum() / area)
    return out


def match(boxes: ArrayLike, scores: ArrayLike, truth: ArrayLike, ignore: ArrayLike,
          iou_threshold: float = MATCH_IOU) -> tuple[np.ndarray, np.ndarray]:
    """COCO greedy matching. Returns (state per detection: TP, FP or IGNORED; matched flag per labelled box)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    ignore = np.asarray(ignore, bool).reshape(-1)
    state = np.full(len(boxes), FP, dtype=np.int8)
    taken = np.zeros(len(truth), dtype=bool)
    if not len(boxes) or not len(truth):
        return state, taken
    ious = iou_matrix(boxes, truth)
    for d in np.argsort(-np.asarray(scores), kind="stable"):
        best = -1
        for group in (~ignore, ignore):  # a counted box wins over an ignored one, whatever their IoUs
            candidates = np.where(group & ~taken & (ious[d] >= iou_threshold))[0]
            if len(candidates):
                best = int(candidates[np.argmax(ious[d, candidates])])
                break
        if best >= 0:
            taken[best] = True
            state[d] = IGNORED if ignore[best] else TP
    return state, taken & ~ignore


def false_masks(boxes: ArrayLike, truth: ArrayLike, iou_threshold: float = FALSE_MASK_IOU) -> np.ndarray:
    """Per detection: True when its IoU with every labelled box (ignored ones included) is below the threshold."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    if not len(truth):
        return np.ones(len(boxes), dtype=bool)
    return iou_matrix(boxes, truth).max(axis=1) < iou_threshold


def precision_recall_curve(scores: ArrayLike, states: ArrayLike, counted: int) -> tuple[np.ndarray, np.ndarray]:
    """(recall, precision) after each scored detection, highest score first; ignored detections dropped."""
    keep = states != IGNORED
    order = np.argsort(-np.asarray(scores)[keep], kind="stable")
    hits = (np.asarray(states)[keep][order] == TP).astype(np.float64)
    tp = np.cumsum(hits)
    precision = tp / np.arange(1, len(hits) + 1)
    recall = tp / counted if counted else np.zeros_like(tp)
    return recall, precision


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """All-point interpolated AP: sum over recall steps of the best precision at that recall or beyond."""
    r = np.concatenate([[0.0], recall])
    p = np.maximum.accumulate(np.concatenate([[0.0], precision])[::-1])[::-1]
    return float(np.sum(np.diff(r) * p[1:]))


def _heights(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, 3] - boxes[:, 1]


def _in(heights: np.ndarray, bucket: tuple[float, float] | None) -> np.ndarray:
    if bucket is None:
        return np.ones(len(heights), dtype=bool)
    return (heights >= bucket[0]) & (heights < bucket[1])


def class_metrics(samples: Sequence[ClassSample], bucket: tuple[float, float] | None = None) -> ClassMetrics:
    """Every figure for one class over `samples`, optionally restricted to a [low, high) box-height bucket."""
    all_scores, all_states = [], []
    counted = covered = false = 0
    for s in samples:
        ignore = s.ignore | ~_in(_heights(s.truth), bucket)
        state, _ = match(s.boxes, s.scores, s.truth, ignore)
        # COCO's area-range rule: a miss outside the bucket belongs to another bucket.
        state[(state == FP) & ~_in(_heights(s.boxes), bucket)] = IGNORED
        all_scores.append(s.scores)
        all_states.append(state)
        counted += int((~ignore).sum())
        covered += int((coverage(s.truth[~ignore], s.masks) >= COVERED_FRACTION).sum())
        labelled = np.concatenate([s.truth, s.other_truth])
        false += int((false_masks(s.boxes, labelled) & _in(_heights(s.boxes), bucket)).sum())
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    states = np.concatenate(all_states) if all_states else np.zeros(0, np.int8)
    tp, fp = int((states == TP).sum()), int((states == FP).sum())
    recall_curve, precision_curve = precision_recall_curve(scores, states, counted)
    n = len(samples)
    return ClassMetrics(
        images=n,
        counted=counted,
        detections=tp + fp,
        true_positives=tp,
        false_positives=fp,
        c80=covered / counted if counted else None,
        recall=tp / counted if counted else None,
        precision=tp / (tp + fp) if tp + fp else None,
        ap50=average_precision(recall_curve, precision_curve) if counted else None,
        false_masks=false,
        false_masks_per_image=false / n if n else None,
        curve_recall=[round(float(v), 5) for v in recall_curve],
        curve_precision=[round(float(v), 5) for v in precision_curve],
    )


def metrics_by_size(samples: Sequence[ClassSample]) -> dict[str, ClassMetrics]:
    """class_metrics for all sizes ("all") and for each SIZE_BUCKETS entry."""
    out = {"all": class_metrics(samples)}
    out.update({name: class_metrics(samples, bucket) for name, bucket in SIZE_BUCKETS.items()})
    return out
