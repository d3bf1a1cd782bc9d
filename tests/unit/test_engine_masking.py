"""Masking: the padded box changes, everything outside it stays byte-identical."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr

from worker.engine.masking import MaskStyle, _gaussian, apply_masks, apply_masks_i420, i420_planes, pad_boxes

FACE = np.array([ASTRONAUT_FACE], np.float32)


def outside(mask_shape: tuple[int, ...], box) -> np.ndarray:
    keep = np.ones(mask_shape[:2], bool)
    x1, y1, x2, y2 = box
    keep[y1:y2, x1:x2] = False
    return keep


def test_pad_boxes_scales_about_the_centre_and_rounds_outward() -> None:
    padded = pad_boxes(np.array([[10.5, 20.5, 30.5, 40.5]]), (100, 100), width_scale=1.2, height_scale=1.5)
    assert padded.dtype == np.int32
    assert padded.tolist() == [[8, 15, 33, 46]]


def test_pad_boxes_clips_to_the_image() -> None:
    padded = pad_boxes(np.array([[-5, 90, 20, 120], [95, -3, 130, 10]]), (100, 120))
    assert padded.tolist() == [[0, 82, 23, 100], [91, 0, 120, 14]]
    assert pad_boxes(np.zeros((0, 4)), (10, 10)).shape == (0, 4)


@pytest.mark.parametrize("style", [MaskStyle.SOLID, MaskStyle.PIXELATE, MaskStyle.BLUR])
def test_pixels_outside_the_box_are_untouched(style: MaskStyle) -> None:
    image = astronaut_bgr()
    box = pad_boxes(FACE, image.shape)[0]
    masked = apply_masks(image, box[None], style)
    keep = outside(image.shape, box)
    assert masked is not image
    assert np.array_equal(masked[keep], image[keep])
    assert np.array_equal(image, astronaut_bgr())  # the input is not modified


@pytest.mark.parametrize("style", [MaskStyle.SOLID, MaskStyle.PIXELATE, MaskStyle.BLUR])
def test_the_face_is_changed_substantially(style: MaskStyle) -> None:
    image = astronaut_bgr()
    box = pad_boxes(FACE, image.shape)[0]
    masked = apply_masks(image, box[None], style)
    x1, y1, x2, y2 = ASTRONAUT_FACE
    diff = np.abs(masked[y1:y2, x1:x2].astype(int) - image[y1:y2, x1:x2].astype(int)).mean()
    assert diff > 10
    # Core features (eyes to mouth) must not survive: most of their pixels change.
    core = np.abs(masked[100:160, 200:250].astype(int) - image[100:160, 200:250].astype(int)).max(axis=2)
    assert (core > 0).mean() > 0.8


def test_solid_fills_the_whole_box_with_the_colour() -> None:
    image = astronaut_bgr()
    masked = apply_masks(image, np.array([[10, 20, 30, 50]]), "solid", solid_color=(1, 2, 3))
    assert (masked[20:50, 10:30] == (1, 2, 3)).all()


def test_pixelate_leaves_few_distinct_blocks() -> None:
    image = astronaut_bgr()
    masked = apply_masks(image, np.array([[160, 40, 288, 200]]), MaskStyle.PIXELATE)
    roi = masked[40:200, 160:288].reshape(-1, 3)
    assert len(np.unique(roi, axis=0)) <= 8 * 8


def test_blur_alpha_is_zero_at_the_box_corners() -> None:
    image = astronaut_bgr()
    x1, y1, x2, y2 = 160, 40, 288, 200
    masked = apply_masks(image, np.array([[x1, y1, x2, y2]]), MaskStyle.BLUR)
    for y, x in [(y1, x1), (y1, x2 - 1), (y2 - 1, x1), (y2 - 1, x2 - 1)]:
        assert np.array_equal(masked[y, x], image[y, x])


@pytest.mark.parametrize("sigma", [2.0, 3.3, 8.0])
@pytest.mark.parametrize("shape", [(48, 76), (100, 160, 3), (7, 5)])  # (7, 5): the kernel outgrows the region
def test_the_separable_blur_matches_opencvs_gaussian_blur(sigma: float, shape: tuple[int, ...]) -> None:
    roi = cv2.resize(astronaut_bgr(), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    roi = roi if len(shape) == 3 else roi[..., 1].copy()
    expected = cv2.GaussianBlur(roi, (0, 0), sigma, borderType=cv2.BORDER_REFLECT).astype(int)
    got = _gaussian(roi, sigma)
    assert got.shape == roi.shape and got.dtype == roi.dtype
    assert np.abs(got.astype(int) - expected).max() <= 1


@pytest.mark.parametrize("style", list(MaskStyle))
def test_zero_size_boxes_are_skipped(style: MaskStyle) -> None:
    image = astronaut_bgr()
    boxes = np.array([[10, 10, 10, 50], [20, 30, 40, 30], [500, 500, 512, 512]])
    masked = apply_masks(image, boxes[:2], style)
    assert np.array_equal(masked, image)
    assert not np.array_equal(apply_masks(image, boxes, style)[500:, 500:], image[500:, 500:])


def test_overlapping_and_edge_boxes() -> None:
    image = astronaut_bgr()
    boxes = np.array([[0, 0, 100, 100], [50, 50, 150, 150], [480, 480, 512, 512], [0, 0, 3, 2]])
    for style in MaskStyle:
        masked = apply_masks(image, boxes, style)
        keep = np.ones(image.shape[:2], bool)
        for x1, y1, x2, y2 in boxes:
            keep[y1:y2, x1:x2] = False
        assert np.array_equal(masked[keep], image[keep])


@pytest.mark.parametrize("style", list(MaskStyle))
def test_masks_on_i420_planes_match_the_bgr_masks_and_touch_nothing_else(style: MaskStyle) -> None:
    rng = np.random.default_rng(3)
    bgr = cv2.cvtColor(cv2.cvtColor(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
                                    cv2.COLOR_BGR2YUV_I420), cv2.COLOR_YUV2BGR_I420)
    yuv = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    boxes = np.array([[41, 31, 99, 79]])  # odd corners: grown to 40, 30, 100, 80
    via_bgr = cv2.cvtColor(apply_masks(cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420), np.array([[40, 30, 100, 80]]),
                                       style), cv2.COLOR_BGR2YUV_I420)
    masked = apply_masks_i420(yuv, boxes, style)
    planes, planes_bgr, planes_in = (i420_planes(a, 120, 160) for a in (masked, via_bgr, yuv))
    for plane, f in zip(range(3), (1, 2, 2), strict=True):
        box = (slice(30 // f, 80 // f), slice(40 // f, 100 // f))
        got, want, before = planes[plane], planes_bgr[plane], planes_in[plane]
        assert np.abs(got[box].astype(int) - want[box]).mean() < 3  # linear masks commute with the matrix
        assert not np.array_equal(got[box], before[box])
        keep = outside(got.shape, (40 // f, 30 // f, 100 // f, 80 // f))
        assert np.array_equal(got[keep], before[keep])  # not a sample outside the box changed
    if style is MaskStyle.SOLID:
        assert (planes[0][30:80, 40:100] == 16).all() and (planes[1][15:40, 20:50] == 128).all()
