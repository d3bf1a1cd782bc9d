"""Follow-up looks at part of a frame: the regions around the tracks that ask for the next frame.

Between a video's full-frame looks (its cadence), a track that is new, was missed or moves fast asks for the
next frame to be looked at (FaceTracker.asking). Looking only around those tracks costs a small share of a
full look: on a 1280x720 dashcam clip a plate look took 4.4 ms against 68 ms for the whole frame (two network
scales, inside the running pipeline). Objects that appear elsewhere meanwhile are found at the next full look,
and the tracker's lead frames (>= cadence - 1) carry them back over the frames before it, as they do on
skipped frames.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from worker.engine.detections import Detections
from worker.engine.video.stages import rotate_for_display, unrotate_boxes

# Each side of a tracked box grows by this many times the box's larger side: room for the prediction to be off
# and context for the detector (a face or plate cut by the region's edge is found badly or not at all).
MARGIN = 1.0
# The smallest region side in pixels, for the same context around small boxes.
MIN_SIDE = 128
# Region corners lie on this grid of the frame: the detectors' networks downsample by up to 32, and a region
# that starts off that grid shows them the objects at another phase than a whole-frame pass at the same scale
# (a plate the plate network scored 0.17 on the whole frame scored 0.12 in a region 6 px off the grid).
GRID = 32
# Regions covering more than this share of the frame: a full look costs about the same and sees everything.
FULL_SHARE = 0.5


def look_regions(boxes: np.ndarray, width: int, height: int, scale: float = 1.0) -> np.ndarray | None:
    """Integer xyxy regions (M, 4) that cover `boxes` (predicted xyxy) with their margin, inside the frame,
    overlapping ones merged; None when they would cover more than FULL_SHARE of the frame. `scale`: the factor
    the regions will be resized by before detection (their corners then lie on GRID after resizing)."""
    grid = max(1, round(GRID / scale))
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if not len(b):
        return np.zeros((0, 4), np.int64)
    side = np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]).clip(min=1.0)
    half_w = np.maximum((b[:, 2] - b[:, 0]) / 2 + MARGIN * side, MIN_SIDE / 2)
    half_h = np.maximum((b[:, 3] - b[:, 1]) / 2 + MARGIN * side, MIN_SIDE / 2)
    cx, cy = (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2
    regions = [_inside(x - hw, y - hh, x + hw, y + hh, width, height, grid)
               for x, y, hw, hh in zip(cx, cy, half_w, half_h, strict=True)]
    merged = _merge([r for r in regions if r is not None])
    area = sum((x2 - x1) * (y2 - y1) for x1, y1, x2, y2 in merged)
    if area > FULL_SHARE * width * height:
        return None
    return np.array(merged, dtype=np.int64).reshape(-1, 4)


def _inside(x1: float, y1: float, x2: float, y2: float, width: int, height: int,
            grid: int) -> tuple[int, ...] | None:
    """The region shifted (not shrunk) to lie inside the frame where it fits, else clipped, and grown to the
    grid; None if empty."""
    dx = max(0.0, -x1) - max(0.0, x2 - width)
    dy = max(0.0, -y1) - max(0.0, y2 - height)
    x1, x2, y1, y2 = x1 + dx, x2 + dx, y1 + dy, y2 + dy
    box = (max(0, int(x1 // grid) * grid), max(0, int(y1 // grid) * grid),
           min(width, -int(-x2 // grid) * grid), min(height, -int(-y2 // grid) * grid))
    return box if box[2] > box[0] and box[3] > box[1] else None


def _merge(regions: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    """Overlapping regions replaced by their bounding box until none overlap (a box seen whole, not in parts)."""
    out = list(regions)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                a, b = out[i], out[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    out[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def detect_in_regions(detect: Callable[[np.ndarray], Detections], crop: Callable[[int, int, int, int], np.ndarray],
                      regions: np.ndarray, rotation: int, scale: float = 1.0) -> Detections:
    """`detect` run on each region of the stored frame (`crop(x1, y1, x2, y2)` gives it in BGR) as a player
    shows it (`rotation`), resized by `scale` (the detector's own whole-frame scale, so that it sees objects
    at the size it found them), its boxes mapped back into stored-frame coordinates."""
    parts = []
    for x1, y1, x2, y2 in regions.tolist():
        shown = rotate_for_display(crop(x1, y1, x2, y2), rotation)
        if scale != 1.0:
            h, w = shown.shape[:2]
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            shown = cv2.resize(shown, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        found = detect(shown)
        boxes = unrotate_boxes(found.boxes / scale, rotation, x2 - x1, y2 - y1)
        boxes = boxes + np.array([x1, y1, x1, y1], np.float64)
        parts.append(Detections(boxes, found.scores, found.labels))
    if not parts:
        return Detections.empty()
    return Detections(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                      np.concatenate([p.labels for p in parts]))
