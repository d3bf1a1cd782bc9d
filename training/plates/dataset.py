"""plates_train as (file name, plate boxes) pairs, and the hash split into training and held-out images."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

VAL_SHARE_PERCENT = 10  # images whose name hashes below this percentile are held out from training


@dataclass(frozen=True)
class LabelledImage:
    file_name: str
    boxes: np.ndarray  # (G, 4) xyxy plate boxes, including the few `ignore` ones
    ignore: np.ndarray  # (G,) bool


def is_held_out(file_name: str) -> bool:
    """Stable split by name: the same image is held out on every machine and in every run."""
    digest = hashlib.sha256(file_name.encode()).digest()
    return int.from_bytes(digest[:2], "big") % 100 < VAL_SHARE_PERCENT


def load_coco(json_path: Path) -> list[LabelledImage]:
    data = json.loads(json_path.read_text())
    by_image: dict[int, list[tuple[list[float], bool]]] = {}
    for ann in data["annotations"]:
        if ann.get("category", "plate") != "plate":
            continue
        x, y, w, h = ann["bbox"]
        by_image.setdefault(ann["image_id"], []).append(([x, y, x + w, y + h], bool(ann.get("ignore", False))))
    images = []
    for im in data["images"]:
        rows = by_image.get(im["id"], [])
        boxes = np.asarray([r[0] for r in rows], np.float32).reshape(-1, 4)
        images.append(LabelledImage(im["file_name"], boxes, np.asarray([r[1] for r in rows], bool)))
    return images
