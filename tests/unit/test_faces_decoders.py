"""Face model decoders: hand-made outputs decode to known boxes, and each model finds the astronaut's face."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr

from shared.settings import Settings
from worker.engine.detections import nms
from worker.engine.faces import centerface, retinaface
from worker.engine.faces.centerface import CenterFaceRunner
from worker.engine.faces.retinaface import RetinaFaceRunner
from worker.engine.faces.yunet import YuNetRunner
from worker.engine.registry import ModelRegistry


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry.from_settings(Settings())


def session_or_skip(registry: ModelRegistry, name: str):
    if registry.status(name) != "ok":
        pytest.skip(f"{name} is not pulled here (`veil models pull`)")
    return registry.load_session(name)


def test_retinaface_anchors_follow_the_network_order() -> None:
    prior = retinaface.anchors(64, 96)
    # strides 8, 16, 32 over a 64x96 input, two sizes per cell
    assert len(prior) == 2 * (8 * 12 + 4 * 6 + 2 * 3)
    # first cell, both sizes, then the next cell along the row
    np.testing.assert_allclose(prior[:3], [[4, 4, 16, 16], [4, 4, 32, 32], [12, 4, 16, 16]])
    # the first anchor of stride 16 comes after all of stride 8
    np.testing.assert_allclose(prior[2 * 8 * 12], [8, 8, 64, 64])


def test_retinaface_decode_applies_the_variances() -> None:
    prior = retinaface.anchors(32, 32)
    loc = np.zeros((1, len(prior), 4), np.float32)
    conf = np.zeros((1, len(prior), 2), np.float32)
    conf[0, :, 0] = 1.0
    # anchor 1: centre (4, 4), 32 px; shift the centre by 0.5 anchor widths and double the size
    loc[0, 1] = [5.0, 0.0, np.log(2) / 0.2, 0.0]
    conf[0, 1] = [0.1, 0.9]
    boxes, scores = retinaface.decode(loc, conf, 32, 32, threshold=0.5)
    np.testing.assert_allclose(scores, [0.9], atol=1e-6)
    np.testing.assert_allclose(boxes[0], [20 - 32, 4 - 16, 20 + 32, 4 + 16], atol=1e-3)


def test_retinaface_decode_refuses_a_mismatched_output() -> None:
    with pytest.raises(ValueError, match="anchors"):
        retinaface.decode(np.zeros((1, 5, 4)), np.zeros((1, 5, 2)), 32, 32, threshold=0.5)


@pytest.mark.parametrize(("model", "runner"), [("yunet_n", YuNetRunner), ("yunet_s", YuNetRunner),
                                               ("retinaface_mnet025", RetinaFaceRunner)])
@pytest.mark.parametrize("shape", [(512, 512), (500, 470)])
def test_each_model_finds_the_astronauts_face(registry: ModelRegistry, model: str, runner, shape) -> None:
    run = runner(session_or_skip(registry, model))
    image = np.ascontiguousarray(astronaut_bgr()[: shape[0], : shape[1]])
    boxes, scores = run(image, 0.5)
    keep = nms(boxes, scores, 0.4)
    assert len(keep) == 1
    assert scores[keep[0]] > 0.9
    # RetinaFace's boxes include more forehead than YuNet's: the top edge gets more slack.
    slack = np.array([6, 10, 6, 6])
    assert (np.abs(boxes[keep[0]] - np.array(ASTRONAUT_FACE)) <= slack).all(), boxes[keep[0]]


@pytest.mark.parametrize(("model", "runner"), [("yunet_n", YuNetRunner), ("retinaface_mnet025", RetinaFaceRunner)])
def test_models_find_no_face_in_noise(registry: ModelRegistry, model: str, runner) -> None:
    run = runner(session_or_skip(registry, model))
    noise = np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    _, scores = run(noise, 0.5)
    assert len(scores) == 0


def test_centerface_decode_reads_sizes_and_offsets_as_height_width_and_y_x() -> None:
    heatmap = np.zeros((1, 1, 8, 8), np.float32)
    scale = np.zeros((1, 2, 8, 8), np.float32)
    offset = np.zeros((1, 2, 8, 8), np.float32)
    heatmap[0, 0, 2, 5] = 0.8  # row 2, column 5
    scale[0, :, 2, 5] = [np.log(10.0), np.log(5.0)]  # 40 px high, 20 px wide
    offset[0, :, 2, 5] = [0.25, -0.5]  # dy, dx in cells
    boxes, scores = centerface.decode(heatmap, scale, offset, threshold=0.5)
    cx, cy = (5 - 0.5 + 0.5) * 4, (2 + 0.25 + 0.5) * 4
    np.testing.assert_allclose(boxes, [[cx - 10, cy - 20, cx + 10, cy + 20]], atol=1e-4)
    np.testing.assert_allclose(scores, [0.8])
    assert centerface.decode(heatmap, scale, offset, threshold=0.9)[0].shape == (0, 4)


def test_centerface_as_shipped_is_refused_with_a_reason(registry: ModelRegistry) -> None:
    session_or_skip(registry, "centerface")
    # The file itself, not the registry's session (which rewrites its dimensions: test_model_adapt.py).
    shipped = ort.InferenceSession(str(registry.verify("centerface")), providers=["CPUExecutionProvider"])
    with pytest.raises(ValueError, match="fixed input size"):
        CenterFaceRunner(shipped)


def test_centerface_finds_the_astronaut_once_its_dimensions_are_symbolic(registry: ModelRegistry, tmp_path) -> None:
    onnx = pytest.importorskip("onnx")
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    if registry.status("centerface") != "ok":
        pytest.skip("centerface is not pulled here (`veil models pull`)")
    model = onnx.load(str(registry.path("centerface")))

    def dims(values) -> dict[str, list]:
        return {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

    inputs, outputs = dims(model.graph.input), dims(model.graph.output)
    inputs["input.1"] = ["B", 3, "H", "W"]
    outputs.update({name: ["B", c, "h", "w"] for name, c in (("537", 1), ("538", 2), ("539", 2), ("540", 10))})
    onnx.save(update_inputs_outputs_dims(model, inputs, outputs), str(tmp_path / "centerface.onnx"))
    session = ort.InferenceSession(str(tmp_path / "centerface.onnx"), providers=["CPUExecutionProvider"])
    boxes, scores = CenterFaceRunner(session)(astronaut_bgr(), 0.5)
    keep = nms(boxes, scores, 0.3)
    assert len(keep) == 1 and scores[keep[0]] > 0.9
    slack = np.array([6, 10, 6, 6])
    assert (np.abs(boxes[keep[0]] - np.array(ASTRONAUT_FACE)) <= slack).all(), boxes[keep[0]]
