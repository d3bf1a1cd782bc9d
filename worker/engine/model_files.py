"""Where bundled model files live and how a model file is hashed.

What each model is (file, sha256, licences, source) is written once, in worker/models/manifest.toml, and read
through worker/engine/registry.py; nothing here repeats it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

# worker/models sits next to worker/engine; resolving from this file keeps it independent of the CWD.
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

_CHUNK = 1 << 20


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
