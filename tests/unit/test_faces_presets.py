"""Face presets build from the registry and find the astronaut; the ensemble's fusion and ranges, with
hand-made passes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr

from shared.settings import Settings
from worker.engine.detector import Detector
from worker.engine.faces import FACE_PRESETS, FaceEnsemble, FacePreset, ScalePass, build_ensemble, build_face_detector
from worker.engine.faces.ensemble import pass_scale
from worker.engine.registry import ModelRegistry


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    registry = ModelRegistry.from_settings(Settings())
    needed = {p.model for spec in FACE_PRESETS.values() for p in spec.passes}
    missing = [name for name in sorted(needed) if registry.status(name) != "ok"]
    if missing:
        pytest.skip(f"models {missing} are not pulled here (`veil models pull`)")
    return registry


@pytest.mark.parametrize("preset", ["fast", "balanced", "thorough"])
def test_preset_builds_and_finds_the_astronaut(registry: ModelRegistry, preset: str) -> None:
    detector = build_face_detector(preset, registry.load_session)
    assert isinstance(detector, Detector)
    assert detector.task == "face"
    found = detector.detect(astronaut_bgr())
    assert len(found) == 1
    assert list(found.labels) == ["face"]
    np.testing.assert_allclose(found.boxes[0], ASTRONAUT_FACE, atol=8)
    width, height = detector.padding
    assert 1.0 <= width <= height <= 3.0
    assert set(detector.model_names) == {p.model for p in FACE_PRESETS[preset].passes}
    point = json.loads(json.dumps(detector.operating_point()))  # JSON-able, for job manifests
    assert point["preset"] == preset
    assert point["score_threshold"] == FACE_PRESETS[preset].score_threshold
    assert len(point["passes"]) == len(FACE_PRESETS[preset].passes)


@pytest.mark.parametrize("preset", ["fast", "balanced", "thorough"])
def test_preset_finds_nothing_in_noise_and_handles_odd_sizes(registry: ModelRegistry, preset: str) -> None:
    detector = build_face_detector(preset, registry.load_session)
    noise = np.random.default_rng(5).integers(0, 256, (301, 457, 3), dtype=np.uint8)
    assert len(detector.detect(noise)) == 0
    assert len(detector.detect(np.zeros((0, 10, 3), np.uint8))) == 0
    with pytest.raises(ValueError, match="BGR"):
        detector.detect(np.zeros((10, 10), np.uint8))


def test_unknown_preset_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="fastest"):
        build_face_detector("fastest", lambda name: pytest.fail("no model should load"))


def fixed(boxes: list[list[float]], scores: list[float]):
    """A pass that 'finds' the given boxes, stated in the pixels of the image it is handed."""
    def run(image: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
        b, s = np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)
        return b[s >= floor], s[s >= floor]
    return run


def ensemble(passes, runners, threshold=0.3) -> FaceEnsemble:
    return FaceEnsemble(passes, runners, preset="test", score_threshold=threshold, padding=(1.2, 1.5))


def test_upscaled_pass_boxes_are_mapped_back_and_fused() -> None:
    passes = (ScalePass("a", 1.0), ScalePass("b", 2.0, max_height=48))
    # pass b sees the image twice as large: its box (40, 40, 60, 60) is (20, 20, 30, 30) in the frame
    runners = {"a": fixed([[20, 20, 30, 30]], [0.6]), "b": fixed([[40, 40, 60, 60]], [0.8])}
    found = ensemble(passes, runners).detect(np.zeros((100, 100, 3), np.uint8))
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [20, 20, 30, 30], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.7], atol=1e-6)  # mean of both passes, both trusted at 10 px


def test_a_face_only_one_trusted_pass_sees_is_scored_down_and_may_fall_below_the_threshold() -> None:
    passes = (ScalePass("a", 1.0), ScalePass("b", 2.0, max_height=48))
    runners = {"a": fixed([], []), "b": fixed([[40, 40, 60, 60]], [0.8])}
    image = np.zeros((100, 100, 3), np.uint8)
    np.testing.assert_allclose(ensemble(passes, runners, 0.3).detect(image).scores, [0.4], atol=1e-6)
    assert len(ensemble(passes, runners, 0.5).detect(image)) == 0
    # a per-call threshold (a job's `threshold` option) overrides the preset's either way
    assert len(ensemble(passes, runners, 0.5).detect(image, score_threshold=0.35)) == 1
    assert len(ensemble(passes, runners, 0.3).detect(image, score_threshold=0.45)) == 0


def test_a_large_face_is_judged_only_by_the_passes_trusted_at_its_size() -> None:
    passes = (ScalePass("a", 1.0), ScalePass("b", 2.0, max_height=48))
    # 80 px high: outside pass b's range, so pass a's score stands alone instead of being halved
    runners = {"a": fixed([[10, 10, 70, 90]], [0.6]), "b": fixed([], [])}
    found = ensemble(passes, runners, 0.5).detect(np.zeros((100, 100, 3), np.uint8))
    np.testing.assert_allclose(found.scores, [0.6], atol=1e-6)


def test_a_mirrored_pass_maps_its_boxes_back() -> None:
    # the mirrored pass sees x mirrored in a 100 px wide image: its (70, 10, 90, 30) is (10, 10, 30, 30)
    passes = (ScalePass("a", 1.0), ScalePass("b", 1.0, flip=True))
    runners = {"a": fixed([[10, 10, 30, 30]], [0.9]), "b": fixed([[70, 10, 90, 30]], [0.7])}
    found = ensemble(passes, runners).detect(np.zeros((50, 100, 3), np.uint8))
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], [10, 10, 30, 30], atol=1e-4)
    np.testing.assert_allclose(found.scores, [0.8], atol=1e-6)


def test_a_pass_with_a_pixel_budget_runs_shrunk_and_maps_back() -> None:
    seen: list[tuple[int, ...]] = []

    def run(image: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray]:
        seen.append(image.shape)
        return np.array([[10, 10, 20, 20]], np.float32), np.array([0.9], np.float32)

    passes = (ScalePass("a", 1.0, max_pixels=960 * 540),)
    found = ensemble(passes, {"a": run}).detect(np.zeros((1080, 1920, 3), np.uint8))
    assert seen == [(540, 960, 3)]
    np.testing.assert_allclose(found.boxes[0], [20, 20, 40, 40], atol=1e-4)


def test_boxes_are_clipped_to_the_frame() -> None:
    runners = {"a": fixed([[-5, 90, 20, 130]], [0.9])}
    found = ensemble((ScalePass("a", 1.0),), runners).detect(np.zeros((100, 100, 3), np.uint8))
    np.testing.assert_allclose(found.boxes[0], [0, 90, 20, 100])


def test_upscaling_passes_shrink_to_the_pixel_budget_or_are_skipped() -> None:
    assert pass_scale(2.0, 540, 960, 3840 * 2160) == 2.0
    assert pass_scale(2.0, 1080, 1920, 3840 * 2160) == 2.0
    assert pass_scale(2.0, 2160, 3840, 2 * 3840 * 2160) == pytest.approx(2 ** 0.5)
    assert pass_scale(2.0, 2160, 3840, 3840 * 2160) is None
    assert pass_scale(0.5, 2160, 3840, None) == 0.5
    assert pass_scale(1.0, 1080, 1920, 1280 * 720) == pytest.approx(2 / 3)
    assert pass_scale(1.0, 683, 1024, 1280 * 720) == 1.0


def test_missing_runner_or_no_passes_is_refused() -> None:
    with pytest.raises(ValueError, match="runner"):
        ensemble((ScalePass("a", 1.0),), {})
    with pytest.raises(ValueError, match="at least one"):
        ensemble((), {})


def test_boxes_under_16_px_need_the_small_face_margin_on_top_of_any_threshold() -> None:
    # 12 px and 20 px high boxes, each found by the only pass with score 0.4
    runners = {"a": fixed([[10, 10, 22, 22], [50, 50, 70, 70]], [0.4, 0.4])}
    passes = (ScalePass("a", 1.0),)
    image = np.zeros((100, 100, 3), np.uint8)

    def heights(found) -> list[float]:
        return sorted(float(h) for h in found.boxes[:, 3] - found.boxes[:, 1])

    plain = FaceEnsemble(passes, runners, preset="t", score_threshold=0.3, padding=(1.2, 1.5))
    assert heights(plain.detect(image)) == [12.0, 20.0]
    strict = FaceEnsemble(passes, runners, preset="t", score_threshold=0.3, padding=(1.2, 1.5), small_face_margin=0.15)
    assert heights(strict.detect(image)) == [20.0]  # 0.4 < 0.3 + 0.15 under 16 px only
    assert heights(strict.detect(image, score_threshold=0.2)) == [12.0, 20.0]  # a job's threshold keeps the margin
    assert heights(strict.detect(image, score_threshold=0.26)) == [20.0]
    assert strict.operating_point()["small_face_margin"] == 0.15


def test_a_box_clipped_under_16_px_by_the_frame_edge_is_judged_as_small() -> None:
    # 30 px high before clipping, 10 px inside the frame
    runners = {"a": fixed([[10, -20, 40, 10]], [0.4])}
    ens = FaceEnsemble((ScalePass("a", 1.0),), runners, preset="t", score_threshold=0.3, padding=(1.2, 1.5),
                       small_face_margin=0.15)
    assert len(ens.detect(np.zeros((100, 100, 3), np.uint8))) == 0


def test_a_preset_s_fusion_overlap_and_small_face_margin_reach_its_ensemble(registry: ModelRegistry) -> None:
    spec = FacePreset((ScalePass("yunet_n", 1.0),), score_threshold=0.3, padding=(1.6, 2.0), fusion_iou=0.4,
                      small_face_margin=0.1)
    built = build_ensemble("t", spec, registry.load_session)
    assert built.fusion_iou == 0.4 and built.small_face_margin == 0.1
    assert build_face_detector("balanced", registry.load_session).small_face_margin == 0.0  # the default
