"""Plate proposals from a DB (differentiable binarisation) text detector, e.g. PP-OCRv6 det.

The network maps a normalised image to a per-pixel text probability map at input resolution. Text regions are
the connected components of the thresholded map; each is scored by its mean probability and grown back out
("unclipped") because DB is trained on shrunk text polygons. This mirrors the Apache-2.0 postprocess in
rapidocr 3.10.0 (ch_ppocr_det/utils.py), written with numpy/cv2 only and axis-aligned boxes, since masking
needs rectangles anyway.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np
import onnxruntime as ort

from worker.engine.blob import planar_blob

STRIDE = 32  # the network's input sides must be multiples of this


@dataclass(frozen=True)
class DBParams:
    bin_threshold: float = 0.3  # pixel probability that counts as text
    box_threshold: float = 0.3  # mean probability inside a region to keep it (rapidocr's default 0.5)
    unclip_ratio: float = 1.6  # DB shrinks labels by area * (1 - 0.4**2) / perimeter; this grows them back
    min_side: float = 3.0  # shorter side, in map pixels, of a region worth keeping
    max_candidates: int = 1000


def normalise(bgr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (1, 3, H, W) float32 in [-1, 1] (PaddleOCR det: mean 0.5, std 0.5)."""
    return planar_blob(bgr, scale=2.0 / 255.0, shift=-1.0)


def boxes_from_probability(prob: np.ndarray, params: DBParams) -> tuple[np.ndarray, np.ndarray]:
    """Axis-aligned boxes (N, 4) xyxy in map pixels and their mean-probability scores (N,)."""
    # rapidocr's use_dilation: a 2x2 dilation joins characters that the threshold split apart.
    mask: np.ndarray = cv2.dilate((prob > params.bin_threshold).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    h, w = prob.shape
    boxes, scores = [], []
    for contour in contours[: params.max_candidates]:
        (cx, cy), (rw, rh), _angle = cv2.minAreaRect(contour)
        if min(rw, rh) < params.min_side:
            continue
        x, y, bw, bh = cv2.boundingRect(contour)
        region = np.zeros((bh, bw), np.uint8)
        cv2.drawContours(region, [contour - np.array([x, y])], -1, 1, thickness=cv2.FILLED)
        score = float(cv2.mean(prob[y : y + bh, x : x + bw], region)[0])
        if score < params.box_threshold:
            continue
        # Polygon offset distance from rapidocr's unclip, applied to the axis-aligned extent of the region.
        distance = rw * rh * params.unclip_ratio / (2.0 * (rw + rh))
        x1 = max(x - distance, 0.0)
        y1 = max(y - distance, 0.0)
        x2 = min(x + bw + distance, float(w))
        y2 = min(y + bh + distance, float(h))
        boxes.append((x1, y1, x2, y2))
        scores.append(score)
    if not boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.asarray(boxes, np.float32), np.asarray(scores, np.float32)


def tiles(height: int, width: int, tile: int, overlap: int) -> Iterator[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) windows of at most `tile` pixels a side covering the image, overlapping by `overlap`."""
    step = max(tile - overlap, STRIDE)
    ys = list(range(0, max(height - tile, 0) + 1, step))
    xs = list(range(0, max(width - tile, 0) + 1, step))
    if ys[-1] + tile < height:
        ys.append(height - tile)
    if xs[-1] + tile < width:
        xs.append(width - tile)
    for y0 in ys:
        for x0 in xs:
            yield y0, x0, min(y0 + tile, height), min(x0 + tile, width)


def pad_to_stride(bgr: np.ndarray) -> np.ndarray:
    # Replicated edge pixels rather than black: a black band makes a high-contrast edge the detector reads
    # as text (on a flat grey frame it proposed the whole frame).
    h, w = bgr.shape[:2]
    return cv2.copyMakeBorder(bgr, 0, -h % STRIDE, 0, -w % STRIDE, cv2.BORDER_REPLICATE)


class TextProposer:
    """Runs a DB text detector on a rescaled, tiled frame and returns text boxes in frame pixels."""

    def __init__(self, session: ort.InferenceSession, params: DBParams | None = None) -> None:
        self.session = session
        self.params = params or DBParams()
        self._input = session.get_inputs()[0].name

    def probability(self, bgr: np.ndarray) -> np.ndarray:
        """Text probability map (H, W) for a BGR image whose sides are multiples of STRIDE."""
        out = self.session.run(None, {self._input: normalise(bgr)})[0]
        return np.asarray(out[0, 0], dtype=np.float32)

    def propose(self, bgr: np.ndarray, scale: float, tile: int, overlap: int) -> tuple[np.ndarray, np.ndarray]:
        h, w = bgr.shape[:2]
        sh, sw = max(round(h * scale), 1), max(round(w * scale), 1)
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        scaled = bgr if (sh, sw) == (h, w) else cv2.resize(bgr, (sw, sh), interpolation=interp)
        all_boxes, all_scores = [], []
        for y0, x0, y1, x1 in tiles(sh, sw, tile, overlap):
            crop = scaled[y0:y1, x0:x1]
            prob = self.probability(pad_to_stride(crop))[: y1 - y0, : x1 - x0]
            boxes, scores = boxes_from_probability(prob, self.params)
            if len(boxes):
                all_boxes.append(boxes + np.array([x0, y0, x0, y0], np.float32))
                all_scores.append(scores)
        if not all_boxes:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        boxes = np.concatenate(all_boxes) / np.float32(scale)
        return boxes.astype(np.float32), np.concatenate(all_scores)
