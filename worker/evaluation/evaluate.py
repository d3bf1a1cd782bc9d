"""Run a predictor over a labelled dataset and score it: the plain-function entry point of `veil eval`.

    from worker.evaluation import evaluate, load_coco
    report = evaluate(load_coco("../shared/data/wider_face_val_street/dev.json"), predict, targets=("face",))
    print(report.summary())

`predict(bgr) -> (Detections, mask_boxes)`: the detections (labels "face"/"plate") and the padded int xyxy
boxes that actually get masked (worker.engine.masking.pad_boxes of them, in the engine's case).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from worker.engine.detections import Detections
from worker.engine.errors import EngineError
from worker.engine.image_io import read_image
from worker.evaluation.dataset import CLASSES, Dataset, DatasetError, LabelledImage
from worker.evaluation.metrics import ClassMetrics, ClassSample, metrics_by_size

Predictor = Callable[[np.ndarray], tuple[Detections, np.ndarray]]
Progress = Callable[[int, int], None]
# Labelled sets hold photos, not panoramas; the engine's own limit is a service setting.
MAX_PIXELS = 100_000_000


@dataclass
class EvalReport:
    name: str
    dataset: str
    images: int
    ms_per_image: float
    classes: dict[str, dict[str, ClassMetrics]]  # class -> size bucket ("all", "<16", ...) -> metrics

    def to_dict(self, *, curves: bool = False) -> dict[str, object]:
        return {
            "name": self.name,
            "dataset": self.dataset,
            "images": self.images,
            "ms_per_image": round(self.ms_per_image, 2),
            "classes": {c: {b: m.to_dict(curve=curves and b == "all") for b, m in buckets.items()}
                        for c, buckets in self.classes.items()},
        }

    def summary(self) -> str:
        """A few plain lines, for scripts and logs."""
        lines = [f"{self.name} on {self.dataset}: {self.images} images, {self.ms_per_image:.1f} ms/image"]
        for cls, buckets in self.classes.items():
            m = buckets["all"]
            lines.append(f"  {cls}: C80 {_pct(m.c80)}  recall {_pct(m.recall)}  precision {_pct(m.precision)}  "
                         f"AP50 {_pct(m.ap50)}  false masks/image {_num(m.false_masks_per_image)}  "
                         f"({m.counted} counted boxes)")
        return "\n".join(lines)


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def load_bgr(image: LabelledImage) -> np.ndarray:
    """The image as the engine sees it (EXIF-upright BGR), checked against the size the labels assume."""
    try:
        bgr = read_image(image.path, max_pixels=MAX_PIXELS).bgr
    except EngineError as exc:
        raise DatasetError(f"image {image.file_name}: {exc.code}") from None
    if bgr.shape[:2] != (image.height, image.width):
        raise DatasetError(f"image {image.file_name} is {bgr.shape[1]}x{bgr.shape[0]}, "
                           f"the dataset says {image.width}x{image.height}")
    return bgr


def samples_for(image: LabelledImage, detections: Detections, masks: np.ndarray, cls: str) -> ClassSample:
    truth, ignore = image.truth(cls)
    mine = detections.labels == cls
    return ClassSample.of(truth, ignore, detections.boxes[mine], detections.scores[mine], masks,
                          other_truth=image.boxes[image.categories != cls])


def evaluate(dataset: Dataset, predict: Predictor, *, name: str = "engine",
             targets: Sequence[str] = CLASSES, progress: Progress | None = None) -> EvalReport:
    """Run `predict` on every image of `dataset` and score the classes in `targets`."""
    unknown = set(targets) - set(CLASSES)
    if unknown or not targets:
        raise ValueError(f"targets must be a non-empty subset of {CLASSES}")
    samples: dict[str, list[ClassSample]] = {c: [] for c in targets}
    elapsed = 0.0
    for i, image in enumerate(dataset.images):
        bgr = load_bgr(image)
        if i == 0:
            predict(bgr)  # warm-up: the first call pays for lazy session and memory set-up
        t0 = time.perf_counter()
        detections, masks = predict(bgr)
        elapsed += time.perf_counter() - t0
        for cls in targets:
            samples[cls].append(samples_for(image, detections, np.asarray(masks), cls))
        if progress is not None:
            progress(i + 1, len(dataset.images))
    n = len(dataset.images)
    return EvalReport(name=name, dataset=dataset.name, images=n, ms_per_image=1000 * elapsed / n if n else 0.0,
                      classes={c: metrics_by_size(samples[c]) for c in targets})
