"""Fixed-size crops around candidate boxes: the verifier's input, shared by training and inference.

Each candidate is seen through a window CONTEXT times its own size, centred on it, so that a proposal that
covers only part of a plate (DB often splits "AB 123" into two words) still shows the whole plate, and the
verifier can regress the plate's box inside the window. The window is stretched to INPUT_HW whatever its
aspect: the distortion itself tells the network the candidate's shape.
"""

from __future__ import annotations

import cv2
import numpy as np

INPUT_HW = (48, 96)
CONTEXT = 3.0
# Proposals narrower or lower than this (frame pixels) still get a window of this size, so that tiny text
# specks are judged with some surroundings rather than blown up from a handful of pixels.
MIN_WINDOW = (12.0, 24.0)


def windows_for(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) candidate boxes -> (N, 4) xyxy context windows in the same pixel frame."""
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    size = (boxes[:, 2:] - boxes[:, :2]) * CONTEXT
    size = np.maximum(size, np.array([MIN_WINDOW[1], MIN_WINDOW[0]], np.float32))
    return np.concatenate([centre - size / 2, centre + size / 2], axis=1)


def crop_windows(bgr: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 crops of `windows` (rounded to whole pixels); outside the frame is black."""
    out_h, out_w = INPUT_HW
    h, w = bgr.shape[:2]
    crops = np.zeros((len(windows), out_h, out_w, 3), np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(np.round(np.asarray(windows, np.float64)).astype(np.int64)):
        x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
        patch = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
        cx1, cy1, cx2, cy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        if cx2 > cx1 and cy2 > cy1:
            patch[cy1 - y1 : cy2 - y1, cx1 - x1 : cx2 - x1] = bgr[cy1:cy2, cx1:cx2]
        # Area averaging when shrinking: bilinear sampling of a large window would alias plate text.
        shrinking = patch.shape[0] > out_h or patch.shape[1] > out_w
        crops[i] = cv2.resize(patch, (out_w, out_h), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return crops


def to_blob(crops: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1]."""
    x = crops.astype(np.float32) * (2.0 / 255.0) - 1.0
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def boxes_from_window(windows: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Regressed boxes: `rel` (N, 4) are x1, y1, x2, y2 as fractions of each window."""
    windows = np.asarray(windows, np.float32).reshape(-1, 4)
    rel = np.asarray(rel, np.float32).reshape(-1, 4)
    size = windows[:, 2:] - windows[:, :2]
    return np.concatenate([windows[:, :2] + rel[:, :2] * size, windows[:, :2] + rel[:, 2:] * size], axis=1)


def window_targets(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Inverse of boxes_from_window: `boxes` as fractions of `windows` (the regression targets)."""
    windows = np.asarray(windows, np.float32).reshape(-1, 4)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    size = windows[:, 2:] - windows[:, :2]
    return np.concatenate([(boxes[:, :2] - windows[:, :2]) / size, (boxes[:, 2:] - windows[:, :2]) / size], axis=1)
