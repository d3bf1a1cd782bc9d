"""Training crops for the plate detector and their centre-point targets.

Each sample is a square crop of one training photo at a random scale (so the same plate is seen from 5 to
over 60 px high), centred near a labelled plate most of the time, flipped half the time, with synthetic
plates pasted in about half the crops, then the photometric augmentation of augment.py. Targets follow
CenterNet at stride 4 with an elliptical Gaussian per plate (TTFNet's shape-aware variant: plates are wide).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.plates.augment import augment
from training.plates.synthetic import paste_plate, render_plate
from worker.engine.plates.centre_net import STRIDE

MIN_VISIBLE = 0.6  # share of a cut plate's area that must stay in the crop for it to count as a plate


@dataclass(frozen=True)
class SampleConfig:
    size: int = 512
    min_scale: float = 0.3
    max_scale: float = 1.6
    near_plate: float = 0.75  # share of crops centred near a labelled plate
    synthetic: float = 0.5  # share of crops with synthetic plates pasted in
    synthetic_heights: tuple[float, float] = (5.0, 48.0)


def _crop(bgr: np.ndarray, boxes: np.ndarray, cfg: SampleConfig, rng: np.random.Generator):
    h, w = bgr.shape[:2]
    # Not much smaller than the whole photo filling the crop: padding teaches nothing about plates.
    low = max(cfg.min_scale, min(0.75 * cfg.size / max(h, w), 1.0))
    scale = float(np.exp(rng.uniform(np.log(low), np.log(max(cfg.max_scale, low)))))
    side = cfg.size / scale  # crop side in source pixels
    if len(boxes) and rng.random() < cfg.near_plate:
        b = boxes[int(rng.integers(len(boxes)))]
        cx = (b[0] + b[2]) / 2 + rng.uniform(-0.4, 0.4) * side
        cy = (b[1] + b[3]) / 2 + rng.uniform(-0.4, 0.4) * side
    else:
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
    # Keep the crop inside the photo where it fits: padding teaches nothing about plates.
    x0 = float(np.clip(cx - side / 2, 0, w - side)) if side < w else (w - side) / 2
    y0 = float(np.clip(cy - side / 2, 0, h - side)) if side < h else (h - side) / 2
    # One affine warp does crop, scale and padding; area-averaging first when shrinking a lot avoids the
    # aliasing that would make small plates look unlike what a resized video frame shows.
    src = bgr
    factor = 1.0
    if scale < 0.5:
        factor = 2.0 if scale >= 0.25 else 4.0
        src = cv2.resize(bgr, (max(int(w / factor), 1), max(int(h / factor), 1)), interpolation=cv2.INTER_AREA)
    s = scale * factor
    matrix = np.float32([[s, 0, -x0 * scale], [0, s, -y0 * scale]])
    fill = tuple(int(v) for v in rng.integers(0, 255, 3))
    out = cv2.warpAffine(src, matrix, (cfg.size, cfg.size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=fill)
    moved = (boxes - np.float32([x0, y0, x0, y0])) * scale
    return out, moved


def _visible(boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Clipped boxes and whether enough of each stays in the crop to count (the rest become ignore)."""
    clipped = np.clip(boxes, 0, size)
    area = np.clip((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]), 1e-6, None)
    inside = (clipped[:, 2] - clipped[:, 0]).clip(0) * (clipped[:, 3] - clipped[:, 1]).clip(0)
    return clipped, inside / area


def make_sample(bgr: np.ndarray, boxes: np.ndarray, cfg: SampleConfig, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(crop uint8 size x size x 3, plate boxes (K, 4), ignore regions (M, 4)) in crop pixels."""
    crop, moved = _crop(bgr, boxes.astype(np.float32).reshape(-1, 4), cfg, rng)
    clipped, share = _visible(moved, cfg.size)
    keep = share >= MIN_VISIBLE
    plates, ignore = clipped[keep], clipped[(share > 0) & ~keep]
    if rng.random() < 0.5:
        crop = np.ascontiguousarray(crop[:, ::-1])
        flip = lambda b: np.stack([cfg.size - b[:, 2], b[:, 1], cfg.size - b[:, 0], b[:, 3]], 1)  # noqa: E731
        plates, ignore = flip(plates), flip(ignore)
    if rng.random() < cfg.synthetic:
        added = []
        for _ in range(int(rng.integers(1, 4))):
            height = float(np.exp(rng.uniform(*np.log(cfg.synthetic_heights))))
            plate = render_plate(int(round(height)), rng)
            centre = (float(rng.uniform(0, cfg.size)), float(rng.uniform(0, cfg.size)))
            box = paste_plate(crop, plate, centre, rng)
            if box is not None:
                added.append(box)
        if added:
            plates = np.concatenate([plates.reshape(-1, 4), np.stack(added)])
    return augment(crop, rng), plates.reshape(-1, 4).astype(np.float32), ignore.reshape(-1, 4).astype(np.float32)


def targets(plates: np.ndarray, ignore: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """CenterNet targets at stride 4: heat (1, S, S), box (4, S, S), box_mask (S, S), weight (S, S)."""
    s = size // STRIDE
    heat = np.zeros((s, s), np.float32)
    box = np.zeros((4, s, s), np.float32)
    box_mask = np.zeros((s, s), np.float32)
    weight = np.ones((s, s), np.float32)
    ys, xs = np.mgrid[0:s, 0:s].astype(np.float32)
    for x1, y1, x2, y2 in ignore / STRIDE:
        weight[int(max(y1, 0)) : int(np.ceil(y2)), int(max(x1, 0)) : int(np.ceil(x2))] = 0.0
    for x1, y1, x2, y2 in plates / STRIDE:
        bw, bh = max(x2 - x1, 0.25), max(y2 - y1, 0.25)
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        ix, iy = min(int(cx), s - 1), min(int(cy), s - 1)
        sx, sy = max(bw / 6, 0.5), max(bh / 6, 0.5)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        np.maximum(heat, g, out=heat)
        heat[iy, ix] = 1.0
        weight[iy, ix] = 1.0
        box[:, iy, ix] = (np.log(bw), np.log(bh), cx - ix, cy - iy)
        box_mask[iy, ix] = 1.0
    return {"heat": heat[None], "box": box, "box_mask": box_mask, "weight": weight}
