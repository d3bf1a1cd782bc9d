"""Test images for the engine tests, built in memory; nothing is read from ../shared or the network.

The portrait is `skimage.data.astronaut()`, bundled with scikit-image: a NASA photograph of astronaut
Eileen Collins (image S94-00157), in the public domain as a work of the US federal government.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

# Where YuNet puts the astronaut's face (x1, y1, x2, y2), with a few pixels of slack either side.
ASTRONAUT_FACE = (178, 65, 270, 176)


def astronaut_bgr() -> np.ndarray:
    rgb = data.astronaut()
    return np.ascontiguousarray(rgb[:, :, ::-1])


def save_rgb(path: Path, rgb: np.ndarray, fmt: str = "PNG", **params: object) -> Path:
    Image.fromarray(rgb).save(path, format=fmt, **params)
    return path


def save_astronaut(path: Path, fmt: str = "PNG", **params: object) -> Path:
    return save_rgb(path, data.astronaut(), fmt, **params)
