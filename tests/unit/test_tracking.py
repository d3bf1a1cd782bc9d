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


def run_with_cadence(tracker: FaceTracker, per_frame: list[np.ndarray], every: int) -> dict[int, np.ndarray]:
    """Like `run`, but the detector only runs on every `every`-th frame (a video's cadence)."""
    out: dict[int, np.ndarray] = {}
    for i, boxes in enumerate(per_frame):
        out.update(tracker.push(boxes) if i % every == 0 else tracker.skip())
    out.update(tracker.flush())
    assert sorted(out) == list(range(len(per_frame)))
    return out


def test_a_moving_face_stays_covered_on_skipped_frames() -> None:
    frames = [box_at(10 + 5 * i) for i in range(30)]  # 5 px a frame: a 40 px face moves off itself in 8
    out = run_with_cadence(FaceTracker(hold_frames=8, lead_frames=3), frames, every=4)
    for i in range(30):
        assert covers(out[i], frames[i]), f"frame {i} uncovered: {out[i]}"


def test_skipped_frames_never_end_a_track() -> None:
    # Detected once, then only skipped frames for longer than hold_frames: the track is still emitted on all
    # of them, since nothing looked for the face; it ends only after hold_frames of real misses.
    tracker = FaceTracker(hold_frames=2, lead_frames=0)
    out = dict(tracker.push(box_at(100)))
    for _ in range(6):
        out.update(tracker.skip())
    assert all(covers(out[i], box_at(100)) for i in range(7)) and len(tracker.tracks) == 1
    for _ in range(3):
        out.update(tracker.push(NONE))
    assert len(tracker.tracks) == 0


def test_a_face_appearing_on_a_skipped_frame_is_covered_from_that_frame() -> None:
    # The face appears at frame 5; the detector runs on 0, 4, 8, ... so it first sees it at frame 8. The lead
    # frames (>= cadence - 1) carry it back to frame 5; frames 0-4 only get the lead's early frame 4 at most.
    frames = [NONE] * 5 + [box_at(60)] * 10
    out = run_with_cadence(FaceTracker(hold_frames=8, lead_frames=3), frames, every=4)
    assert all(covers(out[i], box_at(60)) for i in range(5, 15))
    assert all(len(out[i]) == 0 for i in range(4))


def test_without_enough_lead_frames_the_skipped_frames_before_a_first_detection_are_missed() -> None:
    # The same face with lead 0: the check above is not vacuous.
    frames = [NONE] * 5 + [box_at(60)] * 10
    out = run_with_cadence(FaceTracker(hold_frames=8, lead_frames=0), frames, every=4)
    assert [i for i in range(5, 8) if not covers(out[i], box_at(60))] == [5, 6, 7]


def test_a_new_or_fast_or_lost_track_asks_for_the_next_frame_and_a_steady_one_does_not() -> None:
    tracker = FaceTracker(hold_frames=8, lead_frames=3)
    assert not tracker.wants_detection(4)  # nothing tracked: the cadence holds
    tracker.push(box_at(10))
    assert tracker.wants_detection(4)  # seen once: no velocity yet
    tracker.push(box_at(12))
    assert not tracker.wants_detection(4)  # 2 px a frame, 8 px per 4 frames for a 40 px face
    tracker.push(box_at(36))
    assert tracker.wants_detection(4)  # now about 13 px a frame: over its size in 4 frames
    steady = FaceTracker(hold_frames=8, lead_frames=3)
    steady.push(box_at(10))
    steady.push(box_at(11))
    steady.push(NONE)
    assert steady.wants_detection(4)  # missed at the last look


def test_lead_frames_follow_a_moving_face_back_once_its_velocity_is_known() -> None:
    # A face moving 8 px a frame appears at frame 1 but is first detected at frame 3, then at frame 4 (the
    # frame after a first detection is always looked at). Lead boxes at the first position would miss it.
    truth = [box_at(8 * i) for i in range(8)]
    frames = [NONE, NONE, NONE, truth[3], truth[4], truth[5], truth[6], truth[7]]
    out = run(FaceTracker(hold_frames=8, lead_frames=3), frames)
    assert not covers(truth[3], truth[1], min_iou=0.5)
    assert all(covers(out[i], truth[i], min_iou=0.9) for i in range(1, 8))


def test_a_look_in_regions_only_looks_for_the_tracks_inside_them() -> None:
    tracker = FaceTracker(hold_frames=8, lead_frames=0)
    left, right = box_at(10), box_at(400)
    tracker.push(np.array([left, right]))
    tracker.push(np.array([left, right]))
    assert not tracker.wants_detection(4)
    # The next look covers only the left track's region and finds nothing there: the left track was
    # missed and asks for the next frame; the right one was not looked for, so it was not missed.
    region = np.array([[0, 0, 200, 200]])
    out = tracker.push(np.zeros((0, 4)), regions=region)
    assert len(out[0][1]) == 2  # both still masked (held)
    asking = tracker.asking(4)
    assert len(asking) == 1 and asking[0][0] < 200
    # A detection inside the region continues the left track; none starts for the right one.
    tracker.push(np.array([left]), regions=region)
    assert not tracker.wants_detection(4) and tracker.tracks_started == 2
