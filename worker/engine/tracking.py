"""Face tracks across video frames: which boxes to mask on each frame, including frames the detector missed.

IoU association against constant-velocity predictions, ByteTrack-style in two stages: confident detections
first, then low-score ones that may only continue an existing track (never start one). A track keeps emitting
its predicted box for `hold_frames` after its last detection, and its first box is also applied to the
`lead_frames` frames before it was first seen, so a face that the detector finds a few frames late, loses for
a frame or two, or stops finding as it leaves is still masked. Lead frames need frames to wait: `push`
returns each frame's boxes only once they are final, at most `lead_frames` frames later.

A look may also cover only some regions of the frame (`push(..., regions=...)`, the pipeline's cheap
follow-up looks at the tracks that ask for one): tracks whose predicted centre lies in a region are looked for
there, the others are treated as on a skipped frame.

Frames the detector does not run on (a video's detection cadence) go in with `skip`: every live track emits
its predicted box there and no track ends on it, because nothing was looked for (`hold_frames` still counts
frames, so a lost face stays masked as long at any cadence). When the next detection continues a track, the
skipped frames still waiting also get the box interpolated between the two detections, and a track first seen
then is carried back over the lead frames, so with `lead_frames >= cadence - 1` a face that appears on a
skipped frame is masked from that frame on.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

# Weight of the newest displacement in the velocity estimate: smooths detector jitter but follows turns.
VELOCITY_SMOOTHING = 0.5
# A track moving by more than this share of its size between two looks at the video's cadence asks for the
# next frame to be detected, so skipped frames are left to tracks whose motion is known and moderate.
FAST_SHARE = 0.5


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of xyxy boxes."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(1, -1, 4)
    w = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    h = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = w * h
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, col) pairs, best IoU first, each row and column used once, IoU >= threshold."""
    if iou.size == 0:
        return []
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for r, c in zip(rows[order].tolist(), cols[order].tolist(), strict=True):
        if r not in used_r and c not in used_c:
            used_r.add(r)
            used_c.add(c)
            pairs.append((r, c))
    return pairs


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # last detected xyxy box
    first_frame: int
    last_frame: int
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4))
    hits: int = 1
    first_box: np.ndarray | None = None  # the box it was first seen with (lead frames are placed from it)
    looked: int = -1  # the last frame it was looked for (it was missed there when later than last_frame)

    def __post_init__(self) -> None:
        self.looked = max(self.looked, self.last_frame)

    def fast(self, frames: int) -> bool:
        """Whether it moves or grows by more than FAST_SHARE of its size in `frames` frames."""
        size = max(1.0, float(min(self.box[2] - self.box[0], self.box[3] - self.box[1])))
        return bool(np.abs(self.velocity).max() * frames > FAST_SHARE * size)

    def predict(self, frame: int) -> np.ndarray:
        return self.box + self.velocity * (frame - self.last_frame)

    def update(self, box: np.ndarray, frame: int) -> None:
        step = (box - self.box) / max(1, frame - self.last_frame)
        a = 1.0 if self.hits == 1 else VELOCITY_SMOOTHING
        self.velocity = a * step + (1 - a) * self.velocity
        self.box, self.last_frame = box, frame
        self.hits += 1


