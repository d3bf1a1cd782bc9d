"""YuNet (libfacedetection) raw pass: one image in, boxes and scores out, before any fusion."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from worker.engine.blob import planar_blob
from worker.engine.face_yunet import STRIDE_MULTIPLE, decode


class YuNetRunner:
    """Runs a YuNet-n or YuNet-s session on a BGR uint8 image at the size it is given.

    The input is raw BGR in 0..255 (no mean or scale), padded to a multiple of 32 because the three heads
    (strides 8, 16, 32) must tile the input exactly.
    """

    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self._input_name = session.get_inputs()[0].name
        self._output_names = [o.name for o in session.get_outputs()]

    def __call__(self, bgr: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        blob = planar_blob(bgr, multiple=STRIDE_MULTIPLE)
        _, _, padded_h, padded_w = blob.shape
        raw = self.session.run(self._output_names, {self._input_name: blob})
        outputs = dict(zip(self._output_names, raw, strict=True))
        return decode(outputs, padded_h, padded_w, threshold)
