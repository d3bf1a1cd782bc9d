"""What each preset costs through the image pipeline (detect every target, pad, mask), against the previous
release's engine (single-pass YuNet-n, faces only) measured in the same run on the same images.

    .venv/bin/python -m benchmarks.presets_cost [--images 20] [--repeats 2]

Images: the first N dev images of ../shared/data/wider_face_val_street and of ../shared/data/openalpr_plates
(street faces and cars), decoded once beforehand, so decoding and encoding are left out. Models come from the
registry (`veil models pull`). Quality is `veil eval`'s job; this prints milliseconds per image and the ratio
to the baseline, to weigh the default preset (VEIL_DEFAULT_PRESET).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from shared.settings import Settings
from worker.context import build_engines
from worker.engine.face_yunet import YuNetDetector
from worker.engine.pipeline import AnonymizeOptions, ImageAnonymizer
from worker.engine.presets import PRESETS
from worker.evaluation import load_coco
from worker.evaluation.evaluate import load_bgr

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETS = ("wider_face_val_street", "openalpr_plates")


def images(count: int) -> list[np.ndarray]:
    loaded = []
    for name in SETS:
        dataset = load_coco(DATA / name / "dev.json")
        for item in dataset.images[:count]:
            loaded.append(load_bgr(item))
    return loaded


def ms_per_image(run: Callable[[np.ndarray], object], frames: list[np.ndarray], repeats: int) -> float:
    run(frames[0])  # sessions and caches warm before timing
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for frame in frames:
            run(frame)
        best = min(best, (time.perf_counter() - t0) * 1000 / len(frames))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20, help="images from each set")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes; the fastest counts")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"needs the labelled data in {DATA}")
    frames = images(args.images)
    baseline = ImageAnonymizer(YuNetDetector())
    service = ImageAnonymizer(build_engines(Settings(ort_providers=["CPUExecutionProvider"])))

    def through(anonymizer: ImageAnonymizer, options: AnonymizeOptions) -> Callable[[np.ndarray], object]:
        return lambda bgr: anonymizer.process_array(bgr, options)

    base = ms_per_image(through(baseline, AnonymizeOptions()), frames, args.repeats)
    print(f"{len(frames)} images ({args.images} from each of {', '.join(SETS)}), best of {args.repeats} passes")
    print(f"{'engine':32} {'ms/image':>9} {'x baseline':>10}")
    print(f"{'baseline: YuNet-n once, faces':32} {base:9.1f} {1.0:10.2f}")
    for preset in PRESETS:
        for targets in (("face",), ("plate",), ("face", "plate")):
            ms = ms_per_image(through(service, AnonymizeOptions(preset=preset, targets=targets)), frames,
                              args.repeats)
            print(f"{preset + ': ' + '+'.join(targets):32} {ms:9.1f} {ms / base:10.2f}")


if __name__ == "__main__":
    main()
