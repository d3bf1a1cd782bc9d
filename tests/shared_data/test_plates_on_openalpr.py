"""The plate detector on real photos (../shared/data/openalpr_plates dev split). Skips without the data or
without the pulled PP-OCRv6 text model.

Floors well below what benchmarks/plates_eval.py measures on all 139 images: they catch a decoding, crop or
box-format bug that would make the figures collapse, not a small drift.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from shared.settings import Settings
from worker.engine.detections import Detections
from worker.engine.masking import pad_boxes
from worker.engine.plates import build_plate_detector
from worker.engine.plates.presets import TEXT_MODEL
from worker.engine.registry import ModelRegistry
from worker.evaluation import evaluate, load_coco

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "openalpr_plates"
pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not (DATA / "dev.json").is_file(), reason="../shared/data is not here")]


def test_balanced_plates_on_twenty_openalpr_photos_are_masked_with_few_false_masks() -> None:
    registry = ModelRegistry.from_settings(Settings(ort_providers=["CPUExecutionProvider"]))
    if registry.status(TEXT_MODEL) != "ok":
        pytest.skip(f"{TEXT_MODEL} is not pulled on this machine (veil models pull)")
    detector = build_plate_detector("balanced", registry.load_session)

    def predict(bgr: np.ndarray) -> tuple[Detections, np.ndarray]:
        found = detector.detect(bgr)
        pw, ph = detector.padding
        return found, pad_boxes(found.boxes, bgr.shape, width_scale=pw, height_scale=ph)

    report = evaluate(load_coco(DATA / "dev.json").head(20), predict, name="plates", targets=("plate",))
    plate = report.classes["plate"]["all"]
    print(report.summary())
    assert plate.counted == 20
    assert plate.c80 is not None and plate.c80 >= 0.85
    assert plate.recall is not None and plate.recall >= 0.8
    assert plate.false_masks_per_image is not None and plate.false_masks_per_image <= 1.0
