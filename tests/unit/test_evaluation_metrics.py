"""veil eval's metrics on tiny cases whose figures are worked out by hand in each test."""

from __future__ import annotations

import numpy as np
import pytest

from worker.evaluation.metrics import (
    FP,
    IGNORED,
    TP,
    ClassSample,
    average_precision,
    class_metrics,
    coverage,
    false_masks,
    match,
    metrics_by_size,
    precision_recall_curve,
)


def test_coverage_is_measured_over_the_union_of_several_masks() -> None:
    truth = [[0, 0, 10, 10]]
    # Side by side: 5x10 + 5x8 = 90 of 100.
    assert coverage(truth, [[0, 0, 5, 10], [5, 0, 10, 8]])[0] == pytest.approx(0.9)
    # Overlapping: 6x10 + (6x5 - the 2x5 overlap) = 80; counting the overlap twice would give 90.
    assert coverage(truth, [[0, 0, 6, 10], [4, 0, 10, 5]])[0] == pytest.approx(0.8)
    # A mask larger than the box covers it exactly once; a mask elsewhere covers nothing.
    assert coverage(truth, [[-5, -5, 20, 20], [30, 30, 40, 40]])[0] == pytest.approx(1.0)
    assert coverage(truth, [[30, 30, 40, 40]])[0] == 0.0
    assert coverage(truth, np.zeros((0, 4)))[0] == 0.0


def test_coverage_of_a_fractional_box_is_exact() -> None:
    # 4.5 of the box's 10 columns lie inside the mask.
    assert coverage([[0.5, 0, 10.5, 10]], [[0, 0, 5, 10]])[0] == pytest.approx(0.45)


def test_matching_prefers_a_counted_box_and_duplicates_are_false_positives() -> None:
    truth = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60]], float)
    ignore = np.array([False, True, True])
    boxes = np.array([
        [1, 0, 11, 10],    # IoU 1.0 with the ignored box, 0.82 with the counted one: takes the counted one
        [0, 0, 10, 10],    # the counted box is taken: falls to the ignored one
        [0, 0, 10, 10],    # both taken: a duplicate
        [50, 50, 60, 60],  # only an ignored box: neither TP nor FP
        [80, 80, 90, 90],  # nothing
    ], float)
    state, matched = match(boxes, np.array([0.9, 0.8, 0.7, 0.6, 0.5]), truth, ignore)
    assert state.tolist() == [TP, IGNORED, FP, IGNORED, FP]
    assert matched.tolist() == [True, False, False]


def test_matching_takes_detections_by_falling_score() -> None:
    truth = np.array([[0, 0, 10, 10]], float)
    boxes = np.array([[0, 0, 10, 9], [0, 0, 10, 10]], float)
    state, _ = match(boxes, np.array([0.3, 0.9]), truth, np.array([False]))
    assert state.tolist() == [FP, TP]  # the exact box scored higher, so it is the match


def test_false_masks_use_iou_below_0_3_with_every_labelled_box() -> None:
    truth = np.array([[0, 0, 10, 10]], float)
    boxes = np.array([[0, 0, 10, 2.5], [0, 0, 10, 3.5], [100, 100, 110, 110]], float)  # IoU 0.25, 0.35, 0
    assert false_masks(boxes, truth).tolist() == [True, False, True]
    assert false_masks(boxes, np.zeros((0, 4))).tolist() == [True, True, True]


def test_average_precision_by_hand() -> None:
    # Three counted boxes; detections TP (0.9), FP (0.8), TP (0.7), one box never found.
    # Recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3; monotone envelope 1, 2/3, 2/3:
    # AP = 1/3 * 1 + 0 + 1/3 * 2/3 = 5/9.
    recall, precision = precision_recall_curve(np.array([0.8, 0.9, 0.7, 0.95]),
                                               np.array([FP, TP, TP, IGNORED]), counted=3)
    assert recall.tolist() == pytest.approx([1 / 3, 1 / 3, 2 / 3])
    assert precision.tolist() == pytest.approx([1, 1 / 2, 2 / 3])
    assert average_precision(recall, precision) == pytest.approx(5 / 9)


