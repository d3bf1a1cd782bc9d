"""Presets and targets: which detector runs for each target, how their boxes are padded, what the manifest says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr
from video_fixtures import make_clip, read_frames

import worker.engine.presets as presets
from shared.settings import Settings
from worker.engine.detection_engine import DetectionEngines
from worker.engine.detections import Detections
from worker.engine.detector import Detector
from worker.engine.errors import TARGET_UNAVAILABLE, EngineError
from worker.engine.face_yunet import YuNetDetector
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions, ImageAnonymizer
from worker.engine.registry import ModelRegistry, default_manifest
from worker.engine.video import VideoAnonymizer, VideoLimits, VideoOptions

PLATE_BOX = (40.0, 400.0, 140.0, 430.0)  # somewhere on the astronaut's suit, far from the face
PERMISSIVE = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause")


class FixedPlates:
    """A plate detector that always finds the same box (scores chosen by the test)."""

    task = "plate"

    def __init__(self, boxes: list[tuple[float, ...]], scores: list[float],
                 padding: tuple[float, float] | None = None) -> None:
        self.boxes, self.scores = np.array(boxes, np.float32).reshape(-1, 4), np.array(scores, np.float32)
        if padding is not None:
            self.padding = padding
        self.calls = 0

    @property
    def model_names(self) -> tuple[str, ...]:
        return ("ppocr_v6_det_small",)

    def detect(self, bgr: np.ndarray) -> Detections:
        self.calls += 1
        return Detections(self.boxes, self.scores, np.full(len(self.scores), "plate"))

    def operating_point(self) -> dict[str, Any]:
        return {"tile": 640, "scales": [1.0, 1.5]}


@pytest.fixture(scope="module")
def yunet() -> presets.SingleScaleYuNet:
    return presets.SingleScaleYuNet(YuNetDetector())


def _anonymizer(*detectors: Detector) -> ImageAnonymizer:
    return ImageAnonymizer(DetectionEngines.fixed(*detectors))


def test_every_preset_builds_a_face_detector_from_allowed_models(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE,
                             providers=["CPUExecutionProvider"])
    pulled = ModelRegistry.from_settings(Settings(ort_providers=["CPUExecutionProvider"]))
    for preset in presets.PRESETS:
        try:
            detector = presets.build_detector("face", preset, pulled.load_session)
        except EngineError as exc:  # registry models not pulled on this machine: the message says how
            assert exc.code == "model_missing" and "veil models pull" in exc.message
            continue
        assert isinstance(detector, Detector) and detector.task == "face"
        for name in detector.model_names:
            assert not registry.refused_licences(name)
        found = detector.detect(astronaut_bgr())
        assert (found.labels == "face").all() and len(found) >= 1
        x1, y1, x2, y2 = found.boxes[np.argmax(found.scores)]
        fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
        assert abs(x1 - fx1) < 25 and abs(y1 - fy1) < 25 and abs(x2 - fx2) < 25 and abs(y2 - fy2) < 25


def test_unknown_preset_or_target_is_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=PERMISSIVE)
    with pytest.raises(ValueError):
        presets.build_detector("face", "fastest", registry.load_session)
    with pytest.raises(ValueError):
        presets.build_detector("tattoo", "balanced", registry.load_session)


def test_engines_build_only_what_a_job_asks_for() -> None:
    built: list[tuple[str, str]] = []

    def build(task: str, preset: str) -> Detector:
        built.append((task, preset))
        return FixedPlates([PLATE_BOX], [0.9]) if task == "plate" else presets.SingleScaleYuNet(YuNetDetector())

    engines = DetectionEngines(build, lambda name: {"name": name}, default_preset="fast")
    anonymizer = ImageAnonymizer(engines)
    anonymizer.process_array(astronaut_bgr(), AnonymizeOptions(targets=("plate",)))
    anonymizer.process_array(astronaut_bgr(), AnonymizeOptions(targets=("face",), preset="thorough"))
    assert built == [("plate", "fast"), ("face", "thorough")]
    assert engines.get(None) is engines.get("fast")


def test_both_targets_are_found_labelled_and_masked(yunet: presets.SingleScaleYuNet) -> None:
    image = astronaut_bgr()
    anonymizer = _anonymizer(yunet, FixedPlates([PLATE_BOX], [0.8]))
    masked, found, padded = anonymizer.process_array(image, AnonymizeOptions(mask=MaskStyle.SOLID))
    assert sorted(found.labels.tolist()) == ["face", "plate"] and padded.shape == (2, 4)
    plate = padded[list(found.labels).index("plate")]
    w_scale, h_scale = presets.default_padding("balanced", "plate")
    assert plate[2] - plate[0] == pytest.approx(100 * w_scale, abs=2)
    assert plate[3] - plate[1] == pytest.approx(30 * h_scale, abs=2)
    for x1, y1, x2, y2 in padded:
        assert (masked[y1:y2, x1:x2] == 0).all()
    keep = np.ones(image.shape[:2], bool)
    for x1, y1, x2, y2 in padded:
        keep[y1:y2, x1:x2] = False
    assert np.array_equal(masked[keep], image[keep])

    only_faces = anonymizer.process_array(image, AnonymizeOptions(targets=("face",)))[1]
    assert only_faces.labels.tolist() == ["face"]


def test_padding_precedence_job_then_detector_then_preset(yunet: presets.SingleScaleYuNet) -> None:
    image = astronaut_bgr()
    plates = FixedPlates([PLATE_BOX], [0.8], padding=(1.5, 2.0))
    anonymizer = _anonymizer(yunet, plates)

    def plate_size(options: AnonymizeOptions) -> tuple[int, int]:
        _, found, padded = anonymizer.process_array(image, options)
        x1, y1, x2, y2 = padded[list(found.labels).index("plate")]
        return int(x2 - x1), int(y2 - y1)

    assert plate_size(AnonymizeOptions()) == (150, 60)  # the detector's calibrated padding
    assert plate_size(AnonymizeOptions(width_scale=1.0)) == (100, 60)  # the job's, for every target
    assert plate_size(AnonymizeOptions(width_scale=1.0, padding_by_target={"plate": (1.2, None)})) == (120, 60)
    manifest = anonymizer.manifest(AnonymizeOptions(padding_by_target={"plate": (1.2, None)}))
    assert manifest["tasks"]["plate"]["padding"] == {"width_scale": 1.2, "height_scale": 2.0}
    assert manifest["tasks"]["face"]["padding"] == {"width_scale": 1.2, "height_scale": 1.5}  # the preset's


def test_a_threshold_filters_detectors_without_a_per_call_threshold(yunet: presets.SingleScaleYuNet) -> None:
    anonymizer = _anonymizer(yunet, FixedPlates([PLATE_BOX, (300, 420, 360, 440)], [0.995, 0.4]))
    found = anonymizer.process_array(astronaut_bgr(), AnonymizeOptions(targets=("plate",)))[1]
    assert len(found) == 2
    found = anonymizer.process_array(astronaut_bgr(), AnonymizeOptions(threshold_by_target={"plate": 0.5}))[1]
    assert sorted(found.labels.tolist()) == ["face", "plate"]
    # The face detector takes the threshold before NMS, so the same job value reaches it too.
    found = anonymizer.process_array(astronaut_bgr(), AnonymizeOptions(score_threshold=0.99))[1]
    assert found.labels.tolist() == ["plate"]


def test_the_manifest_threshold_is_the_one_that_applied(yunet: presets.SingleScaleYuNet) -> None:
    plates = FixedPlates([PLATE_BOX], [0.8])
    plates.score_threshold = 0.6  # type: ignore[attr-defined]  # its own, applied inside detect()
    anonymizer = _anonymizer(yunet, plates)
    tasks = anonymizer.manifest(AnonymizeOptions(score_threshold=0.3))["tasks"]
    assert tasks["face"]["score_threshold"] == 0.3  # YuNet takes a per-call threshold
    assert tasks["plate"]["score_threshold"] == 0.6  # this one cannot go below its own
    assert anonymizer.manifest(AnonymizeOptions(score_threshold=0.7))["tasks"]["plate"]["score_threshold"] == 0.7


def test_manifest_records_every_model_and_operating_point(yunet: presets.SingleScaleYuNet) -> None:
    anonymizer = _anonymizer(yunet, FixedPlates([PLATE_BOX], [0.8]))
    manifest = anonymizer.manifest(AnonymizeOptions(preset="thorough", threshold_by_target={"face": 0.5}))
    assert manifest["preset"] == "thorough" and manifest["targets"] == ["face", "plate"]
    manifest_entries = default_manifest()
    by_name = {m["name"]: m for m in manifest["models"]}
    assert set(by_name) == {"yunet_n", "ppocr_v6_det_small"}
    for name, record in by_name.items():
        assert record["sha256"] == manifest_entries[name].sha256
        assert record["licence"] == manifest_entries[name].licence_weights
    assert by_name["yunet_n"]["task"] == "face" and by_name["ppocr_v6_det_small"]["task"] == "plate"
    assert manifest["tasks"]["face"]["score_threshold"] == 0.5
    assert manifest["tasks"]["plate"]["operating_point"] == {"tile": 640, "scales": [1.0, 1.5]}
    assert manifest["tasks"]["face"]["operating_point"]["scales"] == [1.0]


def test_asking_for_a_target_with_no_detector_fails_clearly(yunet: presets.SingleScaleYuNet) -> None:
    with pytest.raises(EngineError) as info:
        _anonymizer(yunet).process_array(astronaut_bgr(), AnonymizeOptions(targets=("face", "plate")))
    assert info.value.code == TARGET_UNAVAILABLE


def test_video_tracks_and_masks_each_target(yunet: presets.SingleScaleYuNet, tmp_path: Path) -> None:
    frames = 6
    src = make_clip(tmp_path / "in.mp4", width=320, height=240, frames=frames)
    plates = FixedPlates([(100, 100, 180, 130)], [0.9])
    anonymizer = VideoAnonymizer(DetectionEngines.fixed(yunet, plates))
    result = anonymizer.run(src, tmp_path / "out.mp4", VideoOptions(AnonymizeOptions(mask=MaskStyle.SOLID)),
                            limits=VideoLimits(max_duration_s=60, max_width=1920, max_height=1080))
    assert plates.calls == frames
    assert result.tracks_by_target == {"face": 0, "plate": 1} and result.tracks == 1
    w, h = presets.default_padding("balanced", "plate")
    x1, y1 = int(140 - 40 * w) + 1, int(115 - 15 * h) + 1
    x2, y2 = int(140 + 40 * w) - 1, int(115 + 15 * h) - 1
    for masked in read_frames(tmp_path / "out.mp4"):
        assert masked[y1:y2, x1:x2].mean() < 20
        assert masked[:, :60].mean() > 40  # the gradient elsewhere is kept
