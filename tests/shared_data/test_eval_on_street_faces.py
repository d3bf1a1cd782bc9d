"""veil eval's loop on a few real street photos (../shared/data, WIDER FACE street classes). Skips without the data.

Floors, not targets (`veil eval` itself reports the figures): they catch a box-format or matching bug that
would make every figure near zero. And C80 read from solid-masked PNG outputs equals C80 from the boxes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.settings import Settings
from worker.engine.masking import MaskStyle, apply_masks
from worker.evaluation import evaluate, load_coco
from worker.evaluation.engines import build_candidates
from worker.evaluation.evaluate import load_bgr
from worker.evaluation.metrics import COVERED_FRACTION, coverage_from_pixels

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "wider_face_val_street"
pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not (DATA / "dev.json").is_file(), reason="../shared/data is not here")]


def test_yunet_figures_on_eight_street_photos_are_plausible() -> None:
    data = load_coco(DATA / "dev.json").head(8)
    [yunet] = build_candidates(Settings(), detectors=["yunet_n"])
    report = evaluate(data, yunet.predict, name="yunet_n", targets=("face",))
    face = report.classes["face"]
    print(report.summary())
    assert face["all"].counted > 100
    assert face[">=64"].recall is None or face[">=64"].recall >= 0.7
    assert face["all"].precision is not None and face["all"].precision >= 0.6
    assert face["all"].c80 is not None and face["all"].c80 >= 0.5
    # Masks are padded beyond the detector's box, so they hide at least what IoU matching finds.
    assert face["all"].c80 >= face["all"].recall - 0.05  # type: ignore[operator]


def test_coverage_read_from_solid_outputs_matches_the_boxes() -> None:
    data = load_coco(DATA / "dev.json").head(3)
    [yunet] = build_candidates(Settings(), detectors=["yunet_n"])
    from_boxes = evaluate(data, yunet.predict, targets=("face",)).classes["face"]["all"]
    covered = counted = 0
    for image in data.images:
        bgr = load_bgr(image)
        _, masks = yunet.predict(bgr)
        out = apply_masks(bgr, masks, MaskStyle.SOLID, solid_color=(0, 255, 0))
        masked = (out != bgr).any(axis=2) | (out == (0, 255, 0)).all(axis=2)
        truth, ignore = image.truth("face")
        covered += int((coverage_from_pixels(truth[~ignore], masked) >= COVERED_FRACTION).sum())
        counted += int((~ignore).sum())
    assert counted == from_boxes.counted and covered / counted == pytest.approx(from_boxes.c80)
