"""Plate detector: candidates from Veil's plate network and/or text-detector proposals, checked and re-boxed by
the learned plate verifier.

The two candidate sources miss different plates: the text detector needs characters it can read (large,
sharp plates), the plate network (plate_detector_v1) was trained on plates down to 5 px and finds the small,
blurred and distant ones. The verifier looks at every candidate in context, so a union of both costs one
verification pass and keeps false masks down.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from worker.engine.detections import Detections, nms
from worker.engine.detector import has_pixels
from worker.engine.plates.centre_net import CentreNetPlates
from worker.engine.plates.text_proposals import TextProposer
from worker.engine.plates.verifier import PlateVerifier


@dataclass(frozen=True)
class PlateOperatingPoint:
    # The frame is scaled so that its long side is each of these (in pixels), but never by more than
    # max_scale: the text detector finds characters of a fixed pixel size, so small frames are enlarged.
    long_sides: tuple[int, ...]
    max_scale: float
    tile: int
    overlap: int
    proposal_threshold: float
    verifier_threshold: float
    nms_threshold: float
    padding: tuple[float, float]
    # Boxes wider than this share of the frame are not plates (the training set dropped plate close-ups
    # above 0.4); without it a frame-sized text proposal can come back verified.
    max_width_fraction: float = 0.5
    # The plate network: the frame scaled so its long side is each of these (none: network not run), never
    # enlarged by more than net_max_scale; its peaks at or above net_threshold become candidates.
    net_long_sides: tuple[int, ...] = ()
    net_max_scale: float = 1.5
    net_threshold: float = 0.1
    # The network's threshold in a region around tracked plates (a video's follow-up looks): there a plate is
    # expected, and the network scores large plates near net_threshold, so a crop's other context can drop a
    # tracked plate below it. The verifier threshold still decides. None: net_threshold.
    net_track_threshold: float | None = None


def frame_scales(height: int, width: int, long_sides: tuple[int, ...], max_scale: float) -> list[float]:
    """The factors that bring the frame's long side to each of `long_sides`, never above `max_scale`; sides
    that come to the same factor (a small frame under the cap) give it once."""
    long_side = max(height, width)
    return sorted({min(side / long_side, max_scale) for side in long_sides})


class PlateDetector:
    task = "plate"

    def __init__(
        self,
        proposer: TextProposer | None,
        verifier: PlateVerifier,
        point: PlateOperatingPoint,
        model_names: tuple[str, ...],
        network: CentreNetPlates | None = None,
    ) -> None:
        if (proposer is None) != (not point.long_sides) or (network is None) != (not point.net_long_sides):
            raise ValueError("the operating point and the candidate sources given do not match")
        self.proposer = proposer
        self.network = network
        self.verifier = verifier
        self.point = point
        self.padding = point.padding
        self._model_names = model_names

    @property
    def model_names(self) -> tuple[str, ...]:
        return self._model_names

    @property
    def score_threshold(self) -> float:
        """The verifier probability a plate needs (a job's `threshold` replaces it)."""
        return self.point.verifier_threshold

    def operating_point(self) -> dict[str, Any]:
        sources = [name for name, used in (("plate_network", self.network), ("text_proposals", self.proposer)) if used]
        return {"detector": "+".join([*sources, "plate_verifier"]), **asdict(self.point)}

    def scales(self, height: int, width: int) -> list[float]:
        return frame_scales(height, width, self.point.long_sides, self.point.max_scale)

    def region_scale(self, height: int, width: int) -> float:
        """The scale to show this detector a region of a `height` x `width` frame at: its finest whole-frame
        pass, so a region look sees a plate at the size the whole-frame look found it (a region is small
        enough that the detector itself would run it at 1x)."""
        scales = self.scales(height, width)
        if self.network is not None:
            scales += frame_scales(height, width, self.point.net_long_sides, self.point.net_max_scale)
        return min(1.0, max(scales, default=1.0))

    def proposals(self, bgr: np.ndarray, *, around_tracks: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Candidate boxes (N, 4) from every source, with their source's score (N,)."""
        boxes, scores = [np.zeros((0, 4), np.float32)], [np.zeros(0, np.float32)]
        if self.proposer is not None:
            for scale in self.scales(*bgr.shape[:2]):
                b, s = self.proposer.propose(bgr, scale, self.point.tile, self.point.overlap)
                keep = s >= self.point.proposal_threshold
                boxes.append(b[keep])
                scores.append(s[keep])
        if self.network is not None:
            h, w = bgr.shape[:2]
            threshold = self.point.net_threshold
            if around_tracks and self.point.net_track_threshold is not None:
                threshold = self.point.net_track_threshold
            for scale in frame_scales(h, w, self.point.net_long_sides, self.point.net_max_scale):
                found = self.network.detect(bgr, scale=scale, threshold=threshold, nms_threshold=0.5)
                boxes.append(found.boxes)
                scores.append(found.scores)
        return np.concatenate(boxes).astype(np.float32), np.concatenate(scores).astype(np.float32)

    def detect(self, bgr: np.ndarray, *, score_threshold: float | None = None,
               around_tracks: bool = False) -> Detections:
        if not has_pixels(bgr):
            return Detections.empty()
        h, w = bgr.shape[:2]
        candidates, _ = self.proposals(bgr, around_tracks=around_tracks)
        candidates = candidates[candidates[:, 2] - candidates[:, 0] <= self.point.max_width_fraction * w]
        scores, boxes = self.verifier.verify(bgr, candidates)
        keep = scores >= (self.point.verifier_threshold if score_threshold is None else score_threshold)
        boxes, scores = boxes[keep], scores[keep]
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        visible &= boxes[:, 2] - boxes[:, 0] <= self.point.max_width_fraction * w
        boxes, scores = boxes[visible], scores[visible]
        kept = nms(boxes, scores, self.point.nms_threshold)
        return Detections(boxes[kept], scores[kept], np.full(len(kept), self.task))
