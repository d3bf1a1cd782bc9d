"""Plate detection: DB decoding, crops, the verifier's ONNX round trip and the presets end to end."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from shared.settings import Settings
from tests.unit.plate_fixtures import PLATE_BOX, dark_text_model, plate_frame
from worker.engine.detection_engine import DetectionEngines
from worker.engine.detections import Detections
from worker.engine.detector import Detector
from worker.engine.masking import pad_boxes
from worker.engine.model_files import MODELS_DIR
from worker.engine.plates import build_plate_detector
from worker.engine.plates.crops import (
    INPUT_HW,
    boxes_from_window,
    crop_windows,
    window_targets,
    windows_for,
)
from worker.engine.plates.presets import NETWORK_MODEL, PLATE_PRESETS, TEXT_MODEL, VERIFIER_MODEL
from worker.engine.plates.text_proposals import DBParams, TextProposer, boxes_from_probability, tiles
from worker.engine.plates.verifier import PlateVerifier
from worker.engine.registry import ModelRegistry, default_manifest

PERMISSIVE = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")


def _covered(box: tuple[float, ...], boxes: np.ndarray) -> float:
    """Share of `box` covered by the union of `boxes`."""
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    hit = np.zeros((y2 - y1, x2 - x1), bool)
    for bx1, by1, bx2, by2 in np.round(boxes).astype(int):
        hit[max(by1 - y1, 0) : max(by2 - y1, 0), max(bx1 - x1, 0) : max(bx2 - x1, 0)] = True
    return float(hit.mean())


def test_decoding_grows_a_text_region_back_by_the_db_unclip_distance() -> None:
    prob = np.zeros((100, 160), np.float32)
    prob[30:50, 20:80] = 0.9  # a 60 x 20 shrunk text region
    prob[70:90, 100:150] = 0.15  # below the pixel threshold: not text
    boxes, scores = boxes_from_probability(prob, DBParams(bin_threshold=0.2, box_threshold=0.5))
    # the score is the mean probability over the dilated region, one pixel wider and higher than the text
    assert len(boxes) == 1 and scores[0] == pytest.approx(0.9 * 60 * 20 / (61 * 21), abs=0.01)
    # unclip distance = area * 1.6 / perimeter, measured on the 2x2-dilated region (61 x 21)
    distance = 61 * 21 * 1.6 / (2 * (61 + 21))
    np.testing.assert_allclose(boxes[0], [20 - distance, 30 - distance, 81 + distance, 51 + distance], atol=1.0)


def test_decoding_drops_regions_whose_mean_probability_is_low() -> None:
    prob = np.zeros((100, 160), np.float32)
    prob[30:50, 20:80] = 0.35
    assert len(boxes_from_probability(prob, DBParams(bin_threshold=0.3, box_threshold=0.5))[0]) == 0
    assert len(boxes_from_probability(prob, DBParams(bin_threshold=0.3, box_threshold=0.3))[0]) == 1


def test_tiles_cover_the_frame_with_the_requested_overlap() -> None:
    windows = list(tiles(1080, 1920, 640, 128))
    hit = np.zeros((1080, 1920), bool)
    for y0, x0, y1, x1 in windows:
        assert y1 - y0 <= 640 and x1 - x0 <= 640
        hit[y0:y1, x0:x1] = True
    assert hit.all()
    assert list(tiles(100, 200, 640, 128)) == [(0, 0, 100, 200)]


def test_text_proposals_find_a_rendered_plate_and_nothing_on_a_flat_frame() -> None:
    proposer = TextProposer(dark_text_model())
    for scale, tile, overlap in ((1.0, 640, 0), (1.5, 640, 128), (0.75, 320, 64)):
        boxes, scores = proposer.propose(plate_frame(), scale, tile, overlap)
        text_block = (PLATE_BOX[0] + 8, PLATE_BOX[1] + 8, PLATE_BOX[2] - 8, PLATE_BOX[3] - 6)
        assert _covered(text_block, boxes) >= 0.8, (scale, tile)
        assert (scores > 0).all()
    flat = np.full((360, 640, 3), 110, np.uint8)
    assert len(proposer.propose(flat, 1.0, 640, 0)[0]) == 0


def test_crop_windows_and_box_targets_round_trip() -> None:
    boxes = np.array([[100, 50, 160, 70], [0, 0, 4, 2]], np.float32)
    windows = windows_for(boxes)
    np.testing.assert_allclose(windows[0], [40, 30, 220, 90])  # CONTEXT = 3 times the size, same centre
    assert windows[1, 3] - windows[1, 1] >= 12  # tiny boxes get a minimum window
    np.testing.assert_allclose(boxes_from_window(windows, window_targets(windows, boxes)), boxes, atol=1e-4)
    bgr = np.zeros((100, 200, 3), np.uint8)
    bgr[50:70, 100:160] = 255
    crops = crop_windows(bgr, windows)
    assert crops.shape == (2, *INPUT_HW, 3)
    # The box sits in the middle third of its window, and the window's outside-the-frame part is black.
    h, w = INPUT_HW
    assert crops[0, h // 2, w // 2].min() == 255 and crops[0, 2, 2].max() == 0


def test_a_verifier_exported_from_torch_runs_the_same_in_onnx_runtime(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from training.plates.model import PlateVerifier as TorchVerifier
    from training.plates.model import export_onnx

    torch.manual_seed(0)
    model = TorchVerifier()
    path = tmp_path / "verifier.onnx"
    export_onnx(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    candidates = np.array([PLATE_BOX, [10, 10, 60, 30], [600, 300, 640, 360]], np.float32)
    scores, boxes = PlateVerifier(session).verify(plate_frame(), candidates)
    assert scores.shape == (3,) and boxes.shape == (3, 4)
    from worker.engine.plates.crops import to_blob

    crops = torch.from_numpy(to_blob(crop_windows(plate_frame(), windows_for(candidates))))
    with torch.no_grad():
        logit, rel = model.eval()(crops)
    np.testing.assert_allclose(scores, torch.sigmoid(logit).numpy(), atol=1e-4)
    np.testing.assert_allclose(boxes, boxes_from_window(windows_for(candidates), rel.numpy()), atol=1e-2)


def _bundled_registry(tmp_path) -> ModelRegistry:
    return ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE,
                         providers=["CPUExecutionProvider"])


def test_the_bundled_verifier_is_in_the_manifest_and_prefers_the_plate_to_the_background(tmp_path) -> None:
    registry = _bundled_registry(tmp_path)
    entry = registry.entry(VERIFIER_MODEL)
    assert entry.bundled and entry.task == "plate" and not registry.refused_licences(VERIFIER_MODEL)
    assert (MODELS_DIR / entry.file).parent.joinpath("MODEL_CARD.md").is_file()
    verifier = PlateVerifier(registry.load_session(VERIFIER_MODEL))
    background = np.array([[20, 300, 150, 330], [450, 20, 580, 50]], np.float32)
    scores, boxes = verifier.verify(plate_frame(), np.concatenate([[PLATE_BOX], background]).astype(np.float32))
    assert scores[0] > 0.5 and (scores[1:] < 0.5).all()
    assert np.all(np.abs(boxes[0] - np.array(PLATE_BOX)) < 15)


@pytest.mark.parametrize("preset", sorted(PLATE_PRESETS))
def test_every_preset_builds_a_detector_that_keeps_the_contract(tmp_path, preset: str) -> None:
    registry = _bundled_registry(tmp_path)
    text_model = dark_text_model()  # the real text model is pulled, not bundled: a tiny real stand-in

    def load_session(name: str) -> ort.InferenceSession:
        return text_model if name == TEXT_MODEL else registry.load_session(name)

    detector = build_plate_detector(preset, load_session)
    assert isinstance(detector, Detector) and detector.task == "plate"
    spec = PLATE_PRESETS[preset]
    sources = [name for name, used in ((NETWORK_MODEL, spec.net_long_sides), (TEXT_MODEL, spec.long_sides)) if used]
    assert sources and detector.model_names == (*sources, VERIFIER_MODEL)
    assert len(detector.padding) == 2 and all(p >= 1.0 for p in detector.padding)
    point = json.loads(json.dumps(detector.operating_point()))
    assert point["verifier_threshold"] == PLATE_PRESETS[preset].verifier_threshold
    found = detector.detect(plate_frame())
    assert (found.labels == "plate").all()
    assert len(detector.detect(np.full((360, 640, 3), 110, np.uint8))) == 0


@pytest.mark.parametrize("preset", sorted(PLATE_PRESETS))
def test_every_preset_masks_the_rendered_plate_with_the_real_text_model(preset: str) -> None:
    registry = ModelRegistry.from_settings(Settings(ort_providers=["CPUExecutionProvider"]))
    if registry.status(TEXT_MODEL) != "ok":
        pytest.skip(f"{TEXT_MODEL} is not pulled on this machine (veil models pull)")
    detector = build_plate_detector(preset, registry.load_session)
    frame = plate_frame()
    found = detector.detect(frame)
    assert (found.labels == "plate").all() and len(found) >= 1
    masks = pad_boxes(found.boxes, frame.shape, width_scale=detector.padding[0], height_scale=detector.padding[1])
    assert _covered(PLATE_BOX, masks) >= 0.95
    # A job's threshold replaces the verifier's: above every score, nothing is left.
    assert len(detector.detect(frame, score_threshold=float(found.scores.max()) + 1e-3)) == 0
    assert len(detector.detect(np.full((360, 640, 3), 110, np.uint8))) == 0


def test_unknown_presets_and_bad_frames_are_refused(tmp_path) -> None:
    registry = _bundled_registry(tmp_path)
    with pytest.raises(ValueError):
        build_plate_detector("fastest", registry.load_session)
    text_model = dark_text_model()
    detector = build_plate_detector(
        "fast", lambda name: text_model if name == TEXT_MODEL else registry.load_session(name)
    )
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10), np.uint8))
    assert len(detector.detect(np.zeros((0, 10, 3), np.uint8))) == 0
    for shape in ((1, 1, 3), (5, 3000, 3), (3000, 7, 3)):  # degenerate frames scale to a pixel or two
        found = detector.detect(np.random.default_rng(0).integers(0, 255, shape, dtype=np.uint8))
        assert (found.boxes[:, 2] <= shape[1]).all() and (found.boxes[:, 3] <= shape[0]).all()


def test_around_tracks_the_network_proposes_at_its_tracking_threshold(tmp_path) -> None:
    registry = _bundled_registry(tmp_path)
    detector = build_plate_detector("fast", registry.load_session)
    assert detector.network is not None
    point = PLATE_PRESETS["fast"]
    assert point.net_track_threshold is not None and point.net_track_threshold < point.net_threshold
    seen: list[float] = []
    real = detector.network.detect

    def spy(bgr, *, scale, threshold, nms_threshold):  # type: ignore[no-untyped-def]
        seen.append(threshold)
        return real(bgr, scale=scale, threshold=threshold, nms_threshold=nms_threshold)

    detector.network.detect = spy  # type: ignore[method-assign]
    engine = DetectionEngines.fixed(detector).get()
    engine.detect(plate_frame(), {"plate": None})
    engine.detect(plate_frame(), {"plate": None}, around_tracks=True)
    assert seen == [point.net_threshold, point.net_track_threshold]


def test_detectors_without_around_tracks_are_called_as_before() -> None:
    class Plain:
        task = "face"
        model_names = ("m",)
        calls: list[dict] = []

        def detect(self, bgr, **kwargs):  # type: ignore[no-untyped-def]
            # **kwargs does not count as accepting around_tracks: only a named parameter does.
            self.calls.append(kwargs)
            return Detections.empty()

        def operating_point(self) -> dict:
            return {}

    plain = Plain()
    DetectionEngines.fixed(plain).get().detect(np.zeros((8, 8, 3), np.uint8), {"face": None}, around_tracks=True)
    assert plain.calls == [{}]


def test_region_looks_run_at_the_finest_whole_frame_scale(tmp_path) -> None:
    detector = build_plate_detector("fast", _bundled_registry(tmp_path).load_session)
    assert detector.region_scale(1080, 1920) == pytest.approx(1280 / 1920)  # passes at 0.5 and 0.67
    assert detector.region_scale(720, 1280) == 1.0 and detector.region_scale(540, 960) == 1.0
