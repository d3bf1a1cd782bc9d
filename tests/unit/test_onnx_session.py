"""Session options every ONNX Runtime session gets."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings
from worker.engine.model_files import MODELS_DIR
from worker.engine.onnx_session import SPIN_KEY, create_session
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
