"""Training data of the plate network: synthetic plates, crops and centre-point targets (no torch needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from training.plates.detector_data import SampleConfig, make_sample, targets
from training.plates.synthetic import paste_plate, render_plate
from worker.engine.plates.centre_net import STRIDE


def test_targets_mark_the_centre_cell_with_box_terms_and_blank_ignored_regions() -> None:
    plate = np.array([[40, 60, 80, 72]], np.float32)  # 40 x 12 px, centre (60, 66)
    ignore = np.array([[0, 0, 16, 16]], np.float32)
    t = targets(plate, ignore, 128)
    s = 128 // STRIDE
    assert t["heat"].shape == (1, s, s) and t["box"].shape == (4, s, s)
    iy, ix = int(66 / STRIDE), int(60 / STRIDE)
    assert t["heat"][0, iy, ix] == 1.0 and np.count_nonzero(t["heat"] == 1.0) == 1
    assert t["box_mask"].sum() == 1.0 and t["box_mask"][iy, ix] == 1.0
    assert t["box"][:, iy, ix] == pytest.approx([math.log(10), math.log(3), 60 / 4 - ix, 66 / 4 - iy])
    assert t["heat"][0, iy, ix + 3] < 1.0 and t["heat"][0, iy, ix + 3] > t["heat"][0, iy + 3, ix]  # wide Gaussian
    assert np.all(t["weight"][:4, :4] == 0.0) and t["weight"][iy, ix] == 1.0


def test_rendered_plate_has_a_plate_shape() -> None:
    rng = np.random.default_rng(3)
    for height in (6, 20, 48):
        plate = render_plate(height, rng)
        assert plate.dtype == np.uint8 and plate.ndim == 3
        assert abs(plate.shape[0] - height) <= 1
        assert 1.7 <= plate.shape[1] / plate.shape[0] <= 5.3
        assert plate.std() > 10  # characters on a ground, not a flat patch


def test_pasted_plate_box_is_where_it_was_drawn() -> None:
    rng = np.random.default_rng(0)
    canvas = np.zeros((200, 300, 3), np.uint8)
    box = paste_plate(canvas, np.full((20, 80, 3), 255, np.uint8), (150.0, 100.0), rng)
    assert box is not None
    x1, y1, x2, y2 = box.astype(int)
    assert abs((x1 + x2) / 2 - 150) < 3 and abs((y1 + y2) / 2 - 100) < 3
    assert canvas[y1:y2, x1:x2].mean() > 150 and canvas[:y1 - 2].max() == 0
    assert paste_plate(canvas, np.full((20, 80, 3), 255, np.uint8), (5.0, 5.0), rng) is None  # off the edge


def test_samples_are_square_crops_with_boxes_inside_and_reproducible() -> None:
    photo = np.random.default_rng(1).integers(0, 255, (600, 900, 3), dtype=np.uint8)
    plates = np.array([[400, 300, 460, 316]], np.float32)
    cfg = SampleConfig(size=256)
    for seed in range(10):
        crop, boxes, ignore = make_sample(photo, plates, cfg, np.random.default_rng(seed))
        assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
        assert np.all(boxes >= 0) and np.all(boxes <= 256) and np.all(ignore >= 0) and np.all(ignore <= 256)
    first = make_sample(photo, plates, cfg, np.random.default_rng(7))
    again = make_sample(photo, plates, cfg, np.random.default_rng(7))
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])


def test_synthetic_plates_appear_in_crops_of_photos_without_plates() -> None:
    photo = np.full((512, 512, 3), 90, np.uint8)
    cfg = SampleConfig(size=256, synthetic=1.0)
    counts = [len(make_sample(photo, np.zeros((0, 4), np.float32), cfg, np.random.default_rng(s))[1])
              for s in range(8)]
    assert sum(counts) >= 8


def test_an_exported_plate_network_gives_onnx_runtime_the_peaks_and_boxes_torch_computes(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from training.plates.detector_model import ExportWrapper, PlateNet, export_onnx
    from worker.engine.plates.centre_net import to_input

    torch.manual_seed(0)
    model = PlateNet().eval()
    # An untrained heatmap is nearly flat (its bias prior), and near-ties make the peaks depend on rounding.
    torch.nn.init.normal_(model.heat[-1].weight, std=2.0)
    path = tmp_path / "plate_detector.onnx"
    export_onnx(model, str(path))
    frame = np.random.default_rng(0).integers(0, 255, (200, 300, 3), dtype=np.uint8)
    blob = to_input(frame, 1.0)  # 224 x 320: a size other than the export's dummy, so the axes are dynamic
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    peaks, box = session.run(None, {"image": blob})
    with torch.no_grad():
        want_peaks, want_box = ExportWrapper(model)(torch.from_numpy(blob))
    assert peaks.shape == (1, 1, 56, 80) and box.shape == (1, 4, 56, 80)
    assert np.allclose(peaks, want_peaks.numpy(), atol=1e-4) and np.allclose(box, want_box.numpy(), atol=1e-3)
    nonzero = peaks[peaks > 0]
    assert 0 < len(nonzero) < peaks.size / 2  # max-pool peak picking zeroed the non-maxima
