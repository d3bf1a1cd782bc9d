"""Labelled image sets in Veil's COCO dialect (see ../shared/data/README.md), validated on load.

`images[]` (`id`, `file_name` relative to the images folder, `width`, `height`) and `annotations[]`
(`image_id`, `category` "face" or "plate", `bbox` [x, y, w, h] in pixels, `ignore`). A file that does not
follow it fails with a DatasetError that says where, never a KeyError half-way through an evaluation.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

CLASSES = ("face", "plate")


class DatasetError(ValueError):
    """The dataset file or its images folder cannot be used; the message says why."""


class _Image(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    file_name: str = Field(min_length=1)
    width: int = Field(gt=0)
    height: int = Field(gt=0)

    @field_validator("file_name")
    @classmethod
    def _stays_inside(cls, value: str) -> str:
        # The images folder is the root: an absolute path or ".." would read files outside it.
        path = Path(value)
        if path.is_absolute() or ".." in path.parts:
            raise ValueError("must be a relative path inside the images folder")
        return value


class _Annotation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    image_id: int
    category: str | None = None
    category_id: int | None = None
    bbox: tuple[float, float, float, float]
    ignore: bool = False

    @field_validator("bbox")
    @classmethod
    def _positive_size(cls, value: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        if not all(np.isfinite(value)) or value[2] <= 0 or value[3] <= 0:
            raise ValueError("bbox must be finite [x, y, w, h] with w > 0 and h > 0")
        return value


class _Category(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    name: str


class _Coco(BaseModel):
    model_config = ConfigDict(extra="ignore")
    images: list[_Image]
    annotations: list[_Annotation]
    categories: list[_Category] = []


@dataclass(frozen=True)
class LabelledImage:
    id: int
    path: Path
    file_name: str
    width: int
    height: int
    boxes: np.ndarray  # (N, 4) float64 xyxy
    categories: np.ndarray  # (N,) str, one of CLASSES
    ignore: np.ndarray  # (N,) bool

    def truth(self, category: str) -> tuple[np.ndarray, np.ndarray]:
        """(boxes xyxy, ignore flags) of one class."""
        sel = self.categories == category
        return self.boxes[sel], self.ignore[sel]


@dataclass(frozen=True)
class Dataset:
    name: str
    images: list[LabelledImage]

    def head(self, limit: int | None) -> Dataset:
        """The first `limit` images (by id), or all of them."""
        return self if limit is None else Dataset(self.name, self.images[:limit])

    def counts(self) -> dict[str, dict[str, int]]:
        """Labelled boxes per class: counted (not ignored) and ignored."""
        out = {c: {"counted": 0, "ignored": 0} for c in CLASSES}
        for image in self.images:
            for category, ignored in zip(image.categories, image.ignore, strict=True):
                out[str(category)]["ignored" if ignored else "counted"] += 1
        return out


def _category_of(ann: _Annotation, names: dict[int, str], index: int) -> str:
    name = ann.category if ann.category is not None else names.get(ann.category_id or -1)
    if name not in CLASSES:
        raise DatasetError(f"annotations[{index}]: category must be one of {CLASSES}, got {name!r}")
    return name


def load_coco(json_path: Path | str, images_dir: Path | str | None = None) -> Dataset:
    """Read and validate a COCO file; `images_dir` defaults to `images/` beside it. Images sorted by id."""
    json_path = Path(json_path)
    root = Path(images_dir) if images_dir is not None else json_path.parent / "images"
    try:
        raw = json.loads(json_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise DatasetError(f"cannot read {json_path}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{json_path} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DatasetError(f"{json_path}: must be a JSON object with images and annotations")
    try:
        coco = _Coco.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DatasetError(f"{json_path}: {where}: {first['msg']} ({exc.error_count()} problem(s))") from None
    if not coco.images:
        raise DatasetError(f"{json_path}: has no images")
    if not root.is_dir():
        raise DatasetError(f"images folder {root} does not exist")

    names = {c.id: c.name for c in coco.categories}
    by_image: dict[int, list[tuple[int, _Annotation]]] = defaultdict(list)
    ids = {img.id for img in coco.images}
    if len(ids) != len(coco.images):
        raise DatasetError(f"{json_path}: image ids are not unique")
    for i, ann in enumerate(coco.annotations):
        if ann.image_id not in ids:
            raise DatasetError(f"annotations[{i}]: image_id {ann.image_id} names no image")
        by_image[ann.image_id].append((i, ann))

    images: list[LabelledImage] = []
    missing = [img.file_name for img in coco.images if not (root / img.file_name).is_file()]
    if missing:
        raise DatasetError(f"{len(missing)} image file(s) missing under {root}, first: {missing[0]}")
    for img in sorted(coco.images, key=lambda im: im.id):
        anns = by_image[img.id]
        boxes = np.array([[a.bbox[0], a.bbox[1], a.bbox[0] + a.bbox[2], a.bbox[1] + a.bbox[3]] for _, a in anns],
                         dtype=np.float64).reshape(-1, 4)
        cats = np.array([_category_of(a, names, i) for i, a in anns], dtype=str).reshape(-1)
        ignore = np.array([a.ignore for _, a in anns], dtype=bool).reshape(-1)
        images.append(LabelledImage(img.id, root / img.file_name, img.file_name, img.width, img.height,
                                    boxes, cats, ignore))
    return Dataset(f"{json_path.parent.name}/{json_path.stem}", images)
