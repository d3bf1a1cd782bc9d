"""Licence-clean test images made on the fly.

The face is scikit-image's `astronaut`: Eileen Collins' NASA portrait, public domain, shipped inside the
scikit-image package (skimage.data), so nothing is downloaded and nothing needs attribution.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image


def astronaut_rgb() -> np.ndarray:
    from skimage import data

    return np.asarray(data.astronaut())


def encode(rgb: np.ndarray, fmt: str = "PNG", **params: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **params)
    return buffer.getvalue()


def decode_rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def astronaut_png() -> bytes:
    return encode(astronaut_rgb(), "PNG")


def astronaut_jpeg(quality: int = 90) -> bytes:
    return encode(astronaut_rgb(), "JPEG", quality=quality)
