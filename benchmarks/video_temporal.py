"""Temporal coverage of Veil's video engine, with and without tracking, on a video whose true boxes are known.

The video is made from labelled stills of ../shared/data/wider_face_val_street: for each of --images images
(1-8 counted faces >= 16 px, spread over the dev set), one second (25 frames) of a 960x540 window that pans
across the image while zooming in. The labelled boxes move with the window; a face is scored in a frame when it
is not `ignore`, lies wholly inside the window and is >= 16 px high there. Veil masks with "solid" (black); a
face's coverage is the share of its box's pixels that are near-black in the output and were not in the input.
A face counts as uncovered in a frame when its coverage is < 80 %.

    .venv/bin/python -m benchmarks.video_temporal [--images 10]
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

from benchmarks.video_common import DATA, engine_missing, open_encoder, require, veil_limits, veil_options

DATASET = DATA / "wider_face_val_street"
W, H, FPS, SECONDS_PER_IMAGE = 960, 540, 25, 1
MIN_FACE_PX = 16
COVERED = 0.80
DARK = 48  # max channel value counted as "near-black" after H.264
BANDS = ((16, 32), (32, 64), (64, 10_000))
BAND_LABELS = ("16-32px", "32-64px", ">=64px")


def pick_images(n: int) -> list[tuple[Path, np.ndarray]]:
    coco = json.loads((DATASET / "dev.json").read_text())
    faces: dict[int, list[list[float]]] = {}
    ignored: dict[int, int] = {}
    for a in coco["annotations"]:
        if a.get("category", "face") != "face" and a.get("category_id", 1) != 1:
            continue
        if a.get("ignore"):
            ignored[a["image_id"]] = ignored.get(a["image_id"], 0) + 1
        else:
            faces.setdefault(a["image_id"], []).append(a["bbox"])
    candidates = [img for img in sorted(coco["images"], key=lambda i: i["id"])
                  if 1 <= sum(b[3] >= MIN_FACE_PX for b in faces.get(img["id"], [])) <= 8]
    step = max(1, len(candidates) // n)
    chosen = candidates[::step][:n]
    return [(DATASET / "images" / img["file_name"], np.array(faces[img["id"]], np.float32)) for img in chosen]


def pan_zoom(img: Any, boxes_xywh: np.ndarray, frames: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield (frame, true boxes xyxy) for a window panning left->right, bottom->top, zooming in 1x -> 1.4x."""
    import cv2

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
        keep = ((xyxy[:, 3] - xyxy[:, 1]) >= MIN_FACE_PX) & (xyxy[:, 0] >= 0) & (xyxy[:, 1] >= 0) \
            & (xyxy[:, 2] <= W) & (xyxy[:, 3] <= H)
        yield frame, xyxy[keep]


def build_video(images: list[tuple[Path, np.ndarray]], dst: Path) -> list[np.ndarray]:
    import av
    import cv2

    truth: list[np.ndarray] = []
    rate = Fraction(FPS)
    with av.open(str(dst), "w") as out:
        enc = open_encoder(out, W, H, rate, 18, "fast")
        for path, boxes in images:
            img = cv2.imread(str(path), cv2.IMREAD_COLOR)
            for frame, true in pan_zoom(img, boxes, FPS * SECONDS_PER_IMAGE):
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


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10)
    args = parser.parse_args()
    require(DATASET / "dev.json")
    if (why := engine_missing()):
        raise SystemExit(why)
    from worker.engine.face_yunet import YuNetDetector
    from worker.engine.video import VideoAnonymizer

    engine = VideoAnonymizer(YuNetDetector())
    work = Path(tempfile.mkdtemp(prefix="veil-bench-"))
    rows = []
    try:
        images = pick_images(args.images)
        src = work / "panzoom.mp4"
        truth = build_video(images, src)
        for label, hold, lead in (("tracking (hold 8, lead 4)", 8, 4), ("no tracking (0, 0)", 0, 0)):
            dst = work / f"out-{hold}-{lead}.mp4"
            r = engine.run(src, dst, veil_options("solid", hold, lead), limits=veil_limits(), progress=None)
            rows.append((label, r, coverage(src, dst, truth)))
    finally:
        shutil.rmtree(work, ignore_errors=True)

    n_frames = len(truth)
    print(f"images: {len(images)}  frames: {n_frames} ({W}x{H}, {FPS} fps, {FPS * SECONDS_PER_IMAGE} per image)  "
          f"faces >= {MIN_FACE_PX} px scored: {sum(len(t) for t in truth)} face-frames in "
          f"{sum(1 for t in truth if len(t))} frames")
    print(f"{'config':<28}{'mean cov':>9}{'frames<80%':>11}{'face-frames<80%':>16}"
          + "".join(f"{band:>11}" for band in BAND_LABELS))
    for label, _, cov in rows:
        per_frame = [np.mean([c for _, c in f]) for f in cov if f]
        bad_frames = sum(1 for f in cov if any(c < COVERED for _, c in f))
        bad_faces = sum(1 for f in cov for _, c in f if c < COVERED)
        all_faces = sum(len(f) for f in cov)
        bands = []
        for lo, hi in BANDS:
            inb = [c for f in cov for h, c in f if lo <= h < hi]
            bands.append(f"{sum(c < COVERED for c in inb)}/{len(inb)}")
        print(f"{label:<28}{np.mean(per_frame):>9.3f}{bad_frames:>7}/{len(per_frame):<3}"
              f"{bad_faces:>9}/{all_faces:<6}" + "".join(f"{b:>11}" for b in bands))
    print("mean cov: per-frame mean coverage, averaged over frames with a scored face; "
          "band columns: uncovered/total face-frames by face height")
    print("command: " + " ".join([".venv/bin/python -m benchmarks.video_temporal", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
