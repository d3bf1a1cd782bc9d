"""Runs the bundled plate verifier (ONNX) on context crops around candidate boxes."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from worker.engine.plates.crops import boxes_from_window, crop_windows, to_blob, windows_for

BATCH = 128  # bounds the input tensor (128 x 3 x 48 x 96 floats is 7 MB) on frames with many candidates


class PlateVerifier:
    def __init__(self, session: ort.InferenceSession) -> None:
        self.session = session
        self._input = session.get_inputs()[0].name

    def verify(self, bgr: np.ndarray, candidates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Plate probability (N,) and regressed plate box (N, 4) for each candidate box (N, 4)."""
        candidates = np.asarray(candidates, np.float32).reshape(-1, 4)
        if not len(candidates):
            return np.zeros(0, np.float32), np.zeros((0, 4), np.float32)
        windows = windows_for(candidates)
        scores, rel = [], []
        for start in range(0, len(windows), BATCH):
            blob = to_blob(crop_windows(bgr, windows[start : start + BATCH]))
            score, box = self.session.run(None, {self._input: blob})
            scores.append(np.asarray(score, np.float32).reshape(-1))
            rel.append(np.asarray(box, np.float32).reshape(-1, 4))
        return np.concatenate(scores), boxes_from_window(windows, np.concatenate(rel))
