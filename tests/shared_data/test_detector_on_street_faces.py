"""The detector on real street photos (../shared/data, WIDER FACE street classes). Skips without the data.

A floor, not a target: it catches a broken decode, a wrong colour order or a resize that would silently
lose most faces. The quality issue measures and tunes recall properly with `veil eval`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from worker.engine.face_yunet import YuNetDetector
from worker.engine.image_io import read_image

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "wider_face_val_street"
pytestmark = [pytest.mark.shared_data,
              pytest.mark.skipif(not (DATA / "dev.json").is_file(), reason="../shared/data is not here")]


def iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1, y1 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x2, y2 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area - inter, 1e-9)


def test_most_faces_of_32_px_and_more_are_found() -> None:
    coco = json.loads((DATA / "dev.json").read_text())
    images = sorted(coco["images"], key=lambda i: i["id"])[:40]
    detector = YuNetDetector()
    found = total = 0
    for image in images:
        truth = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in coco["annotations"]
                          if a["image_id"] == image["id"] and not a.get("ignore") and a["bbox"][3] >= 32],
                         dtype=np.float32).reshape(-1, 4)
        if not len(truth):
            continue
        boxes = detector.detect(read_image(DATA / "images" / image["file_name"], max_pixels=10**8).bgr).boxes
        total += len(truth)
        found += sum(1 for t in truth if len(boxes) and iou(t, boxes).max() >= 0.5)
    recall = found / total
    print(f"recall@IoU0.5 for faces >= 32 px on {len(images)} images: {recall:.3f} ({found}/{total})")
    # Measured 2026-11-30 at the default threshold (0.6): 0.843 (113 of 134). The floor sits well below it.
    assert total > 50 and recall >= 0.70
