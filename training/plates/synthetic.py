"""Synthetic licence plates pasted onto real training photos: more small, blurred, dim and tilted plates than
plates_train has (a third of its plates are under 16 px; dashcams see most plates that small).

Plates are drawn with OpenCV's own Hershey fonts (part of OpenCV, BSD/Apache): random characters in the
common layouts (EU long plates about 4.7:1 with a blue band, US/Asian plates about 2:1, yellow or white
grounds, dark or light characters), warped by a small perspective and pasted with a soft edge. The
photometric augmentation of the whole crop (augment.py) then blurs, compresses and darkens them like the
rest of the picture.
"""

from __future__ import annotations

import string

import cv2
import numpy as np

CHARS = string.ascii_uppercase + string.digits
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_PLAIN)

# (aspect w/h, ground colours BGR, text colours BGR, EU band)
STYLES = (
    (4.7, ((235, 235, 235), (40, 200, 240)), ((20, 20, 20),), True),
    (4.2, ((230, 230, 230),), ((25, 25, 25),), False),
    (2.0, ((235, 235, 235), (60, 210, 235), (200, 200, 205)), ((20, 20, 20), (140, 40, 20), (20, 20, 140)), False),
    (3.2, ((235, 235, 235), (20, 20, 20), (120, 60, 10)), ((20, 20, 20), (230, 230, 230)), False),
)


def render_plate(height: int, rng: np.random.Generator) -> np.ndarray:
    """A frontal plate image (height x width x 3 uint8) drawn at 4x then shrunk, so strokes stay smooth."""
    aspect, grounds, texts, band = STYLES[int(rng.integers(len(STYLES)))]
    aspect *= rng.uniform(0.9, 1.1)
    h = max(int(height), 4) * 4
    w = int(h * aspect)
    ground = np.array(grounds[int(rng.integers(len(grounds)))], np.float32)
    text = texts[int(rng.integers(len(texts)))]
    if abs(float(ground.mean()) - float(np.mean(text))) < 80:  # dark on dark: flip the text to light
        text = (230, 230, 230) if ground.mean() < 128 else (20, 20, 20)
    img = np.empty((h, w, 3), np.uint8)
    img[:] = np.clip(ground * rng.uniform(0.7, 1.05), 0, 255).astype(np.uint8)
    border = max(1, h // 18)
    cv2.rectangle(img, (0, 0), (w - 1, h - 1), tuple(int(c * 0.4) for c in text), border)
    left = border
    if band:
        left = int(h * 0.45)
        img[:, border:left] = (150, 50, 10)
    n = int(rng.integers(5, 9)) if aspect > 3 else int(rng.integers(3, 7))
    label = "".join(CHARS[int(i)] for i in rng.integers(0, len(CHARS), n))
    two_lines = aspect <= 3 and rng.random() < 0.5
    lines = [label[: n // 2 + 1], label[n // 2 + 1 :]] if two_lines else [label]
    font = FONTS[int(rng.integers(len(FONTS)))]
    thickness = max(1, int(h / len(lines) * rng.uniform(0.06, 0.11)))
    area_w = w - left - 2 * border
    line_h = (h - 2 * border) / len(lines)
    for i, line in enumerate(lines):
        (tw, th), _ = cv2.getTextSize(line, font, 1.0, thickness)
        scale = min(area_w * 0.92 / max(tw, 1), line_h * 0.7 / max(th, 1))
        (tw, th), _ = cv2.getTextSize(line, font, scale, thickness)
        x = left + border + (area_w - tw) / 2
        y = border + line_h * i + (line_h + th) / 2
        cv2.putText(img, line, (int(x), int(y)), font, scale, text, thickness, cv2.LINE_AA)
    small = cv2.resize(img, (max(w // 4, 4), max(h // 4, 2)), interpolation=cv2.INTER_AREA)
    return small


def paste_plate(canvas: np.ndarray, plate: np.ndarray, centre: tuple[float, float],
                rng: np.random.Generator) -> np.ndarray | None:
    """Paste `plate` at `centre` with a small perspective tilt; returns its box (x1, y1, x2, y2) in canvas
    pixels, or None when it does not fit."""
    ph, pw = plate.shape[:2]
    src = np.float32([[0, 0], [pw, 0], [pw, ph], [0, ph]])
    jitter = rng.uniform(-0.08, 0.08, (4, 2)) * np.float32([pw, ph])
    yaw = rng.uniform(-0.15, 0.15) * ph  # one side taller than the other, as seen from an angle
    # Left edge shorter, right edge taller (or the reverse for a negative yaw).
    dst = src + jitter + np.float32([[0, yaw], [0, -yaw], [0, yaw], [0, -yaw]])
    dst += np.float32(centre) - dst.mean(axis=0)
    x1, y1 = np.floor(dst.min(axis=0)).astype(int)
    x2, y2 = np.ceil(dst.max(axis=0)).astype(int)
    H, W = canvas.shape[:2]
    if x1 < 0 or y1 < 0 or x2 >= W or y2 >= H or x2 - x1 < 3 or y2 - y1 < 2:
        return None
    matrix = cv2.getPerspectiveTransform(src, (dst - np.float32([x1, y1])).astype(np.float32))
    size = (int(x2 - x1 + 1), int(y2 - y1 + 1))
    warped = cv2.warpPerspective(plate, matrix, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(np.ones((ph, pw), np.float32), matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    region = canvas[y1 : y2 + 1, x1 : x2 + 1].astype(np.float32)
    canvas[y1 : y2 + 1, x1 : x2 + 1] = (alpha * warped + (1 - alpha) * region).astype(np.uint8)
    ys, xs = np.nonzero(alpha[..., 0] > 0.5)
    if not len(xs):
        return None
    return np.array([x1 + xs.min(), y1 + ys.min(), x1 + xs.max() + 1, y1 + ys.max() + 1], np.float32)