def test_a_perfect_detector_scores_one_and_an_empty_one_zero() -> None:
    assert average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])) == pytest.approx(1.0)
    assert average_precision(np.zeros(0), np.zeros(0)) == 0.0


def _two_images() -> list[ClassSample]:
    # Image 1: a 10 px face (found, masked whole), a 40 px face (found, mask covers 75 %), an ignored face
    # with a detection on it, and a false mask 20 px high. Image 2: a 70 px face missed, masked 85 % by a
    # mask drawn for another class.
    one = ClassSample.of(
        truth=[[0, 0, 10, 10], [100, 100, 140, 140], [200, 200, 208, 208]],
        ignore=[False, False, True],
        boxes=[[0, 0, 10, 10], [100, 100, 140, 140], [200, 200, 208, 208], [300, 300, 320, 320]],
        scores=[0.9, 0.6, 0.8, 0.7],
        masks=[[0, 0, 10, 10], [100, 100, 140, 130], [200, 200, 208, 208], [300, 300, 320, 320]],
    )
    two = ClassSample.of(truth=[[0, 0, 70, 70]], ignore=[False], boxes=np.zeros((0, 4)), scores=[],
                         masks=[[0, 0, 70, 59.5]])
    return [one, two]


def test_class_metrics_by_hand() -> None:
    m = class_metrics(_two_images())
    assert (m.images, m.counted, m.true_positives, m.false_positives) == (2, 3, 2, 1)
    assert m.c80 == pytest.approx(2 / 3)  # 10 px (100 %) and 70 px (85 %) count, 40 px (75 %) does not
    assert m.recall == pytest.approx(2 / 3)
    assert m.precision == pytest.approx(2 / 3)  # the detection on the ignored face is left out
    # Scores: TP 0.9, FP 0.7, TP 0.6 -> recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3 -> AP 5/9.
    assert m.ap50 == pytest.approx(5 / 9)
    assert m.false_masks == 1
    assert m.false_masks_per_image == pytest.approx(0.5)


def test_a_detection_on_a_box_labelled_as_another_class_is_not_a_false_mask() -> None:
    # A face detection on a labelled plate is a wrong class (a false positive) but masks something that
    # must be masked anyway.
    sample = ClassSample.of(truth=np.zeros((0, 4)), ignore=[], boxes=[[0, 0, 40, 10], [100, 100, 110, 110]],
                            scores=[0.9, 0.8], masks=[], other_truth=[[0, 0, 40, 12]])
    m = class_metrics([sample])
    assert (m.false_positives, m.false_masks, m.precision, m.recall) == (2, 1, 0.0, None)


def test_size_buckets_count_only_their_own_boxes() -> None:
    by_size = metrics_by_size(_two_images())
    small, medium, mid, large = by_size["<16"], by_size["16-32"], by_size["32-64"], by_size[">=64"]
    # "<16": the 10 px face counts; the 40 px face is another bucket's, so the detection on it is ignored.
    assert (small.counted, small.true_positives, small.false_positives) == (1, 1, 0)
    assert small.c80 == pytest.approx(1.0)
    assert small.precision == pytest.approx(1.0) and small.ap50 == pytest.approx(1.0)
    # The 20 px false mask is an FP and a false mask only in its own bucket, which has no labelled box.
    assert (medium.counted, medium.false_positives, medium.false_masks) == (0, 1, 1)
    assert medium.recall is None and medium.precision == 0.0 and medium.ap50 is None
    assert (mid.counted, mid.true_positives, mid.c80) == (1, 1, 0.0)
    assert (large.counted, large.true_positives, large.detections, large.c80) == (1, 0, 0, 1.0)
    assert large.precision is None
    assert small.false_masks + medium.false_masks + mid.false_masks + large.false_masks == 1
