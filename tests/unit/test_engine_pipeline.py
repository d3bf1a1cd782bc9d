"""End to end: a file in, a masked file out, with only the padded face boxes changed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr, save_astronaut

from worker.engine.detection_engine import DetectionEngines
from worker.engine.face_yunet import DEFAULT_SCORE_THRESHOLD, YuNetDetector
from worker.engine.image_io import read_image, sniff_image_format
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions, ImageAnonymizer
from worker.engine.presets import SingleScaleYuNet
from worker.engine.registry import default_manifest

LIMIT = 50_000_000


@pytest.fixture(scope="module")
def anonymizer() -> ImageAnonymizer:
    return ImageAnonymizer(YuNetDetector())


def test_run_masks_only_the_padded_face(anonymizer: ImageAnonymizer, tmp_path: Path) -> None:
    src = save_astronaut(tmp_path / "in.png")
    dst = tmp_path / "out.png"
    options = AnonymizeOptions(mask=MaskStyle.SOLID, output_format="png")
    result = anonymizer.run(src, dst, options, max_pixels=LIMIT)

    assert (result.input_format, result.output_format) == ("png", "png")
    assert (result.width, result.height) == (512, 512)
    assert len(result.detections) == 1 and result.masked_boxes.shape == (1, 4)
    assert set(result.timings_ms) == {"decode", "detect", "mask", "encode"}

    before, after = astronaut_bgr(), read_image(dst, max_pixels=LIMIT).bgr
    x1, y1, x2, y2 = result.masked_boxes[0]
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    assert x1 <= fx1 + 6 and y1 <= fy1 + 6 and x2 >= fx2 - 6 and y2 >= fy2 - 6  # padding covers the face
    keep = np.ones(before.shape[:2], bool)
    keep[y1:y2, x1:x2] = False
    assert np.array_equal(after[keep], before[keep])
    assert (after[y1:y2, x1:x2] == 0).all()


def test_run_converts_format_by_request(anonymizer: ImageAnonymizer, tmp_path: Path) -> None:
    src = save_astronaut(tmp_path / "in.png")
    dst = tmp_path / "out"
    result = anonymizer.run(
        src, dst, AnonymizeOptions(output_format="jpeg"), max_pixels=LIMIT, jpeg_quality=80
    )
    assert result.output_format == "jpeg"
    assert sniff_image_format(dst.read_bytes()[:16]) == "jpeg"


def test_process_array_respects_per_call_threshold(anonymizer: ImageAnonymizer) -> None:
    image = astronaut_bgr()
    masked, found, padded = anonymizer.process_array(image, AnonymizeOptions(score_threshold=0.99))
    assert len(found) == 0 and padded.shape == (0, 4) and np.array_equal(masked, image)
    masked, found, padded = anonymizer.process_array(image, AnonymizeOptions(score_threshold=0.3))
    assert len(found) == 1 and not np.array_equal(masked, image)


def test_manifest_names_model_and_settings(anonymizer: ImageAnonymizer) -> None:
    options = AnonymizeOptions(mask="pixelate", width_scale=1.3, score_threshold=0.6)
    manifest = anonymizer.manifest(options)
    model = manifest["models"][0]
    yunet = default_manifest()["yunet_n"]
    assert (model["name"], model["sha256"], model["licence"]) == ("yunet_n", yunet.sha256, "Apache-2.0")
    assert model["task"] == "face" and model["provider"] in ("CPUExecutionProvider", "CUDAExecutionProvider")
    face = manifest["tasks"]["face"]
    assert face["score_threshold"] == 0.6
    assert face["padding"] == {"width_scale": 1.3, "height_scale": 1.5}
    assert face["operating_point"]["scales"] == [1.0]
    assert manifest["mask"] == "pixelate" and manifest["targets"] == ["face"]
    default = anonymizer.manifest(AnonymizeOptions())["tasks"]["face"]["score_threshold"]
    assert default == DEFAULT_SCORE_THRESHOLD


@pytest.mark.parametrize(
    "kwargs",
    [
        {"targets": ("car",)},
        {"targets": ()},
        {"preset": "fastest"},
        {"threshold_by_target": {"car": 0.5}},
        {"padding_by_target": {"face": (0.9, None)}},
        {"mask": "smudge"},
        {"width_scale": 0.9},
        {"score_threshold": 0.0},
        {"score_threshold": 1.5},
        {"output_format": "gif"},
    ],
)
def test_options_are_validated(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        AnonymizeOptions(**kwargs)


def test_detector_is_built_lazily() -> None:
    built: list[tuple[str, str]] = []

    def build(task: str, preset: str) -> SingleScaleYuNet:
        built.append((task, preset))
        return SingleScaleYuNet(YuNetDetector())

    anonymizer = ImageAnonymizer(DetectionEngines(build, lambda name: {"name": name}, targets=("face",)))
    assert built == []
    anonymizer.warm_up()
    assert built == [("face", "balanced")]
