"""Start-up check: is the execution provider we require the one that really runs the face model?

ONNX Runtime drops a provider that fails to initialise (no GPU visible, a driver too old, a CUDA or cuDNN
library missing) with only a warning and runs the whole graph on the CPU. A GPU worker that did that would
still take jobs, at a tenth of the speed. With VEIL_REQUIRE_PROVIDER set, `veil worker` builds a session on
the bundled YuNet model, runs it once, and refuses to start unless the required provider is the one in front.

The probe runs in a spawned process: CUDA does not survive fork(), so the Celery main process, which forks
the pool, must never initialise it (context.py builds sessions in the children for the same reason).
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence

import numpy as np

from shared.settings import Settings
from worker.engine.errors import EngineError
from worker.engine.registry import ModelRegistry

PROBE_TIMEOUT_S = 180  # a first CUDA context plus cuDNN loading can take tens of seconds
PROBE_MODEL = "yunet_n"  # bundled, so every build has it


class ProviderCheckFailed(RuntimeError):
    pass


def session_providers(settings: Settings) -> list[str]:
    """The providers of a fresh session on the probe model, built by the registry as a worker builds its own
    (licence and sha256 checked, VEIL_ORT_PROVIDERS and VEIL_ORT_THREADS applied), after one inference, in ONNX
    Runtime's priority order."""
    session = ModelRegistry.from_settings(settings).load_session(PROBE_MODEL)
    # Some providers load their libraries (cuDNN, for one) only at the first run: run once before judging.
    feed = {session.get_inputs()[0].name: np.zeros((1, 3, 32, 32), dtype=np.float32)}
    session.run(None, feed)
    return list(session.get_providers())


def judge(required: str, active: Sequence[str]) -> None:
    if not active or active[0] != required:
        raise ProviderCheckFailed(
            f"VEIL_REQUIRE_PROVIDER={required}, but the face model runs on {list(active)}: refusing to start "
            "rather than run on the wrong device. Check the GPU is visible to this process (nvidia-smi, the "
            "container's GPU reservation), that onnxruntime-gpu (not onnxruntime) is installed and matches "
            "the CUDA and cuDNN libraries, and that VEIL_ORT_PROVIDERS lists the provider.")


def check_required_provider(settings: Settings) -> str:
    """Raise ProviderCheckFailed unless `settings.require_provider` runs the model; returns it when it does."""
    required = settings.require_provider
    assert required is not None
    try:
        # Here rather than in the probe: a missing or altered model file is named as such, not as a provider
        # that failed to start.
        ModelRegistry.from_settings(settings).verify(PROBE_MODEL)
    except EngineError as exc:
        raise ProviderCheckFailed(f"VEIL_REQUIRE_PROVIDER={required}, but the probe model cannot be used: "
                                  f"{exc.message}") from None
    pool = multiprocessing.get_context("spawn").Pool(processes=1)
    try:
        pending = pool.apply_async(session_providers, (settings,))
        active = pending.get(timeout=PROBE_TIMEOUT_S)
    except Exception as exc:  # no listed provider available, a session that fails to build, a hung driver
        raise ProviderCheckFailed(
            f"VEIL_REQUIRE_PROVIDER={required}, but no session could be built with VEIL_ORT_PROVIDERS="
            f"{list(settings.ort_providers)}: {type(exc).__name__}: {exc}") from None
    finally:
        pool.terminate()  # also ends a probe stuck in a driver call
        pool.join()
    judge(required, active)
    return required
