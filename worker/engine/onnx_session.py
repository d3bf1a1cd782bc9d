"""ONNX Runtime sessions with an explicit execution-provider preference and a log of what is really active."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import onnxruntime as ort

log = logging.getLogger("veil.engine")

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEFAULT_PROVIDERS = (CUDA, CPU)
SPIN_KEY = "session.intra_op.allow_spinning"
DEFAULT_CUDNN_SEARCH = "HEURISTIC"  # VEIL_ORT_CUDNN_CONV_ALGO_SEARCH's default; see _with_options


def create_session(
    model_path: Path | str | bytes,  # bytes: a model already read (and checked) in memory
    *,
    providers_preference: Sequence[str] = DEFAULT_PROVIDERS,
    intra_op_threads: int | None = None,
    spin_wait: bool = False,
    cudnn_conv_algo_search: str = DEFAULT_CUDNN_SEARCH,
    label: str | None = None,  # what the log line calls the model; default: the file's name
) -> ort.InferenceSession:
    available = set(ort.get_available_providers())
    providers = [p for p in providers_preference if p in available]
    if not providers:
        raise RuntimeError(f"none of the execution providers {list(providers_preference)} is available")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if intra_op_threads is not None:
        options.intra_op_num_threads = intra_op_threads
    # ORT's pool threads busy-wait between and after runs unless told not to. Beside a video's decode and
    # encode threads (and other workers) on few cores that spinning took the cores they needed: a 540p
    # faces+plates run on two cores took 1.7x the wall time and CPU time with it on (issue #4).
    options.add_session_config_entry(SPIN_KEY, "1" if spin_wait else "0")
    model = model_path if isinstance(model_path, bytes) else str(model_path)
    session = ort.InferenceSession(model, sess_options=options,
                                   providers=_with_options(providers, cudnn_conv_algo_search))
    active = session.get_providers()
    # ONNX Runtime drops a provider that fails to initialise (e.g. CUDA libraries missing) without raising,
    # so the only trustworthy answer is what the session reports after construction.
    if providers[0] not in active:
        log.warning("preferred provider %s requested but inactive; running on %s", providers[0], active)
    if label is None:
        label = "an in-memory model" if isinstance(model_path, bytes) else Path(model_path).name
    log.info("onnx session for %s on providers %s", label, active)
    return session


def active_provider(session: ort.InferenceSession) -> str:
    """The provider that runs most of the graph: ONNX Runtime lists active providers by priority."""
    return session.get_providers()[0]


def _with_options(providers: list[str], cudnn_conv_algo_search: str) -> list[str | tuple[str, dict[str, str]]]:
    # ONNX Runtime's CUDA default (EXHAUSTIVE) times every cuDNN algorithm of every convolution for each new
    # input shape (300-1300 ms a shape, as others measured). On an H200 the 38-frame 720p clip with faces and
    # plates took 37.8 s with HEURISTIC and had not finished after 50 s with EXHAUSTIVE; faces alone, one
    # shape throughout, took 1.1 s.
    return [(p, {"cudnn_conv_algo_search": cudnn_conv_algo_search}) if p == CUDA else p for p in providers]
