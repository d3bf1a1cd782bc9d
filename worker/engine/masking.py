"""Box padding and the three mask styles. Every style touches only the pixels inside its (padded) box.

`apply_masks` works on BGR images; `apply_masks_i420` on a video frame's own YUV 4:2:0 planes, so a video's
unmasked pixels go to the encoder exactly as decoded (a YUV -> BGR -> YUV round trip changed them by up to
38 levels) and no frame pays for two colour conversions. Blur and pixelation are linear, so running them
on each plane masks as they do on BGR.
"""

from __future__ import annotations

from enum import StrEnum

import cv2
import numpy as np


class MaskStyle(StrEnum):
    BLUR = "blur"
    PIXELATE = "pixelate"
    SOLID = "solid"


# Blur sigma as a fraction of the box's longer side: at 1/6 eyes, nose and mouth merge into one smooth
# blob, which is the point; a "soft" blur that leaves features legible is not anonymisation.
BLUR_SIGMA_FRACTION = 1 / 6
# The alpha ramps from 1 to 0 over the outer 20% of the ellipse radius so the mask has no hard seam.
FEATHER_FRACTION = 0.2
# About 8 blocks across the longer side of the padded box (~6 across the face itself): coarse enough that
# the face cannot be recognised or "depixelated", fine enough to still read as a person.
PIXELATE_BLOCKS = 8
MIN_BLOCK = 4


def pad_boxes(
    boxes: np.ndarray, shape: tuple[int, ...], *, width_scale: float = 1.2, height_scale: float = 1.5
) -> np.ndarray:
    """Scale xyxy boxes about their centre, round outward to whole pixels and clip to the image.

    Detector boxes hug the face; the extra height covers forehead, hair and chin. Returns (N, 4) int32.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = shape[:2]
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    half = (boxes[:, 2:4] - boxes[:, 0:2]) / 2 * np.array([width_scale, height_scale])
    out = np.concatenate([np.floor(centre - half), np.ceil(centre + half)], axis=1)
    out[:, 0::2] = np.clip(out[:, 0::2], 0, w)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, h)
    return out.astype(np.int32)


def _gaussian(roi: np.ndarray, sigma: float) -> np.ndarray:
    """cv2.GaussianBlur's kernel (same size rule) applied with sepFilter2D, within one level of it. OpenCV's
    bit-exact 8-bit GaussianBlur ran 10x slower at sigma 8 (0.21 against 0.02 ms on a 76x48 region), and
    masking plates took 15 % of a 720p video's main thread with it."""
    ksize = int(round(sigma * (3 if roi.dtype == np.uint8 else 4) * 2 + 1)) | 1
    kernel = cv2.getGaussianKernel(ksize, sigma)
    return cv2.sepFilter2D(roi, -1, kernel, kernel, borderType=cv2.BORDER_REFLECT)


