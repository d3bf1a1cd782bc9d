"""YuNet face detector (libfacedetection) on ONNX Runtime, at the image's native resolution."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from shared.settings import Settings
from worker.engine.blob import planar_blob
from worker.engine.detections import Detections, nms
from worker.engine.detector import has_pixels
from worker.engine.onnx_session import active_provider
from worker.engine.registry import ModelEntry, ModelRegistry

STRIDES = (8, 16, 32)
STRIDE_MULTIPLE = 32  # the input sides every head must tile
# Recall matters more than precision when masking: a missed face is a privacy leak, a false positive only
# masks some background. YuNet's own default (0.9) found 14% of faces on a 60-image WIDER FACE val subset;
# 0.6 found 74% (recall at IoU 0.5) with 1.45 detections per image on pure background (IoU < 0.1 with
# every face); most other unmatched boxes overlap a real face and mask it generously, which costs nothing.
# 0.75 found 65% and 0.5 found 76% at 3.4 background boxes per image. The quality issue re-tunes this.
DEFAULT_SCORE_THRESHOLD = 0.6
DEFAULT_NMS_THRESHOLD = 0.3
DEFAULT_MODEL = "yunet_n"


def decode(
    outputs: dict[str, np.ndarray], height: int, width: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """YuNet decode for a padded (height, width) input: (boxes xyxy, scores) above `threshold`."""
    all_boxes, all_scores = [], []
    for s in STRIDES:
        rows, cols = height // s, width // s
        cls = outputs[f"cls_{s}"].reshape(-1)
        obj = outputs[f"obj_{s}"].reshape(-1)
        if cls.size != rows * cols:
            raise ValueError(f"stride {s} output has {cls.size} cells, expected {rows * cols}")
        scores = np.sqrt(np.clip(cls, 0, 1) * np.clip(obj, 0, 1))
        idx = np.flatnonzero(scores >= threshold)
        if idx.size == 0:
            continue
        # Anchors are grid cells in row-major order: index = row * cols + col, located at (col*s, row*s).
        anchors = np.stack([idx % cols, idx // cols], axis=1).astype(np.float32) * s
        bbox = outputs[f"bbox_{s}"].reshape(-1, 4)[idx]
        centre = anchors + bbox[:, 0:2] * s
        size = np.exp(bbox[:, 2:4]) * s
        all_boxes.append(np.concatenate([centre - size / 2, centre + size / 2], axis=1))
        all_scores.append(scores[idx])
    if not all_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
    return np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32)


def default_registry(intra_op_threads: int | None = None) -> ModelRegistry:
    """The registry a detector built without one uses: the manifest and the service's settings, as a worker's."""
    settings = Settings() if intra_op_threads is None else Settings(ort_threads=intra_op_threads)
    return ModelRegistry.from_settings(settings)


class YuNetDetector:
    """`model` names a YuNet entry of the model manifest. Without a `session`, the session comes from
    `registry` (by default one on the service's settings), which checks the licence and the file's sha256 and
    builds the session from the very bytes it hashed; a given `session` is used as is (the caller made it,
    usually with a registry's `load_session`)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        registry: ModelRegistry | None = None,
        score_threshold: float = DEFAULT_SCORE_THRESHOLD,
        nms_threshold: float = DEFAULT_NMS_THRESHOLD,
        session: ort.InferenceSession | None = None,
        intra_op_threads: int | None = None,
    ) -> None:
        registry = registry or default_registry(intra_op_threads)
        self.entry: ModelEntry = registry.entry(model)
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.session = session if session is not None else registry.load_session(model)
        self._input_name = self.session.get_inputs()[0].name
        self._output_names = [o.name for o in self.session.get_outputs()]

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def sha256(self) -> str:
        return self.entry.sha256

    @property
    def licence(self) -> str:
        return self.entry.licence_weights

    @property
    def provider(self) -> str:
        return active_provider(self.session)

    def detect(self, bgr: np.ndarray, *, score_threshold: float | None = None) -> Detections:
        """Faces in a BGR uint8 image; `score_threshold` overrides the detector's default for this call."""
        if not has_pixels(bgr):
            return Detections.empty()
        h, w = bgr.shape[:2]
        # Zero-padded bottom and right so every stride divides the input; resizing would lose small faces.
        blob = planar_blob(bgr, multiple=STRIDE_MULTIPLE)
        _, _, padded_h, padded_w = blob.shape
        raw = self.session.run(self._output_names, {self._input_name: blob})
        outputs = dict(zip(self._output_names, raw, strict=True))
        threshold = self.score_threshold if score_threshold is None else score_threshold
        boxes, scores = decode(outputs, padded_h, padded_w, threshold)
        np.clip(boxes[:, 0::2], 0, w, out=boxes[:, 0::2])
        np.clip(boxes[:, 1::2], 0, h, out=boxes[:, 1::2])
        # A box predicted wholly inside the zero padding collapses to nothing once clipped.
        visible = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        boxes, scores = boxes[visible], scores[visible]
        keep = nms(boxes, scores, self.nms_threshold)
        return Detections(boxes[keep], scores[keep], np.full(len(keep), "face"))
