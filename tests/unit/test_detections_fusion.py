"""Weighted box fusion on hand-made boxes: clusters, weighted means, per-source scores."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.detections import fuse_boxes, weighted_box_fusion


def test_overlapping_boxes_of_two_sources_fuse_into_their_score_weighted_mean() -> None:
    boxes = np.array([[0, 0, 10, 10], [2, 0, 12, 10], [100, 100, 120, 120]], np.float32)
    scores = np.array([0.9, 0.3, 0.5], np.float32)
    fused, per_source = fuse_boxes(boxes, scores, np.array([0, 1, 1]), n_sources=2, iou_threshold=0.5)
    assert len(fused) == 2
    # x1 = (0 * 0.9 + 2 * 0.3) / 1.2 = 0.5; x2 = (10 * 0.9 + 12 * 0.3) / 1.2 = 10.5
    np.testing.assert_allclose(fused[0], [0.5, 0, 10.5, 10], atol=1e-5)
    np.testing.assert_allclose(per_source[0], [0.9, 0.3], atol=1e-6)
    np.testing.assert_allclose(fused[1], [100, 100, 120, 120])
    np.testing.assert_allclose(per_source[1], [0.0, 0.5], atol=1e-6)


def test_a_source_keeps_only_its_best_score_in_a_cluster() -> None:
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 11], [0, 0, 11, 10]], np.float32)
    scores = np.array([0.4, 0.8, 0.6], np.float32)
    _, per_source = fuse_boxes(boxes, scores, np.array([0, 0, 1]), n_sources=3, iou_threshold=0.5)
    np.testing.assert_allclose(per_source, [[0.8, 0.6, 0.0]], atol=1e-6)


def test_boxes_below_the_overlap_threshold_stay_apart() -> None:
    # IoU of these two is 1/3: below 0.5 they are two faces, above 0.3 one.
    boxes = np.array([[0, 0, 10, 10], [5, 0, 15, 10]], np.float32)
    scores = np.array([0.9, 0.8], np.float32)
    assert len(fuse_boxes(boxes, scores, np.array([0, 1]), n_sources=2, iou_threshold=0.5)[0]) == 2
    assert len(fuse_boxes(boxes, scores, np.array([0, 1]), n_sources=2, iou_threshold=0.3)[0]) == 1


def test_agreement_outranks_a_lone_box_of_the_same_confidence() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [50, 50, 60, 60]], np.float32)
    scores = np.array([0.7, 0.7, 0.7], np.float32)
    fused, fused_scores = weighted_box_fusion(
        boxes, scores, np.array([0, 1, 0]), source_weights=np.array([1.0, 1.0]), iou_threshold=0.5
    )
    np.testing.assert_allclose(fused_scores, [0.7, 0.35], atol=1e-6)
    assert fused[1][0] == 50  # best first


def test_source_weights_scale_each_sources_say() -> None:
    boxes = np.array([[0, 0, 10, 10]], np.float32)
    _, s = weighted_box_fusion(boxes, np.array([0.9]), np.array([1]), source_weights=np.array([1.0, 2.0]),
                               iou_threshold=0.5)
    np.testing.assert_allclose(s, [0.6], atol=1e-6)


def test_no_boxes_give_empty_arrays_of_the_right_shape() -> None:
    fused, per_source = fuse_boxes(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), n_sources=3, iou_threshold=0.5)
    assert fused.shape == (0, 4) and per_source.shape == (0, 3)


def test_bad_source_indices_are_refused() -> None:
    with pytest.raises(ValueError, match="source"):
        fuse_boxes(np.zeros((1, 4)), np.ones(1), np.array([2]), n_sources=2, iou_threshold=0.5)
    with pytest.raises(ValueError, match="same length"):
        fuse_boxes(np.zeros((2, 4)), np.ones(1), np.array([0]), n_sources=2, iou_threshold=0.5)
