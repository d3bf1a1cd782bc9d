"""Veil's plate network (plate_detector_v1): input scaling, decoding, the bundled model on a rendered plate, and
the plate detector built from the network, the text proposals or both."""

from __future__ import annotations

import numpy as np
import pytest
from plate_fixtures import PLATE_BOX, dark_text_model, plate_frame

from shared.settings import Settings
from worker.engine.detections import iou_one_to_many
from worker.engine.plates import build_plate_detector
from worker.engine.plates.centre_net import STRIDE, CentreNetPlates, decode, to_input
from worker.engine.plates.detector import PlateDetector, PlateOperatingPoint, frame_scales
from worker.engine.plates.presets import NETWORK_MODEL, PLATE_PRESETS, VERIFIER_MODEL
from worker.engine.plates.text_proposals import TextProposer
from worker.engine.plates.verifier import PlateVerifier
from worker.engine.registry import ModelRegistry


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry.from_settings(Settings())


def test_input_is_scaled_padded_to_32_and_normalised() -> None:
    bgr = np.full((100, 150, 3), 255, np.uint8)
    blob = to_input(bgr, 2.0)
    assert blob.shape == (1, 3, 224, 320)  # 200 x 300 padded up to multiples of 32
    assert np.allclose(blob[0, :, :200, :300], 1.0)
    assert np.all(blob[0, :, 200:, :] == 0.0) and np.all(blob[0, :, :, 300:] == 0.0)
    assert frame_scales(1080, 1920, (1280,), 1.5) == pytest.approx([1280 / 1920])
    assert frame_scales(100, 200, (1280,), 1.5) == [1.5]


def test_decode_turns_peaks_into_frame_boxes() -> None:
    peaks = np.zeros((1, 1, 10, 20), np.float32)
    box = np.zeros((1, 4, 10, 20), np.float32)
    peaks[0, 0, 4, 7] = 0.8
    peaks[0, 0, 1, 1] = 0.05  # below the threshold
    box[0, :, 4, 7] = (np.log(10.0), np.log(2.0), 0.5, 0.25)  # 40 x 8 px at stride 4, centre inside the cell
    boxes, scores = decode(peaks, box, threshold=0.1, scale=0.5)
    assert scores.tolist() == pytest.approx([0.8])
    cx, cy = (7 + 0.5) * STRIDE, (4 + 0.25) * STRIDE
    expected = np.array([cx - 20, cy - 4, cx + 20, cy + 4]) / 0.5
    assert boxes[0] == pytest.approx(expected)


def test_bundled_network_finds_a_rendered_plate_and_nothing_on_a_flat_frame(registry: ModelRegistry) -> None:
    network = CentreNetPlates(registry.load_session(NETWORK_MODEL))
    found = network.detect(plate_frame(), scale=1.5, threshold=0.1, nms_threshold=0.5)
    assert len(found.boxes) == 1
    assert iou_one_to_many(np.array(PLATE_BOX, np.float32), found.boxes)[0] > 0.6
    flat = network.detect(np.full((360, 640, 3), 110, np.uint8), scale=1.5, threshold=0.1, nms_threshold=0.5)
    assert len(flat.boxes) == 0


def test_network_only_point_runs_no_text_detector(registry: ModelRegistry) -> None:
    point = PlateOperatingPoint(long_sides=(), max_scale=1.0, tile=1280, overlap=160, proposal_threshold=0.5,
                                verifier_threshold=0.5, nms_threshold=0.3, padding=(1.3, 1.5),
                                net_long_sides=(960,), net_threshold=0.1)
    detector = PlateDetector(None, PlateVerifier(registry.load_session(VERIFIER_MODEL)), point,
                             model_names=(NETWORK_MODEL, VERIFIER_MODEL),
                             network=CentreNetPlates(registry.load_session(NETWORK_MODEL)))
    found = detector.detect(plate_frame())
    assert len(found.boxes) == 1 and found.labels.tolist() == ["plate"]
    assert iou_one_to_many(np.array(PLATE_BOX, np.float32), found.boxes)[0] > 0.5
    assert detector.operating_point()["detector"] == "plate_network+plate_verifier"


