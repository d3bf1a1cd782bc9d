"""Temporal coverage of Veil's video engine: detection on every frame against the video cadence, with and
without tracking, on videos whose true boxes are known in every frame.

Faces: made from labelled stills of ../shared/data/wider_face_val_street: for each of --images images (1-8
counted faces >= 16 px, spread over the dev set), one second (25 frames) of a 960x540 window that pans across
the image while zooming in. The labelled boxes move with the window; a face is scored in a frame when it is not
`ignore`, lies wholly inside the window and is >= 16 px high there. Plates: the same pan over --plate-images
images of ../shared/data/openalpr_plates (plates >= 10 px high scored). Veil masks with "solid" (black); a
box's coverage is the share of its pixels that are near-black in the output and were not in the input; a box
counts as uncovered in a frame when its coverage is < 80 %.

Configurations per target: every frame (cadence 1, the honest baseline), the video default cadence
(VEIL_VIDEO_FACE_CADENCE / VEIL_VIDEO_PLATE_CADENCE, or --face-cadence / --plate-cadence), and every frame
without tracking (hold 0, lead 0). All with the video detection preset (VEIL_VIDEO_DETECTION_PRESET).

    .venv/bin/python -m benchmarks.video_temporal [--images 10] [--plate-images 10] [--face-cadence 3]
        [--size 1920x1080]

`--size` renders the pan at another frame size (the same window of each image, scaled): at 1920x1080 the
plate network's whole-frame passes run shrunk (0.5x and 0.67x), so region looks are checked at their own
scale there.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.video_common import DATA, engine_missing, open_encoder, require, veil_engines, veil_limits, veil_options

DATASET = DATA / "wider_face_val_street"
PLATES = DATA / "openalpr_plates"
SIZE, FPS, SECONDS_PER_IMAGE = (960, 540), 25, 1
MIN_FACE_PX = 16
MIN_PLATE_PX = 10
COVERED = 0.80
DARK = 48  # max channel value counted as "near-black" after H.264
BANDS = ((16, 32), (32, 64), (64, 10_000))
BAND_LABELS = ("16-32px", "32-64px", ">=64px")


def pick_images(n: int, dataset: Path = DATASET, category: str = "face",
                min_px: float = MIN_FACE_PX) -> list[tuple[Path, np.ndarray]]:
    coco = json.loads((dataset / "dev.json").read_text())
    faces: dict[int, list[list[float]]] = {}
    ignored: dict[int, int] = {}
    for a in coco["annotations"]:
        if a.get("category", category) != category:
            continue
        if a.get("ignore"):
            ignored[a["image_id"]] = ignored.get(a["image_id"], 0) + 1
        else:
            faces.setdefault(a["image_id"], []).append(a["bbox"])
    candidates = [img for img in sorted(coco["images"], key=lambda i: i["id"])
                  if 1 <= sum(b[3] >= min_px for b in faces.get(img["id"], [])) <= 8]
    step = max(1, len(candidates) // n)
    chosen = candidates[::step][:n]
    return [(dataset / "images" / img["file_name"], np.array(faces[img["id"]], np.float32)) for img in chosen]


def pan_zoom(img: Any, boxes_xywh: np.ndarray, frames: int, min_px: float = MIN_FACE_PX,
             size: tuple[int, int] = SIZE) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (frame, true boxes xyxy) for a window panning left->right, bottom->top, zooming in 1x -> 1.4x."""
    import cv2

    W, H = size  # noqa: N806
    ih, iw = img.shape[:2]
    cw_max = min(iw, ih * W / H)
    for i in range(frames):
        t = i / max(1, frames - 1)
        cw = cw_max / (1 + 0.4 * t)
        ch = cw * H / W
        cx = cw / 2 + t * (iw - cw)
        cy = (ih - ch / 2) - t * (ih - ch)
        x0, y0, z = cx - cw / 2, cy - ch / 2, W / cw
        m = np.array([[z, 0, -x0 * z], [0, z, -y0 * z]], np.float32)
        frame = cv2.warpAffine(img, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        b = boxes_xywh.copy()
        xyxy = np.stack([(b[:, 0] - x0) * z, (b[:, 1] - y0) * z,
                         (b[:, 0] + b[:, 2] - x0) * z, (b[:, 1] + b[:, 3] - y0) * z], axis=1)
        keep = ((xyxy[:, 3] - xyxy[:, 1]) >= min_px) & (xyxy[:, 0] >= 0) & (xyxy[:, 1] >= 0) \
            & (xyxy[:, 2] <= W) & (xyxy[:, 3] <= H)
        yield frame, xyxy[keep]


def build_video(images: list[tuple[Path, np.ndarray]], dst: Path, min_px: float = MIN_FACE_PX,
                size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    import av
    import cv2

    W, H = size  # noqa: N806
    truth: list[np.ndarray] = []
    rate = Fraction(FPS)
    with av.open(str(dst), "w") as out:
        enc = open_encoder(out, W, H, rate, 18, "fast")
        for path, boxes in images:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            for frame, true in pan_zoom(img, boxes, FPS * SECONDS_PER_IMAGE, min_px, size):
                vf = av.VideoFrame.from_ndarray(frame, format="bgr24")
                vf.pts, vf.time_base = len(truth), 1 / rate
                for p in enc.encode(vf):
                    out.mux(p)
                truth.append(true)
        for p in enc.encode(None):
            out.mux(p)
    return truth


def coverage(src: Path, out: Path, truth: list[np.ndarray]) -> list[list[tuple[float, float]]]:
    """Per frame, per scored face: (height px, covered share)."""
    import av

    result: list[list[tuple[float, float]]] = []
    with av.open(str(src)) as a, av.open(str(out)) as b:
        for fa, fb, true in zip(a.decode(video=0), b.decode(video=0), truth, strict=True):
            ia = fa.to_ndarray(format="bgr24").max(axis=2)
            ib = fb.to_ndarray(format="bgr24").max(axis=2)
            faces = []
            for x1, y1, x2, y2 in true:
                sl = (slice(int(y1), int(np.ceil(y2))), slice(int(x1), int(np.ceil(x2))))
                live = ia[sl] > DARK
                if live.sum() == 0:
                    continue
                faces.append((float(y2 - y1), float((live & (ib[sl] <= DARK)).sum() / live.sum())))
            result.append(faces)
    return result


def run_configs(engine: Any, work: Path, target: str, images: list[tuple[Path, np.ndarray]], min_px: float,
                cadence: int, size: tuple[int, int] = SIZE
                ) -> tuple[list[np.ndarray], list[tuple[str, Any, list[list[tuple[float, float]]]]]]:
    src = work / f"panzoom-{target}.mp4"
    truth = build_video(images, src, min_px, size)
    rows = []
    configs = [(f"every frame, tracking (8, {max(4, cadence - 1)})", 8, 4, 1),
               (f"cadence {cadence}, tracking", 8, 4, cadence), ("every frame, no tracking", 0, 0, 1)]
    for label, hold, lead, every in configs:
        dst = work / f"out-{target}-{hold}-{lead}-{every}.mp4"
        # Lead frames as the cadence run gets them, so the two differ only in what the detector sees.
        options = veil_options("solid", hold, max(lead, cadence - 1) if hold else 0, targets=(target,),
                               cadence={target: every})
        r = engine.run(src, dst, options, limits=veil_limits(), progress=None)
        rows.append((label, r, coverage(src, dst, truth)))
    return truth, rows


def report(target: str, min_px: float, images: int, truth: list[np.ndarray],
           rows: list[tuple[str, Any, list[list[tuple[float, float]]]]], size: tuple[int, int] = SIZE) -> None:
    print(f"{target}s: images: {images}  frames: {len(truth)} ({size[0]}x{size[1]}, {FPS} fps, "
          f"{FPS * SECONDS_PER_IMAGE} per image)  {target}s >= {min_px:g} px scored: "
          f"{sum(len(t) for t in truth)} box-frames in "
          f"{sum(1 for t in truth if len(t))} frames")
    print(f"{'config':<32}{'detected':>10}{'mean cov':>9}{'frames<80%':>11}{'boxes<80%':>12}"
          + "".join(f"{band:>11}" for band in BAND_LABELS))
    for label, r, cov in rows:
        per_frame = [np.mean([c for _, c in f]) for f in cov if f]
        bad_frames = sum(1 for f in cov if any(c < COVERED for _, c in f))
        bad_faces = sum(1 for f in cov for _, c in f if c < COVERED)
        all_faces = sum(len(f) for f in cov)
        bands = []
        for lo, hi in ((min_px, 32), *BANDS[1:]):
            inb = [c for f in cov for h, c in f if lo <= h < hi]
            bands.append(f"{sum(c < COVERED for c in inb)}/{len(inb)}")
        detected = (f"{r.detected_frames.get(target, 0) / max(1, r.frames):.2f}"
                    f"+{r.region_frames.get(target, 0) / max(1, r.frames):.2f}")
        print(f"{label:<32}{detected:>10}{np.mean(per_frame):>9.3f}{bad_frames:>7}/{len(per_frame):<3}"
              f"{bad_faces:>7}/{all_faces:<5}" + "".join(f"{b:>11}" for b in bands))


def main() -> None:
    import argparse

    from shared.settings import Settings

    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10)
    parser.add_argument("--plate-images", type=int, default=10, help="0: faces only")
    parser.add_argument("--face-cadence", type=int, default=settings.video_face_cadence)
    parser.add_argument("--plate-cadence", type=int, default=settings.video_plate_cadence)
    parser.add_argument("--size", default=f"{SIZE[0]}x{SIZE[1]}", help="frame size WxH of the rendered pans")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    size = (width, height)
    require(DATASET / "dev.json")
    if (why := engine_missing()):
        raise SystemExit(why)
    from worker.engine.video import VideoAnonymizer

    engine = VideoAnonymizer(veil_engines())
    work = Path(tempfile.mkdtemp(prefix="veil-bench-"))
    results = []
    try:
        faces = pick_images(args.images)
        results.append(("face", MIN_FACE_PX, len(faces), *run_configs(engine, work, "face", faces, MIN_FACE_PX,
                                                                      args.face_cadence, size)))
        if args.plate_images and (PLATES / "dev.json").exists():
            plates = pick_images(args.plate_images, PLATES, "plate", MIN_PLATE_PX)
            results.append(("plate", MIN_PLATE_PX, len(plates),
                            *run_configs(engine, work, "plate", plates, MIN_PLATE_PX, args.plate_cadence, size)))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"preset: {settings.video_detection_preset} (VEIL_VIDEO_DETECTION_PRESET)")
    for target, min_px, n, truth, rows in results:
        report(target, min_px, n, truth, rows, size)
    print("detected: share of frames the detector saw whole (the cadence) + share it saw only around the tracks"
          " that asked for the frame")
    print("mean cov: per-frame mean coverage, averaged over frames "
          "with a scored box; band columns: uncovered/total box-frames by box height")
    print("command: " + " ".join([".venv/bin/python -m benchmarks.video_temporal", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
