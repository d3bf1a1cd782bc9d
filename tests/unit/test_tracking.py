"""Face tracks: gaps, lead and hold frames, identities through a crossing, nothing from nothing."""

from __future__ import annotations

import numpy as np

from worker.engine.tracking import FaceTracker, greedy_match, iou_matrix


def run(tracker: FaceTracker, per_frame: list[np.ndarray]) -> dict[int, np.ndarray]:
    out: dict[int, np.ndarray] = {}
    for boxes in per_frame:
        out.update(tracker.push(boxes))
    out.update(tracker.flush())
    assert sorted(out) == list(range(len(per_frame)))  # every frame comes back exactly once, in order
    return out


def box_at(x: float, y: float = 50.0, size: float = 40.0) -> np.ndarray:
    return np.array([[x, y, x + size, y + size]])


NONE = np.zeros((0, 4))


def covers(boxes: np.ndarray, target: np.ndarray, min_iou: float = 0.5) -> bool:
    return bool(len(boxes)) and float(iou_matrix(boxes, target).max()) >= min_iou


def test_one_missed_frame_is_still_masked() -> None:
    frames = [box_at(10 + 3 * i) if i != 10 else NONE for i in range(21)]
    out = run(FaceTracker(hold_frames=2, lead_frames=2), frames)
    assert covers(out[10], box_at(40))  # predicted and interpolated where the face would be
    assert all(len(out[i]) >= 1 for i in range(21))


def test_masks_lead_and_hold_frames_around_a_track() -> None:
    frames = [NONE] * 5 + [box_at(100)] * 5 + [NONE] * 10
    out = run(FaceTracker(hold_frames=3, lead_frames=2), frames)
    masked = [i for i, boxes in out.items() if len(boxes)]
    assert masked == list(range(3, 13))  # 2 lead frames before frame 5, 3 hold frames after frame 9
    assert covers(out[3], box_at(100)) and covers(out[12], box_at(100))


def test_crossing_tracks_keep_their_identities() -> None:
    tracker = FaceTracker(hold_frames=2, lead_frames=0)
    seen: list[dict[int, float]] = []
    for i in range(20):
        a, b = box_at(10 + 10 * i, y=50), box_at(200 - 10 * i, y=58)
        tracker.push(np.concatenate([a, b]))
        seen.append({t.track_id: float(t.box[0]) for t in tracker.tracks})
    assert tracker.tracks_started == 2
    ids = sorted(seen[0])
    assert seen[-1][ids[0]] == 10 + 10 * 19 and seen[-1][ids[1]] == 200 - 10 * 19


def test_no_tracks_from_nothing() -> None:
    tracker = FaceTracker()
    out = run(tracker, [NONE] * 30)
    assert tracker.tracks_started == 0 and all(len(b) == 0 for b in out.values())


def test_low_scores_continue_tracks_but_never_start_them() -> None:
    tracker = FaceTracker(hold_frames=0, lead_frames=0, high_score=0.6)
    [(frame, boxes)] = tracker.push(box_at(100), np.array([0.4]))
    assert frame == 0 and len(boxes) == 0 and tracker.tracks_started == 0
    tracker.push(box_at(100), np.array([0.9]))
    done = tracker.push(box_at(102), np.array([0.4]))
    assert tracker.tracks_started == 1 and covers(done[0][1], box_at(102), 0.9)


def test_greedy_match_takes_the_best_pairs_first() -> None:
    iou = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(greedy_match(iou, 0.3)) == [(0, 0)]
    assert greedy_match(np.zeros((0, 3)), 0.3) == []
