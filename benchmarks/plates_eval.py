"""Plate detector presets on labelled data: coverage, false masks, recall/precision and speed at 1080p.

    .venv/bin/python -m benchmarks.plates_eval [--data ../shared/data] [--presets fast balanced thorough]
                                               [--limit N] [--no-heldout] [--speed-runs 5] [--threads 2]

Quality on openalpr_plates/dev.json (139 images, one labelled plate each; a second visible plate may be
unlabelled, so false masks are an upper bound) and on the plates_train images held out from the verifier's
training (training/plates/dataset.py: is_held_out). C80: share of plates at least 80 % covered by the union of
the padded mask boxes; false masks: detections whose IoU with every labelled plate is below 0.3.
Speed: ms per 1920x1080 frame (an openalpr photo scaled up), median of --speed-runs, and the ratio to YuNet-n
at native resolution on the same frame in the same run (the face detector every job already pays for).
Target (issue #3): C80 >= 0.95 at <= 0.3 false masks per image on openalpr dev.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from shared.settings import Settings
from training.plates.dataset import is_held_out
from worker.engine.detections import Detections
from worker.engine.detector import Detector
from worker.engine.face_yunet import YuNetDetector
from worker.engine.masking import pad_boxes
from worker.engine.plates import build_plate_detector
from worker.engine.registry import ModelRegistry
from worker.evaluation import Dataset, evaluate, load_coco
from worker.evaluation.evaluate import load_bgr


def quality(dataset: Dataset, detector: Detector, padding: tuple[float, float]) -> dict[str, float]:
    def predict(bgr: np.ndarray) -> tuple[Detections, np.ndarray]:
        found = detector.detect(bgr)
        return found, pad_boxes(found.boxes, bgr.shape, width_scale=padding[0], height_scale=padding[1])

    report = evaluate(dataset, predict, name="plates", targets=("plate",))
    m = report.classes["plate"]["all"]
    figures = {"C80": m.c80, "FM/img": m.false_masks_per_image, "R@.5": m.recall, "P@.5": m.precision}
    return {k: float("nan") if v is None else v for k, v in figures.items()} | {"ms/img": report.ms_per_image}


def median_ms(run: Callable[[np.ndarray], object], frame: np.ndarray, runs: int) -> float:
    run(frame)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        run(frame)
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--presets", nargs="+", default=["fast", "balanced", "thorough"])
    parser.add_argument("--limit", type=int, default=None, help="first N images of each set")
    parser.add_argument("--no-heldout", action="store_true", help="skip the plates_train held-out images")
    parser.add_argument("--speed-runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    args = parser.parse_args()

    settings = Settings(ort_providers=["CPUExecutionProvider"], ort_threads=args.threads)
    registry = ModelRegistry.from_settings(settings)
    sets = {"openalpr dev": load_coco(args.data / "openalpr_plates" / "dev.json").head(args.limit)}
    if not args.no_heldout:
        train = load_coco(args.data / "plates_train" / "train.json")
        held = [im for im in train.images if is_held_out(im.file_name)]
        sets["plates_train held-out"] = Dataset("plates_train_heldout", held).head(args.limit)

    first = sets["openalpr dev"].images[0]
    frame = cv2.resize(load_bgr(first), (1920, 1080), interpolation=cv2.INTER_LINEAR)
    yunet = YuNetDetector(session=registry.load_session("yunet_n"))
    baseline = median_ms(yunet.detect, frame, args.speed_runs)

    print(f"{'preset':<9} {'set':<22} {'images':>6} {'C80':>6} {'FM/img':>7} {'R@.5':>6} {'P@.5':>6} "
          f"{'ms/img':>7} {'ms@1080p':>9} {'x YuNet-n':>9}")
    for preset in args.presets:
        detector = build_plate_detector(preset, registry.load_session)
        speed = median_ms(detector.detect, frame, args.speed_runs)
        for set_name, dataset in sets.items():
            q = quality(dataset, detector, detector.padding)
            print(f"{preset:<9} {set_name:<22} {len(dataset.images):>6} {q['C80']:>6.3f} {q['FM/img']:>7.2f} "
                  f"{q['R@.5']:>6.3f} {q['P@.5']:>6.3f} {q['ms/img']:>7.0f} {speed:>9.0f} {speed / baseline:>9.1f}",
                  flush=True)
    print(f"baseline: YuNet-n native on the same 1920x1080 frame, {baseline:.0f} ms; "
          f"ONNX Runtime threads {args.threads}; padding per preset is the detector's calibrated `padding`")


if __name__ == "__main__":
    main()
