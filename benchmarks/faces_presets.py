"""Face presets on the WIDER FACE street dev split: coverage, false masks and speed at 1080p.

    .venv/bin/python -m benchmarks.faces_presets            # the presets as configured, plus speed
    .venv/bin/python -m benchmarks.faces_presets --tune     # how their thresholds and paddings were chosen
    .venv/bin/python -m benchmarks.faces_presets --limit 40 --frames 5   # a quick look
    .venv/bin/python -m benchmarks.faces_presets --speed-only --threads 1  # ms of one core per 1080p frame

Coverage C80 and false masks come from worker.evaluation (the same code as `veil eval`). Each preset's
detections are computed once with no score threshold; a threshold only drops fused boxes, so every
threshold and padding is then scored from those. --tune picks, for each preset, the lowest threshold that
keeps false masks at or under --max-false-masks per image, and prints C80 by face height for several
paddings. Speed is ms per 1920x1080 frame of the 1080p street clip in ../shared/data/videos (dev images
scaled to 1080p where it is absent), wall and CPU time, with the single-pass YuNet-n engine of the previous
release measured in the same run as the baseline; on a shared machine CPU time is the steadier figure. A
preset whose pass has a pixel budget also gets a row "<preset>@1080": the dev images run at the scale a
1920x1080 frame gets, i.e. what shrinking a 1080p frame costs in coverage. Model files come from the
registry (`veil models pull`).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from shared.settings import Settings
from worker.engine.detections import Detections
from worker.engine.face_yunet import YuNetDetector
from worker.engine.faces import FACE_PRESETS, FaceEnsemble, FacePreset, build_ensemble
from worker.engine.faces.ensemble import above_threshold, pass_scale
from worker.engine.masking import pad_boxes
from worker.engine.registry import ModelRegistry
from worker.evaluation import load_coco
from worker.evaluation.evaluate import load_bgr, samples_for
from worker.evaluation.metrics import ClassMetrics, metrics_by_size

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
DEV = DATA / "wider_face_val_street" / "dev.json"
CLIP_1080P = DATA / "videos" / "mmtracking_demo_street.mp4"
BUCKETS = ("<16", "16-32", "32-64", ">=64")
PADDINGS = ((1.2, 1.5), (1.4, 1.7), (1.6, 2.0), (1.8, 2.2))
THRESHOLDS = np.round(np.arange(0.20, 0.90, 0.01), 2)
TARGET_C80_16 = 0.90


def detect_all(detector: FaceEnsemble, images: list[np.ndarray]) -> list[Detections]:
    """Every fused box with its score (threshold 0): any threshold can then be applied afterwards."""
    return [detector.detect(bgr, score_threshold=0.0) for bgr in images]


def score(dataset, shapes, found, threshold, padding, small_face_margin=0.0) -> dict[str, ClassMetrics]:
    samples = []
    for image, shape, dets in zip(dataset.images, shapes, found, strict=True):
        dets = dets.select(above_threshold(dets.boxes, dets.scores, threshold, small_face_margin))
        masks = pad_boxes(dets.boxes, shape, width_scale=padding[0], height_scale=padding[1])
        samples.append(samples_for(image, dets, masks, "face"))
    return metrics_by_size(samples)


def c80_at_least_16(m: dict[str, ClassMetrics]) -> float:
    """C80 of faces >= 16 px high, pooled from the size buckets."""
    counted = sum(m[b].counted for b in BUCKETS[1:])
    covered = sum((m[b].c80 or 0.0) * m[b].counted for b in BUCKETS[1:])
    return covered / counted if counted else float("nan")


def row(name: str, threshold: float, padding: tuple[float, float], m: dict[str, ClassMetrics]) -> str:
    sizes = "  ".join(f"{b} {m[b].c80 or 0:.3f}" for b in BUCKETS)
    return (f"{name:9s} thr {threshold:.2f} pad {padding[0]:.1f}x{padding[1]:.1f} | C80 <16 {m['<16'].c80 or 0:.3f}"
            f"  >=16 {c80_at_least_16(m):.3f}  all {m['all'].c80 or 0:.3f} ({sizes}) | R@.5 {m['all'].recall or 0:.3f}"
            f" P@.5 {m['all'].precision or 0:.3f} | false masks/img {m['all'].false_masks_per_image or 0:.2f}")


def tune(name: str, spec: FacePreset, dataset, shapes, found, max_false_masks: float) -> None:
    padding, margin = spec.padding, spec.small_face_margin
    by_threshold = {float(t): score(dataset, shapes, found, t, padding, margin) for t in THRESHOLDS}
    allowed = [t for t, m in by_threshold.items() if (m["all"].false_masks_per_image or 0) <= max_false_masks]
    if not allowed:
        print(f"{name}: no threshold on the grid keeps false masks at or under {max_false_masks} per image")
    else:
        chosen = min(allowed)
        for pad in PADDINGS:
            print(row(name, chosen, pad, by_threshold[chosen] if pad == padding
                      else score(dataset, shapes, found, chosen, pad, margin)))
    reaching = [t for t, m in by_threshold.items() if c80_at_least_16(m) >= TARGET_C80_16]
    if reaching:
        t = max(reaching)
        print(row(f"{name}>=.9", t, padding, by_threshold[t]) + "   <- highest threshold reaching C80 0.90 >=16 px")
    else:
        print(f"{name}: C80 >= 16 px stays under {TARGET_C80_16} down to threshold {THRESHOLDS[0]:.2f} "
              f"at padding {padding}")


def as_on_1080p(spec: FacePreset) -> FacePreset | None:
    """The preset with each pixel-budgeted pass at the scale a 1920x1080 frame gets, or None if none is."""
    if all(p.max_pixels is None for p in spec.passes):
        return None
    passes = tuple(
        p if p.max_pixels is None else replace(p, scale=pass_scale(p.scale, 1080, 1920, p.max_pixels) or p.scale,
                                               max_pixels=None)
        for p in spec.passes
    )
    return replace(spec, passes=passes)


def frames_1080p(count: int, dev_images: list[np.ndarray]) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    if CLIP_1080P.exists():
        capture = cv2.VideoCapture(str(CLIP_1080P))
        while len(frames) < count:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.resize(frame, (1920, 1080)) if frame.shape[:2] != (1080, 1920) else frame)
        capture.release()
    for bgr in dev_images:
        if len(frames) >= count:
            break
        frames.append(cv2.resize(bgr, (1920, 1080), interpolation=cv2.INTER_LINEAR))
    return frames


def ms_per_frame(detect, frames: list[np.ndarray], repeats: int) -> tuple[float, float]:
    """(wall, CPU) ms per frame, each the best of `repeats` rounds: on a shared machine noise only adds."""
    detect(frames[0])  # warm-up: session and memory-arena set-up
    wall = cpu = float("inf")
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        for frame in frames:
            detect(frame)
        wall = min(wall, (time.perf_counter() - t0) / len(frames))
        cpu = min(cpu, (time.process_time() - c0) / len(frames))
    return 1000 * wall, 1000 * cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tune", action="store_true", help="sweep thresholds and paddings per preset")
    parser.add_argument("--presets", default=",".join(FACE_PRESETS))
    parser.add_argument("--limit", type=int, default=None, help="first N dev images only")
    parser.add_argument("--max-false-masks", type=float, default=2.0)
    parser.add_argument("--frames", type=int, default=8, help="1080p frames per speed round (0: no speed)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--speed-only", action="store_true", help="skip the dev-split evaluation")
    parser.add_argument("--threads", type=int, default=None, help="ONNX Runtime intra-op threads for speed")
    args = parser.parse_args()
    if not DEV.exists():
        raise SystemExit(f"needs {DEV} (the shared dev data, not shipped with Veil); not found")

    registry = ModelRegistry.from_settings(Settings())
    dataset = load_coco(DEV).head(args.limit)
    images = [load_bgr(image) for image in (dataset.images[: args.frames] if args.speed_only else dataset.images)]
    shapes = [bgr.shape for bgr in images]
    names = [n for n in args.presets.split(",") if n]
    if not args.speed_only:
        print(f"{len(images)} images, {dataset.counts()['face']['counted']} counted faces")
    for name in [] if args.speed_only else names:
        spec = FACE_PRESETS[name]
        detector = build_ensemble(name, spec, registry.load_session)
        found = detect_all(detector, images)
        if args.tune:
            tune(name, spec, dataset, shapes, found, args.max_false_masks)
        else:
            print(row(name, spec.score_threshold, spec.padding,
                      score(dataset, shapes, found, spec.score_threshold, spec.padding, spec.small_face_margin)))
            shrunk = as_on_1080p(spec)
            if shrunk is not None:
                # What the frame-size rule costs: dev faces at the size they have once a 1080p frame is shrunk.
                found = detect_all(build_ensemble(name, shrunk, registry.load_session), images)
                print(row(f"{name}@1080", spec.score_threshold, spec.padding,
                          score(dataset, shapes, found, spec.score_threshold, spec.padding,
                                spec.small_face_margin)))

    if args.frames:
        timed = ModelRegistry.from_settings(Settings(ort_threads=args.threads))
        frames = frames_1080p(args.frames, images)
        baseline = YuNetDetector(session=timed.load_session("yunet_n")).detect
        base_wall, base_cpu = ms_per_frame(baseline, frames, args.repeats)
        threads = args.threads or "default"
        print(f"speed at 1920x1080, {len(frames)} frames, best of {args.repeats}, ORT threads {threads}: "
              f"baseline single-pass YuNet-n {base_wall:.1f} ms/frame wall, {base_cpu:.1f} ms CPU")
        for name in names:
            detector = build_ensemble(name, FACE_PRESETS[name], timed.load_session)
            wall, cpu = ms_per_frame(detector.detect, frames, args.repeats)
            print(f"  {name:9s} wall {wall:7.1f} ms/frame ({wall / base_wall:5.2f}x baseline)"
                  f"   CPU {cpu:7.1f} ms/frame ({cpu / base_cpu:5.2f}x baseline)")


if __name__ == "__main__":
    main()
