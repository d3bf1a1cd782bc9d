"""Session options every ONNX Runtime session gets, and which provider each model runs on."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort
import pytest
from pydantic import ValidationError

from shared.settings import Settings
from worker.engine.model_files import MODELS_DIR
from worker.engine.onnx_session import SPIN_KEY, _with_options, create_session
from worker.engine.registry import ModelRegistry

YUNET = MODELS_DIR / "yunet_n" / "yunet_n_dynamic.onnx"


def test_pool_threads_do_not_busy_wait() -> None:
    # Spinning pool threads took the cores a video's decode and encode threads needed (issue #4).
    session = create_session(YUNET, providers_preference=["CPUExecutionProvider"], intra_op_threads=2)
    assert session.get_session_options().get_session_config_entry(SPIN_KEY) == "0"


def test_spinning_off_from_bytes_too() -> None:
    # The registry builds sessions from checked bytes, not a path.
    session = create_session(YUNET.read_bytes(), providers_preference=["CPUExecutionProvider"])
    assert session.get_session_options().get_session_config_entry(SPIN_KEY) == "0"


def test_spin_wait_is_the_operators_choice() -> None:
    session = create_session(YUNET, providers_preference=["CPUExecutionProvider"], spin_wait=True)
    assert session.get_session_options().get_session_config_entry(SPIN_KEY) == "1"


def test_registry_sessions_follow_the_setting(tmp_path: Path) -> None:
    for spin, want in ((False, "0"), (True, "1")):
        settings = Settings(data_dir=tmp_path, ort_providers=["CPUExecutionProvider"], ort_spin_wait=spin)
        session = ModelRegistry.from_settings(settings).load_session("yunet_n")
        assert session.get_session_options().get_session_config_entry(SPIN_KEY) == want


def test_cuda_gets_the_cudnn_search_mode_and_the_others_nothing() -> None:
    # EXHAUSTIVE, ONNX Runtime's default, times every cuDNN algorithm again for each new input shape.
    assert _with_options(["CUDAExecutionProvider", "CPUExecutionProvider"], "HEURISTIC") == [
        ("CUDAExecutionProvider", {"cudnn_conv_algo_search": "HEURISTIC"}), "CPUExecutionProvider"]
    assert _with_options(["CPUExecutionProvider"], "EXHAUSTIVE") == ["CPUExecutionProvider"]
    assert Settings().ort_cudnn_conv_algo_search == "HEURISTIC"
    with pytest.raises(ValidationError):
        Settings(ort_cudnn_conv_algo_search="FASTEST")


@pytest.mark.skipif("AzureExecutionProvider" not in ort.get_available_providers(),
                    reason="needs a second execution provider to prefer over the CPU")
def test_cpu_models_run_on_the_cpu_whatever_the_preference(tmp_path: Path) -> None:
    # The CPU wheel's Azure provider stands in for CUDA: preferred, and listed by every session that uses it.
    preferred = ["AzureExecutionProvider", "CPUExecutionProvider"]
    settings = Settings(data_dir=tmp_path, ort_providers=preferred, ort_cpu_models=["plate_detector_v1"])
    registry = ModelRegistry.from_settings(settings)
    assert registry.load_session("yunet_n").get_providers() == preferred
    assert registry.load_session("plate_detector_v1").get_providers() == ["CPUExecutionProvider"]


def test_the_plate_models_stay_on_the_cpu_by_default(tmp_path: Path) -> None:
    # On an H200 a video's plate looks (new input shapes on most calls) took about a second each on CUDA.
    settings = Settings(data_dir=tmp_path)
    assert {"plate_detector_v1", "plate_verifier_v1"} <= set(settings.ort_cpu_models)
    ModelRegistry.from_settings(settings)  # every default name is in the manifest


def test_a_misspelt_cpu_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plate_detector_v2"):
        ModelRegistry.from_settings(Settings(data_dir=tmp_path, ort_cpu_models=["plate_detector_v2"]))
