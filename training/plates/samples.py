"""Verifier training samples: context-window crops labelled plate / not plate, with the plate box inside.

Positives are labelled plates, jittered the way text proposals miss them (shifted, resized, or only one
word of a split plate), plus the real text proposals that land on a plate. Negatives are the text proposals
that touch no plate (the text detector's own false alarms: signs, stickers, lettering) and random boxes of
plate-like size. Proposals that half-touch a plate are left out: neither label would be honest for them.
"""

from __future__ import annotations

import numpy as np

from worker.engine.plates.crops import crop_windows, window_targets, windows_for


def _inter_over_first(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) intersection area divided by the area of each box in `a`."""
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = np.clip((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6, None)
    return inter / area[:, None]


def jittered_plates(plates: np.ndarray, rng: np.random.Generator, per_plate: int) -> tuple[np.ndarray, np.ndarray]:
    """(candidate boxes, plate each one should regress to), `per_plate` candidates per plate."""
    plates = np.repeat(plates, per_plate, axis=0)
    size = plates[:, 2:] - plates[:, :2]
    centre = (plates[:, :2] + plates[:, 2:]) / 2 + rng.uniform(-0.15, 0.15, size.shape) * size
    new_size = size * rng.uniform(0.75, 1.3, size.shape)
    cand = np.concatenate([centre - new_size / 2, centre + new_size / 2], axis=1)
    # About a quarter look like one word of a split plate: the left or right 40-65 % of it.
    split = rng.random(len(plates)) < 0.25
    frac = rng.uniform(0.4, 0.65, len(plates))
    left = rng.random(len(plates)) < 0.5
    width = size[:, 0] * frac
    cand[split & left, 2] = plates[split & left, 0] + width[split & left]
    cand[split & ~left, 0] = plates[split & ~left, 2] - width[split & ~left]
    return cand.astype(np.float32), plates.astype(np.float32)


def random_boxes(height: int, width: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Boxes of plate-like size and shape (6-80 px high, 1.5-5 times as wide) anywhere in the frame."""
    h = np.exp(rng.uniform(np.log(6), np.log(80), n))
    w = h * rng.uniform(1.5, 5.0, n)
    x = rng.uniform(0, np.maximum(width - w, 1))
    y = rng.uniform(0, np.maximum(height - h, 1))
    return np.stack([x, y, x + w, y + h], axis=1).astype(np.float32)


def image_samples(
    bgr: np.ndarray,
    plates: np.ndarray,
    proposals: np.ndarray,
    rng: np.random.Generator,
    *,
    jitter_per_plate: int = 4,
    random_negatives: int = 4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Crops (N, 48, 96, 3) uint8, labels (N,) float32 and box targets (N, 4) for one image."""
    h, w = bgr.shape[:2]
    plates = np.asarray(plates, np.float32).reshape(-1, 4)
    proposals = np.asarray(proposals, np.float32).reshape(-1, 4)
    cands, labels, targets = [], [], []

    if len(plates):
        cand, target = jittered_plates(plates, rng, jitter_per_plate)
        cands.append(cand)
        labels.append(np.ones(len(cand), np.float32))
        targets.append(target)
    if len(proposals):
        if len(plates):
            own = _inter_over_first(proposals, plates)  # share of the proposal on each plate
            cover = _inter_over_first(plates, proposals).T  # share of each plate under the proposal
            best = own.argmax(1)
            on_plate = (own.max(1) >= 0.6) & (cover[np.arange(len(proposals)), best] >= 0.3)
            off_plate = own.max(1) < 0.1
        else:
            best = np.zeros(len(proposals), np.int64)
            on_plate = np.zeros(len(proposals), bool)
            off_plate = np.ones(len(proposals), bool)
        if on_plate.any():
            cands.append(proposals[on_plate])
            labels.append(np.ones(int(on_plate.sum()), np.float32))
            targets.append(plates[best[on_plate]])
        if off_plate.any():
            cands.append(proposals[off_plate])
            labels.append(np.zeros(int(off_plate.sum()), np.float32))
            targets.append(proposals[off_plate])  # unused: no box loss on negatives
    rand = random_boxes(h, w, random_negatives, rng)
    if len(plates):
        rand = rand[_inter_over_first(rand, plates).max(1) < 0.1]
    cands.append(rand)
    labels.append(np.zeros(len(rand), np.float32))
    targets.append(rand)

    cand_all = np.concatenate(cands)
    windows = windows_for(cand_all)
    return crop_windows(bgr, windows), np.concatenate(labels), window_targets(windows, np.concatenate(targets))
