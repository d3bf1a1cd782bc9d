"""Bundled model files: what they are, where they came from, and a hash check before use."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from worker.engine.errors import MODEL_INTEGRITY, MODEL_MISSING, EngineError

# worker/models sits next to worker/engine; resolving from this file keeps it independent of the CWD.
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    task: str
    path: Path
    sha256: str
    licence: str
    source: str
    version: str


YUNET_N = ModelSpec(
    name="yunet_n",
    task="face",
    path=MODELS_DIR / "yunet_n" / "yunet_n_dynamic.onnx",
    sha256="104ee26c71d5c270ce79a6b3dced91c91013260d29a6bf18f9296c5b8c4c2b12",
    licence="Apache-2.0",
    source="ShiqiYu/libfacedetection.train@0047ac24afb1a50a0c6105001c89d1b5b805dbf1:onnx/yunet_n_dynamic.onnx",
    version="0047ac24",
)

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def verify_model(spec: ModelSpec) -> None:
    """Refuse a missing or altered model file: a swapped model would silently change what gets masked."""
    if not spec.path.is_file():
        raise EngineError(MODEL_MISSING, f"model file for {spec.name} is missing")
    if file_sha256(spec.path) != spec.sha256.lower():
        raise EngineError(MODEL_INTEGRITY, f"model file for {spec.name} does not match its sha256")