def test_union_of_sources_proposes_from_both(registry: ModelRegistry) -> None:
    point = PlateOperatingPoint(long_sides=(640,), max_scale=1.0, tile=1280, overlap=160, proposal_threshold=0.5,
                                verifier_threshold=0.5, nms_threshold=0.3, padding=(1.3, 1.5),
                                net_long_sides=(960,), net_threshold=0.1)
    verifier = PlateVerifier(registry.load_session(VERIFIER_MODEL))
    network = CentreNetPlates(registry.load_session(NETWORK_MODEL))
    both = PlateDetector(TextProposer(dark_text_model()), verifier, point, model_names=("a", "b", "c"),
                         network=network)
    text_only = PlateDetector(TextProposer(dark_text_model()), verifier,
                              PlateOperatingPoint(**{**point.__dict__, "net_long_sides": ()}), model_names=("a", "c"))
    n_both, n_text = len(both.proposals(plate_frame())[0]), len(text_only.proposals(plate_frame())[0])
    assert n_text >= 1 and n_both == n_text + 1  # the network adds its one peak on the plate


def test_sources_must_match_the_operating_point(registry: ModelRegistry) -> None:
    verifier = PlateVerifier(registry.load_session(VERIFIER_MODEL))
    with pytest.raises(ValueError):
        PlateDetector(None, verifier, PLATE_PRESETS["balanced"], model_names=())  # text sides but no proposer


@pytest.mark.parametrize("preset", sorted(PLATE_PRESETS))
def test_presets_record_the_models_they_run(preset: str, registry: ModelRegistry) -> None:
    detector = build_plate_detector(preset, registry.load_session)
    point = PLATE_PRESETS[preset]
    assert (NETWORK_MODEL in detector.model_names) == bool(point.net_long_sides)
    assert ("ppocr_v6_det_small" in detector.model_names) == bool(point.long_sides)
    assert detector.model_names[-1] == VERIFIER_MODEL


def test_veil_eval_can_run_the_network_alone(registry: ModelRegistry) -> None:
    from worker.evaluation.native import NativeDetector

    detector = NativeDetector(NETWORK_MODEL, registry.load_session)
    found = detector.detect(plate_frame())
    assert detector.task == "plate" and detector.model_names == (NETWORK_MODEL,)
    assert len(found.boxes) == 1
    assert iou_one_to_many(np.array(PLATE_BOX, np.float32), found.boxes)[0] > 0.5


def test_network_sides_that_come_to_one_scale_run_once(registry: ModelRegistry) -> None:
    network = CentreNetPlates(registry.load_session(NETWORK_MODEL))
    calls: list[float] = []
    real = network.detect

    def counting(bgr, *, scale, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(scale)
        return real(bgr, scale=scale, **kwargs)

    network.detect = counting  # type: ignore[method-assign]
    point = PlateOperatingPoint(long_sides=(), max_scale=1.0, tile=1280, overlap=160, proposal_threshold=0.5,
                                verifier_threshold=0.5, nms_threshold=0.3, padding=(1.3, 1.5),
                                net_long_sides=(960, 1280), net_threshold=0.1, net_max_scale=1.0)
    detector = PlateDetector(None, PlateVerifier(registry.load_session(VERIFIER_MODEL)), point,
                             model_names=(NETWORK_MODEL, VERIFIER_MODEL), network=network)
    detector.proposals(plate_frame(360, 640))  # both sides would enlarge it: one pass at 1.0x
    assert len(calls) == 1
    calls.clear()
    detector.proposals(plate_frame(1080, 1920))  # 0.5x and 0.67x
    assert sorted(calls) == pytest.approx([960 / 1920, 1280 / 1920])
