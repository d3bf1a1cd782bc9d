"""VEIL_REQUIRE_PROVIDER on this CPU-only machine: requiring CUDA refuses to start, requiring the CPU passes.

The real ONNX Runtime and the bundled YuNet model, in a real spawned probe process: nothing is stubbed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnxruntime as ort
import pytest

from shared.settings import Settings
from worker.provider_check import ProviderCheckFailed, check_required_provider, judge

REPO = Path(__file__).resolve().parents[2]
CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
needs_no_cuda = pytest.mark.skipif(CUDA in ort.get_available_providers(),
                                   reason="this machine has the CUDA provider: the refusal cases cannot happen")


@needs_no_cuda
def test_requiring_cuda_refuses_when_the_session_falls_back_to_the_cpu(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, require_provider=CUDA)  # default preference: CUDA, then CPU
    with pytest.raises(ProviderCheckFailed, match=r"runs on \['CPUExecutionProvider'\]"):
        check_required_provider(settings)


@needs_no_cuda
def test_requiring_cuda_refuses_when_only_cuda_is_listed_and_missing(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, require_provider=CUDA, ort_providers=[CUDA])
    with pytest.raises(ProviderCheckFailed, match="no session could be built"):
        check_required_provider(settings)


def test_requiring_the_cpu_passes(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, require_provider=CPU, ort_providers=[CPU], ort_threads=1)
    assert check_required_provider(settings) == CPU


def test_judge_looks_at_the_provider_in_front() -> None:
    judge(CUDA, [CUDA, CPU])
    with pytest.raises(ProviderCheckFailed):
        judge(CUDA, [CPU, CUDA])
    with pytest.raises(ProviderCheckFailed):
        judge(CUDA, [])


@needs_no_cuda
def test_veil_worker_exits_non_zero_with_a_clear_message(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    env.update(VEIL_DATA_DIR=str(tmp_path), VEIL_REQUIRE_PROVIDER=CUDA)
    done = subprocess.run([sys.executable, "-m", "cli.main", "worker"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 3
    assert "refused to start" in done.stderr and f"VEIL_REQUIRE_PROVIDER={CUDA}" in done.stderr
    assert " ready." not in done.stderr + done.stdout  # Celery never started
