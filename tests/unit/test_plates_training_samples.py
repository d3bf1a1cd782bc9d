"""The verifier's training samples and held-out split (training/plates/): labels follow the plate boxes."""

from __future__ import annotations

import numpy as np

from tests.unit.plate_fixtures import PLATE_BOX, plate_frame
from training.plates.dataset import is_held_out
from training.plates.samples import image_samples
from worker.engine.plates.crops import INPUT_HW, boxes_from_window, windows_for


def test_the_held_out_split_is_stable_and_about_a_tenth() -> None:
    names = [f"oid/{i:016x}.jpg" for i in range(2000)]
    held = [n for n in names if is_held_out(n)]
    assert 0.07 < len(held) / len(names) < 0.13
    assert held == [n for n in names if is_held_out(n)]


def test_samples_label_proposals_by_where_they_fall() -> None:
    plates = np.array([PLATE_BOX], np.float32)
    on_plate = [202, 152, 300, 178]  # one word of the plate: positive, regressing to the whole plate
    off_plate = [450, 20, 560, 50]  # nowhere near it: negative
    half = [260, 150, 400, 180]  # half on it: ambiguous, left out
    proposals = np.array([on_plate, off_plate, half], np.float32)
    crops, labels, targets = image_samples(
        plate_frame(), plates, proposals, np.random.default_rng(0), jitter_per_plate=3, random_negatives=5
    )
    assert crops.shape[1:] == (*INPUT_HW, 3) and len(crops) == len(labels) == len(targets)
    # 3 jittered copies + the on-plate proposal are positive; the off-plate one and up to 5 random boxes not.
    assert labels.sum() == 4
    assert 1 <= (labels == 0).sum() <= 6
    # The on-plate proposal's target, mapped back out of its window, is the plate itself.
    np.testing.assert_allclose(boxes_from_window(windows_for(np.array([on_plate], np.float32)), targets[3:4]),
                               plates, atol=1e-3)
