"""Follow-up looks in regions around tracks: where the regions lie, and boxes found in them mapped back."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.detections import Detections
from worker.engine.video.regions import FULL_SHARE, GRID, MIN_SIDE, detect_in_regions, look_regions
from worker.engine.video.stages import rotate_for_display, unrotate_boxes


def test_a_region_holds_the_box_with_a_margin_of_its_size_on_the_grid() -> None:
    box = np.array([[400.0, 300.0, 440.0, 340.0]])  # 40 px: a margin of 40 each side, at least MIN_SIDE across
    (x1, y1, x2, y2), = look_regions(box, 1280, 720).tolist()
    assert x1 <= 400 - 40 and y1 <= 300 - 40 and x2 >= 440 + 40 and y2 >= 340 + 40
    assert x2 - x1 >= MIN_SIDE and y2 - y1 >= MIN_SIDE
    assert all(v % GRID == 0 for v in (x1, y1, x2, y2))
    assert x2 - x1 <= MIN_SIDE + 2 * GRID  # not much more than asked for


def test_a_region_at_the_edge_is_shifted_inside_and_overlapping_ones_merge() -> None:
    edge = look_regions(np.array([[0.0, 0.0, 10.0, 10.0]]), 640, 360)
    assert edge.tolist() == [[0, 0, MIN_SIDE, MIN_SIDE]]
    two = look_regions(np.array([[100.0, 100.0, 120.0, 120.0], [150.0, 110.0, 170.0, 130.0]]), 1280, 720)
    assert len(two) == 1  # one region, so neither box is cut in two
    (x1, y1, x2, y2), = two.tolist()
    assert x1 <= 100 and x2 >= 170 and y1 <= 100 and y2 >= 130
    apart = look_regions(np.array([[100.0, 100.0, 120.0, 120.0], [900.0, 500.0, 920.0, 520.0]]), 1280, 720)
    assert len(apart) == 2


def test_regions_covering_much_of_the_frame_ask_for_a_whole_look_instead() -> None:
    big = np.array([[100.0, 100.0, 400.0, 300.0]])  # 300 px box: a 900 px region in a 960 x 540 frame
    assert look_regions(big, 960, 540) is None
    small = np.array([[100.0, 100.0, 130.0, 120.0]])
    regions = look_regions(small, 960, 540)
    assert regions is not None and np.prod(regions[0, 2:] - regions[0, :2]) <= FULL_SHARE * 960 * 540
    assert look_regions(np.zeros((0, 4)), 960, 540).shape == (0, 4)


@pytest.mark.parametrize("rotation", [0, 90, 270])
def test_boxes_found_in_a_region_come_back_in_frame_coordinates(rotation: int) -> None:
    frame = np.zeros((360, 640, 3), np.uint8)
    frame[200:230, 300:360] = 255  # the object, in stored coordinates

    def bright(bgr: np.ndarray) -> Detections:  # a detector that boxes the bright pixels it is shown
        ys, xs = np.nonzero(bgr[..., 0] > 128)
        if not len(xs):
            return Detections.empty()
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
        return Detections(box, np.ones(1), np.array(["face"]))

    whole = bright(rotate_for_display(frame, rotation))
    want = unrotate_boxes(whole.boxes, rotation, 640, 360)
    regions = np.array([[256, 160, 416, 288], [0, 0, 128, 128]])
    found = detect_in_regions(bright, lambda x1, y1, x2, y2: frame[y1:y2, x1:x2], regions, rotation)
    np.testing.assert_allclose(found.boxes, want)
    np.testing.assert_allclose(want, [[300, 200, 360, 230]])


def test_regions_shown_at_a_smaller_scale_lie_on_the_grid_after_resizing_and_map_back() -> None:
    regions = look_regions(np.array([[500.0, 400.0, 540.0, 420.0]]), 1920, 1080, scale=2 / 3)
    assert regions is not None and all(v % 48 == 0 for v in regions[0])  # 32 px once shown at 2/3
    frame = np.zeros((1080, 1920, 3), np.uint8)
    frame[400:420, 500:560] = 255
    shown: list[tuple[int, ...]] = []

    def bright(bgr: np.ndarray) -> Detections:
        shown.append(bgr.shape)
        ys, xs = np.nonzero(bgr[..., 0] > 128)
        box = np.array([[xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]], np.float64)
        return Detections(box, np.ones(1), np.array(["plate"]))

    (x1, y1, x2, y2), = regions.tolist()
    found = detect_in_regions(bright, lambda a, b, c, d: frame[b:d, a:c], regions, 0, scale=0.5)
    assert shown == [((y2 - y1) // 2, (x2 - x1) // 2, 3)]
    np.testing.assert_allclose(found.boxes, [[500, 400, 560, 420]], atol=2)