class FaceTracker:
    """Feed one frame's detections at a time with `push`; collect final per-frame boxes from its return value
    and from `flush` at the end. Boxes are float (N, 4) xyxy in the detector's coordinates."""

    def __init__(
        self,
        *,
        hold_frames: int = 8,
        lead_frames: int = 4,
        iou_threshold: float = 0.2,
        high_score: float = 0.0,
    ) -> None:
        if hold_frames < 0 or lead_frames < 0:
            raise ValueError("hold_frames and lead_frames must be >= 0")
        self.hold_frames = hold_frames
        self.lead_frames = lead_frames
        self.iou_threshold = iou_threshold
        self.high_score = high_score
        self.tracks: list[Track] = []
        self.tracks_started = 0
        self._frame = 0
        self._pending: deque[tuple[int, list[np.ndarray]]] = deque()

    def push(self, boxes: np.ndarray, scores: np.ndarray | None = None,
             regions: np.ndarray | None = None) -> list[tuple[int, np.ndarray]]:
        """Detections of the next frame in; (frame index, boxes to mask) out for frames that are now final.
        `regions` (M, 4) xyxy: the detector looked only there (None: the whole frame)."""
        frame = self._frame
        self._frame += 1
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        scores = np.ones(len(boxes)) if scores is None else np.asarray(scores, dtype=np.float64).reshape(-1)
        current: list[np.ndarray] = []
        self._pending.append((frame, current))

        high = np.flatnonzero(scores >= self.high_score)
        low = np.flatnonzero(scores < self.high_score)
        predicted = np.array([t.predict(frame) for t in self.tracks]).reshape(-1, 4)
        looked_for = np.ones(len(self.tracks), bool) if regions is None else _centres_in(predicted, regions)
        live = np.flatnonzero(looked_for).tolist()
        for i in live:
            self.tracks[i].looked = frame
        matched: set[int] = set()
        unmatched_high = set(high.tolist())
        for dets in (high, low):
            pairs = greedy_match(iou_matrix(predicted[live], boxes[dets]), self.iou_threshold)
            for r, c in pairs:
                track, det = self.tracks[live[r]], int(dets[c])
                self._fill_gap(track, boxes[det], frame)
                track.update(boxes[det], frame)
                if track.hits == 2:
                    self._lead_along(track)
                current.append(boxes[det])
                matched.add(live[r])
                unmatched_high.discard(det)
            live = [i for i in live if i not in matched]

        for det in sorted(unmatched_high):
            self.tracks.append(Track(self.tracks_started, boxes[det], frame, frame, first_box=boxes[det]))
            self.tracks_started += 1
            current.append(boxes[det])
            for f, frame_boxes in self._pending:  # lead: the frames still waiting, before this one
                if frame - self.lead_frames <= f < frame:
                    frame_boxes.append(boxes[det])

        kept = []
        for i, track in enumerate(self.tracks):
            # A track the detector did not look for here (outside the regions) is kept as on a skipped frame.
            unseen = i < len(looked_for) and not looked_for[i]
            if i in matched or unseen or frame - track.last_frame <= self.hold_frames:
                kept.append(track)
                if i not in matched and i < len(predicted):
                    current.append(predicted[i])
        self.tracks = kept
        return self._release(frame)

    def wants_detection(self, cadence: int) -> bool:
        """Whether the next frame should be run through the detector although the cadence would skip it: a
        track seen once has no velocity yet, one the last look missed may have moved off its prediction, and
        one moving fast (`Track.fast`) may not be matched again after a whole cadence. Looking on the next frame
        then keeps skipped frames to tracks that follow; with none such, the cadence holds."""
        return len(self.asking(cadence)) > 0

    def asking(self, cadence: int) -> np.ndarray:
        """(N, 4) predicted boxes on the next frame of the tracks that ask for it to be looked at (see
        `wants_detection`): what a follow-up look in regions has to cover."""
        frame = self._frame
        boxes = [t.predict(frame) for t in self.tracks
                 if t.hits < 2 or t.last_frame < t.looked or t.fast(cadence)]
        return np.array(boxes, dtype=np.float64).reshape(-1, 4)

    def _lead_along(self, track: Track) -> None:
        """Once a new track's velocity is known, its lead frames still waiting also get its first box moved
        back along that velocity (a face found late while moving was elsewhere on the frames before)."""
        assert track.first_box is not None
        for f, frame_boxes in self._pending:
            if track.first_frame - self.lead_frames <= f < track.first_frame:
                frame_boxes.append(track.first_box - track.velocity * (track.first_frame - f))

    def _release(self, frame: int) -> list[tuple[int, np.ndarray]]:
        done = []
        while self._pending and self._pending[0][0] <= frame - self.lead_frames:
            done.append(self._finish(self._pending.popleft()))
        return done

    def skip(self) -> list[tuple[int, np.ndarray]]:
        """The next frame, not run through the detector: live tracks emit their predictions and none ages."""
        frame = self._frame
        self._frame += 1
        self._pending.append((frame, [t.predict(frame) for t in self.tracks]))
        return self._release(frame)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        """The boxes of every frame still waiting (call once after the last frame)."""
        done = [self._finish(item) for item in self._pending]
        self._pending.clear()
        return done

    def _fill_gap(self, track: Track, box: np.ndarray, frame: int) -> None:
        """Frames between the track's last detection and this one that are still waiting also get the box
        interpolated between the two detections (on top of the held prediction they already have)."""
        gap = frame - track.last_frame
        if gap <= 1:
            return
        for f, frame_boxes in self._pending:
            if track.last_frame < f < frame:
                t = (f - track.last_frame) / gap
                frame_boxes.append(track.box + t * (box - track.box))

    @staticmethod
    def _finish(item: tuple[int, list[np.ndarray]]) -> tuple[int, np.ndarray]:
        frame, boxes = item
        return frame, np.array(boxes, dtype=np.float64).reshape(-1, 4)


def _centres_in(boxes: np.ndarray, regions: np.ndarray) -> np.ndarray:
    """(len(boxes),) whether each box's centre lies in one of `regions` (xyxy)."""
    cx = (boxes[:, 0:1] + boxes[:, 2:3]) / 2
    cy = (boxes[:, 1:2] + boxes[:, 3:4]) / 2
    r = np.asarray(regions, dtype=np.float64).reshape(1, -1, 4)
    inside = (cx >= r[..., 0]) & (cx < r[..., 2]) & (cy >= r[..., 1]) & (cy < r[..., 3])
    return inside.any(axis=1)
