"""Runs Veil's plate detector (`plate_detector_v1`, a centre-point network) on a whole frame.

The ONNX graph returns centre probabilities with non-peaks already zeroed and, per stride-4 cell, the box's
log width and height (in cells) and the centre's offset in the cell (training/plates/detector_model.py), so
decoding is a threshold and a gather. The frame is scaled by the caller's factor (the plate detector picks
it from its operating point) and padded to a multiple of 32 with mid-grey, the network's zero.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnxruntime as ort

from worker.engine.blob import planar_blob
from worker.engine.detections import Detections, nms
from worker.engine.detector import has_pixels

STRIDE = 4
MULTIPLE = 32


def to_input(bgr: np.ndarray, scale: float) -> np.ndarray:
    """(1, 3, H', W') float32 in [-1, 1]: the frame resized by `scale`, padded right and bottom."""
    h, w = bgr.shape[:2]
    nh, nw = max(int(round(h * scale)), 1), max(int(round(w * scale)), 1)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = bgr if (nh, nw) == (h, w) else cv2.resize(bgr, (nw, nh), interpolation=interp)
    return planar_blob(resized, multiple=MULTIPLE, scale=1 / 127.5, shift=-1.0)


def decode(peaks: np.ndarray, box: np.ndarray, threshold: float, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (N, 4) in frame pixels and scores (N,) of the peaks at or above `threshold`."""
    heat = peaks[0, 0]
    ys, xs = np.nonzero(heat >= threshold)
    scores = heat[ys, xs].astype(np.float32)
    log_w, log_h, off_x, off_y = box[0][:, ys, xs]
    cx, cy = (xs + off_x) * STRIDE, (ys + off_y) * STRIDE
    bw, bh = np.exp(log_w) * STRIDE, np.exp(log_h) * STRIDE
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], axis=1) / scale
    return boxes.astype(np.float32), scores


class CentreNetPlates:
    """Plate boxes from one pass of the centre-point network over the frame."""

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self._input = session.get_inputs()[0].name

    def detect(self, bgr: np.ndarray, *, scale: float, threshold: float, nms_threshold: float) -> Detections:
        """Plates in `bgr` (frame pixels), the network run on the frame resized by `scale`."""
        if not has_pixels(bgr):
            return Detections.empty()
        h, w = bgr.shape[:2]
        peaks, box = self.session.run(None, {self._input: to_input(bgr, scale)})
        boxes, scores = decode(np.asarray(peaks), np.asarray(box), threshold, scale)
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[visible], scores[visible]
        kept = nms(boxes, scores, nms_threshold)
        return Detections(boxes[kept], scores[kept], np.full(len(kept), "plate"))
