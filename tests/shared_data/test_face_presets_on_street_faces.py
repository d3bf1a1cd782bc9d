"""Face presets on real street photos (../shared/data, WIDER FACE street dev). Skips without the data.

Floors with a margin, not the tuned figures (benchmarks/faces_presets.py measures those on the whole split):
they catch a broken decode, fusion or scale mapping, and a pyramid that stops adding small faces.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from worker.engine.faces import FACE_PRESETS, build_face_detector
from worker.engine.masking import pad_boxes
from worker.engine.registry import ModelRegistry
from worker.evaluation import evaluate, load_coco

DEV = Path(__file__).resolve().parents[3] / "shared" / "data" / "wider_face_val_street" / "dev.json"
pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not DEV.is_file(), reason="../shared/data is not here")]


def c80_by_size(preset: str, registry: ModelRegistry) -> dict[str, float]:
    detector = build_face_detector(preset, registry.load_session)
    width, height = detector.padding

    def predict(bgr):
        found = detector.detect(bgr)
        return found, pad_boxes(found.boxes, bgr.shape, width_scale=width, height_scale=height)

    report = evaluate(load_coco(DEV).head(40), predict, name=preset, targets=("face",))
    face = report.classes["face"]
    return {"<16": face["<16"].c80 or 0.0, "16-32": face["16-32"].c80 or 0.0,
            "all": face["all"].c80 or 0.0, "fm": face["all"].false_masks_per_image or 0.0}


def test_fast_and_balanced_cover_most_faces_and_the_pyramid_adds_small_ones() -> None:
    registry = ModelRegistry.from_settings(Settings())
    if any(registry.status(p.model) != "ok" for name in ("fast", "balanced") for p in FACE_PRESETS[name].passes):
        pytest.skip("face models are not pulled here (`veil models pull`)")
    fast = c80_by_size("fast", registry)
    balanced = c80_by_size("balanced", registry)
    for figures in (fast, balanced):
        assert figures["all"] >= 0.7, figures
        assert figures["fm"] <= 3.0, figures
    assert balanced["<16"] > fast["<16"], (fast, balanced)
