"""YuNet detector: a real face is found where it is, nothing is found in noise, altered models are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr

from worker.engine.detections import Detections, nms
from worker.engine.errors import EngineError
from worker.engine.face_yunet import DEFAULT_SCORE_THRESHOLD, YuNetDetector
from worker.engine.model_files import MODELS_DIR
from worker.engine.registry import ModelRegistry, default_manifest

YUNET_N = default_manifest()["yunet_n"]


def registry_in(bundled_dir: Path) -> ModelRegistry:
    # A registry that looks for bundled files in `bundled_dir`: the manifest's entries, other files.
    return ModelRegistry(default_manifest(), models_dir=bundled_dir, bundled_dir=bundled_dir,
                         allowed_licences=["Apache-2.0"], intra_op_threads=1)


@pytest.fixture(scope="module")
def detector() -> YuNetDetector:
    return YuNetDetector()


def test_bundled_model_matches_its_hash() -> None:
    assert registry_in(MODELS_DIR).verify("yunet_n") == MODELS_DIR / YUNET_N.file


def test_finds_the_astronauts_face(detector: YuNetDetector) -> None:
    found = detector.detect(astronaut_bgr())
    assert len(found) == 1
    assert found.scores[0] > 0.8
    assert list(found.labels) == ["face"]
    np.testing.assert_allclose(found.boxes[0], ASTRONAUT_FACE, atol=6)


@pytest.mark.parametrize("shape", [(500, 470), (513, 511), (300, 600)])
def test_box_is_stable_for_sizes_that_are_not_multiples_of_32(detector: YuNetDetector, shape) -> None:
    h, w = shape
    image = np.full((h, w, 3), 200, np.uint8)
    crop = astronaut_bgr()[: min(h, 512), : min(w, 512)]
    image[: crop.shape[0], : crop.shape[1]] = crop
    found = detector.detect(image)
    assert len(found) == 1
    np.testing.assert_allclose(found.boxes[0], ASTRONAUT_FACE, atol=6)


def test_boxes_are_clipped_to_the_image(detector: YuNetDetector) -> None:
    # Only the right half of the face is visible: the box must stop at the left edge, not go negative.
    found = detector.detect(np.ascontiguousarray(astronaut_bgr()[:, 225:]), score_threshold=0.3)
    assert len(found) >= 1
    assert found.boxes.min() >= 0
    assert (found.boxes[:, 2] <= 512 - 225).all() and (found.boxes[:, 3] <= 512).all()


@pytest.mark.parametrize("kind", ["black", "grey", "noise"])
def test_finds_nothing_without_faces(detector: YuNetDetector, kind: str) -> None:
    rng = np.random.default_rng(7)
    image = {
        "black": np.zeros((480, 640, 3), np.uint8),
        "grey": np.full((480, 640, 3), 128, np.uint8),
        "noise": rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
    }[kind]
    assert len(detector.detect(image)) == 0


def test_per_call_threshold_overrides_the_default(detector: YuNetDetector) -> None:
    image = astronaut_bgr()
    assert detector.score_threshold == DEFAULT_SCORE_THRESHOLD
    assert len(detector.detect(image, score_threshold=0.99)) == 0
    assert len(detector.detect(image, score_threshold=0.3)) == 1


def test_reports_model_identity(detector: YuNetDetector) -> None:
    assert detector.name == "yunet_n"
    assert detector.sha256 == YUNET_N.sha256
    assert detector.licence == YUNET_N.licence_weights == "Apache-2.0"
    assert detector.provider.endswith("ExecutionProvider")


def test_altered_model_is_refused(tmp_path) -> None:
    copy = tmp_path / YUNET_N.file
    copy.parent.mkdir(parents=True)
    shutil.copyfile(MODELS_DIR / YUNET_N.file, copy)
    raw = bytearray(copy.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    copy.write_bytes(bytes(raw))
    with pytest.raises(EngineError) as err:
        YuNetDetector(registry=registry_in(tmp_path))
    assert err.value.code == "model_integrity"
    assert str(tmp_path) not in err.value.message


def test_missing_model_is_reported(tmp_path) -> None:
    with pytest.raises(EngineError) as err:
        YuNetDetector(registry=registry_in(tmp_path))
    assert err.value.code == "model_missing" and "reinstall" in err.value.message
    assert str(tmp_path) not in err.value.message


def test_a_given_session_is_used_and_identity_still_comes_from_the_manifest(detector: YuNetDetector) -> None:
    # No file is read: the caller's session (a registry's, in benchmarks) is the model.
    other = YuNetDetector(registry=registry_in(Path("/nonexistent")), session=detector.session)
    assert other.session is detector.session and (other.name, other.sha256) == ("yunet_n", YUNET_N.sha256)


def test_nms_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10.5]], np.float32)
    scores = np.array([0.8, 0.9, 0.7, 0.1], np.float32)
    assert nms(boxes, scores, 0.3).tolist() == [1, 2]
    assert nms(boxes, scores, 0.99).tolist() == [1, 0, 2, 3]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.3).tolist() == []


def test_detections_to_list_and_empty() -> None:
    found = Detections(np.array([[1.04, 2.06, 3.0, 4.0]]), np.array([0.123456]), np.array(["face"]))
    assert found.to_list() == [{"label": "face", "score": 0.1235, "box": [1.0, 2.1, 3.0, 4.0]}]
    assert len(Detections.empty()) == 0 and Detections.empty().to_list() == []
    with pytest.raises(ValueError):
        found.boxes[0, 0] = 5  # read-only: a frozen result stays frozen