def _blur_roi(roi: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur; large sigmas run on a downscaled copy, since cost grows with kernel size and the
    result is smooth anyway."""
    factor = max(1.0, sigma / 8)
    if factor == 1.0:
        return _gaussian(roi, sigma)
    h, w = roi.shape[:2]
    size = (max(1, round(w / factor)), max(1, round(h / factor)))
    small = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
    return cv2.resize(_gaussian(small, sigma / factor), (w, h), interpolation=cv2.INTER_LINEAR)


def _ellipse_alpha(h: int, w: int) -> np.ndarray:
    """Feathered ellipse inscribed in an h x w box: 1 in the core, 0 on and outside the ellipse."""
    ys = (np.arange(h, dtype=np.float32) + 0.5 - h / 2) / (h / 2)
    xs = (np.arange(w, dtype=np.float32) + 0.5 - w / 2) / (w / 2)
    radius = np.sqrt(ys[:, None] ** 2 + xs[None, :] ** 2)
    t = np.clip((1.0 - radius) / FEATHER_FRACTION, 0.0, 1.0)
    return t * t * (3 - 2 * t)  # smoothstep: no visible ring at either end of the ramp


def _blur_box(img: np.ndarray, src: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
    bh, bw = y2 - y1, x2 - x1
    sigma = max(2.0, max(bh, bw) * BLUR_SIGMA_FRACTION)
    # A margin of real neighbouring pixels keeps the box edge from blurring against a mirrored copy of itself.
    m = int(np.ceil(2 * sigma))
    H, W = src.shape[:2]
    rx1, ry1, rx2, ry2 = max(0, x1 - m), max(0, y1 - m), min(W, x2 + m), min(H, y2 + m)
    blurred = _blur_roi(src[ry1:ry2, rx1:rx2], sigma)[y1 - ry1 : y2 - ry1, x1 - rx1 : x2 - rx1]
    alpha = _ellipse_alpha(bh, bw)
    if img.ndim == 3:
        alpha = alpha[..., None]
    orig = img[y1:y2, x1:x2].astype(np.float32)
    img[y1:y2, x1:x2] = np.rint(orig + alpha * (blurred.astype(np.float32) - orig)).astype(img.dtype)


def _pixelate_box(img: np.ndarray, x1: int, y1: int, x2: int, y2: int) -> None:
    bh, bw = y2 - y1, x2 - x1
    block = max(MIN_BLOCK, int(np.ceil(max(bh, bw) / PIXELATE_BLOCKS)))
    small_w, small_h = max(1, int(np.ceil(bw / block))), max(1, int(np.ceil(bh / block)))
    small = cv2.resize(img[y1:y2, x1:x2], (small_w, small_h), interpolation=cv2.INTER_AREA)
    img[y1:y2, x1:x2] = cv2.resize(small, (bw, bh), interpolation=cv2.INTER_NEAREST)


def apply_masks(
    bgr: np.ndarray,
    boxes: np.ndarray,
    style: MaskStyle | str,
    *,
    solid_color: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """A masked copy of `bgr`; `boxes` are int xyxy (use pad_boxes), `solid_color` is BGR.

    Zero-size boxes are skipped.
    """
    style = MaskStyle(style)
    out = bgr.copy()
    # Blur samples the unmasked source so overlapping boxes do not re-blur an already blurred neighbour.
    src = bgr
    for x1, y1, x2, y2 in np.asarray(boxes, dtype=np.int64).reshape(-1, 4):
        if x2 <= x1 or y2 <= y1:
            continue
        if style is MaskStyle.SOLID:
            out[y1:y2, x1:x2] = solid_color
        elif style is MaskStyle.PIXELATE:
            _pixelate_box(out, x1, y1, x2, y2)
        else:
            _blur_box(out, src, x1, y1, x2, y2)
    return out


def apply_masks_i420(
    yuv: np.ndarray,
    boxes: np.ndarray,
    style: MaskStyle | str,
    *,
    solid_color: tuple[int, int, int] = (0, 0, 0),
) -> np.ndarray:
    """A masked copy of an I420 frame (the (H * 3/2, W) array PyAV gives for yuv420p, H and W even); `boxes`
    are int xyxy in frame pixels, grown to even coordinates so that luma and chroma cover the same pixels.
    `solid_color` is BGR, taken to YUV with OpenCV's BT.601 limited-range matrix (black is exact in any)."""
    style = MaskStyle(style)
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    out = yuv.copy()
    if not len(boxes):
        return out
    height, width = yuv.shape[0] * 2 // 3, yuv.shape[1]
    src, dst = i420_planes(yuv, height, width), i420_planes(out, height, width)
    fill = _i420_colour(solid_color)
    for box in boxes.tolist():
        x1, y1, x2, y2 = even_outward(*box)
        x1, x2 = min(max(x1, 0), width), min(max(x2, 0), width)
        y1, y2 = min(max(y1, 0), height), min(max(y2, 0), height)
        if x2 <= x1 or y2 <= y1:
            continue
        for plane, (source, target) in enumerate(zip(src, dst, strict=True)):
            f = 1 if plane == 0 else 2  # chroma planes are subsampled by two both ways
            bx1, by1, bx2, by2 = x1 // f, y1 // f, x2 // f, y2 // f
            if style is MaskStyle.SOLID:
                target[by1:by2, bx1:bx2] = fill[plane]
            elif style is MaskStyle.PIXELATE:
                _pixelate_box(target, bx1, by1, bx2, by2)
            else:
                _blur_box(target, source, bx1, by1, bx2, by2)
    return out


def even_outward(x1: int, y1: int, x2: int, y2: int) -> tuple[int, int, int, int]:
    """The box grown to even coordinates: whole 4:2:0 chroma samples."""
    return x1 // 2 * 2, y1 // 2 * 2, -(-x2 // 2) * 2, -(-y2 // 2) * 2


def i420_planes(yuv: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views of the Y (H, W), U and V (H/2, W/2) planes of an I420 array."""
    flat = yuv.reshape(-1)
    luma, chroma = height * width, (height // 2) * (width // 2)
    return (flat[:luma].reshape(height, width), flat[luma:luma + chroma].reshape(height // 2, width // 2),
            flat[luma + chroma:luma + 2 * chroma].reshape(height // 2, width // 2))


def _i420_colour(bgr: tuple[int, int, int]) -> tuple[int, int, int]:
    patch = np.full((2, 2, 3), bgr, np.uint8)
    yuv = cv2.cvtColor(patch, cv2.COLOR_BGR2YUV_I420).reshape(-1)
    return int(yuv[0]), int(yuv[4]), int(yuv[5])
