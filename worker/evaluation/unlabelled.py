"""Candidates compared on images without labels: counts per class, and crops of the boxes they disagree on.

A box disagrees when it is "lone": no box of the same class from any other candidate overlaps it at IoU 0.3 or
more (the false-mask threshold: below it two boxes frame different things). Looking at the crops says
quickly whether a candidate finds faces the others miss or masks background they rightly leave alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from worker.engine.detections import Detections
from worker.engine.errors import EngineError
from worker.engine.image_io import SNIFF_BYTES, read_image, sniff_image_format
from worker.evaluation.engines import Candidate
from worker.evaluation.evaluate import MAX_PIXELS
from worker.evaluation.metrics import FALSE_MASK_IOU, iou_matrix

TILE = 128
CAPTION = 16
MAX_CROPS = 120


@dataclass
class Comparison:
    images: int = 0
    unreadable: list[tuple[Path, str]] = field(default_factory=list)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # candidate -> class -> boxes
    lone: dict[str, dict[str, int]] = field(default_factory=dict)  # candidate -> class -> lone boxes
    seconds: dict[str, float] = field(default_factory=dict)
    crops: list[tuple[str, Image.Image]] = field(default_factory=list)  # (caption, crop), at most MAX_CROPS

    def ms_per_image(self, name: str) -> float:
        return 1000 * self.seconds.get(name, 0.0) / self.images if self.images else 0.0

    def to_dict(self) -> dict[str, object]:
        return {"images": self.images, "unreadable": len(self.unreadable), "counts": self.counts,
                "lone": self.lone, "ms_per_image": {n: round(self.ms_per_image(n), 2) for n in self.seconds}}


def image_files(folder: Path) -> list[Path]:
    """JPEG, PNG and WebP files under `folder`, told by content, in name order."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        with path.open("rb") as fh:
            if sniff_image_format(fh.read(SNIFF_BYTES)) is not None:
                found.append(path)
    return found


def lone_boxes(found: dict[str, Detections], iou_threshold: float = FALSE_MASK_IOU) -> dict[str, np.ndarray]:
    """Per candidate, a flag per detection: True when no other candidate has a same-class box overlapping it."""
    out = {}
    for name, dets in found.items():
        lone = np.ones(len(dets), dtype=bool)
        for other, theirs in found.items():
            if other == name or not len(dets) or not len(theirs):
                continue
            same = dets.labels[:, None] == theirs.labels[None, :]
            lone &= ~((iou_matrix(dets.boxes, theirs.boxes) >= iou_threshold) & same).any(axis=1)
        out[name] = lone
    return out


def _crop(bgr: np.ndarray, box: np.ndarray) -> Image.Image:
    # A quarter of the box's size around it: enough context to tell a face from a poster or a wheel.
    x1, y1, x2, y2 = box
    mx, my = (x2 - x1) / 4, (y2 - y1) / 4
    h, w = bgr.shape[:2]
    xa, ya = int(max(0, x1 - mx)), int(max(0, y1 - my))
    xb, yb = int(min(w, np.ceil(x2 + mx))), int(min(h, np.ceil(y2 + my)))
    crop = Image.fromarray(np.ascontiguousarray(bgr[ya:max(yb, ya + 1), xa:max(xb, xa + 1), ::-1]))
    crop.thumbnail((TILE, TILE - CAPTION))  # shrinks only: what is kept stays small
    return crop


def _fit(crop: Image.Image) -> Image.Image:
    # Small faces are enlarged blocky, not smoothed, so nothing is invented, to fill the tile.
    scale = min(TILE / crop.width, (TILE - CAPTION) / crop.height)
    size = (max(1, round(crop.width * scale)), max(1, round(crop.height * scale)))
    return crop.resize(size, Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)


def compare_unlabelled(paths: Sequence[Path], candidates: Sequence[Candidate],
                       progress: Callable[[int, int], None] | None = None) -> Comparison:
    result = Comparison(counts={c.name: {} for c in candidates}, lone={c.name: {} for c in candidates},
                        seconds={c.name: 0.0 for c in candidates})
    for i, path in enumerate(paths):
        try:
            bgr = read_image(path, max_pixels=MAX_PIXELS).bgr
        except EngineError as exc:
            result.unreadable.append((path, exc.code))
            continue
        except OSError:
            result.unreadable.append((path, "unreadable_file"))
            continue
        found: dict[str, Detections] = {}
        for c in candidates:
            if result.images == 0:
                c.predict(bgr)  # warm-up, as in evaluate()
            t0 = time.perf_counter()
            found[c.name] = c.predict(bgr)[0]
            result.seconds[c.name] += time.perf_counter() - t0
        result.images += 1
        for name, flags in lone_boxes(found).items():
            dets = found[name]
            for label in dets.labels:
                result.counts[name][str(label)] = result.counts[name].get(str(label), 0) + 1
            for j in np.flatnonzero(flags):
                label = str(dets.labels[j])
                result.lone[name][label] = result.lone[name].get(label, 0) + 1
                if len(result.crops) < MAX_CROPS:
                    caption = f"{label} {dets.scores[j]:.2f} {name}"  # the name is what gets cut if long
                    result.crops.append((caption, _crop(bgr, dets.boxes[j])))
        if progress is not None:
            progress(i + 1, len(paths))
    return result


def write_contact_sheet(comparison: Comparison, path: Path, columns: int = 8) -> None:
    """A PNG grid of the lone boxes' crops, each captioned with its candidate, class and score."""
    crops = comparison.crops
    rows = max(1, -(-len(crops) // columns))
    sheet = Image.new("RGB", (columns * TILE, rows * TILE), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    if not crops:
        draw.text((8, 8), "no disagreements", fill=(230, 230, 230))
    for k, (caption, raw) in enumerate(crops):
        crop = _fit(raw)
        x, y = (k % columns) * TILE, (k // columns) * TILE
        sheet.paste(crop, (x + (TILE - crop.width) // 2, y + CAPTION + (TILE - CAPTION - crop.height) // 2))
        while len(caption) > 4 and draw.textlength(caption) > TILE - 4:  # long model names: keep the tile's own
            caption = caption[:-1]
        draw.text((x + 2, y + 2), caption, fill=(255, 220, 0))
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, format="PNG")
