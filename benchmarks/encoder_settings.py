"""x264 settings for the output: CPU, file size and fidelity to the decoded input, in one run.

Each clip is decoded once to YUV frames held in memory, then encoded with each configuration as the engine
encodes (video_common.engine_encoder: frame threads; frames handed over without the decoder's frame types, so
x264 picks its own). For each: encoder CPU per frame (median of --repeat runs, user + system time of this process),
file size, PSNR-Y over all frames and SSIM-Y (Gaussian 11x11, sigma 1.5) over every third frame, against the
decoded input; ratios against the first configuration.

Clips: the two dashcam clips of ../shared/data/videos, the 1280x720 one scaled to 1920x1080, and a pan-and-zoom
over 6 labelled stills (benchmarks.video_temporal's renderer), which has smooth motion over still scenes.

    .venv/bin/python -m benchmarks.encoder_settings [--configs '20|veryfast|me=dia' '20|veryfast|me=dia:bframes=0']
        [--repeat 3]

A configuration is crf|preset|x264-params. The default list: the service's earlier settings (no B-frames, veryfast's
partitions), its settings now (without 8x8 sub-partitions of P-macroblocks), and the earlier ones with B-frames.
"""

from __future__ import annotations

import argparse
import os
import resource
import shlex
import statistics
import sys
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.video_common import DASHCAM, VIDEOS, derived_clip, engine_encoder, require

DEFAULT_CONFIGS = ("20|veryfast|me=dia:bframes=0", "20|veryfast|me=dia:bframes=0:partitions=i8x8,i4x4",
                   "20|veryfast|me=dia")


def cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    import cv2

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x: np.ndarray) -> Any:
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    ma, mb = blur(a), blur(b)
    saa, sbb, sab = blur(a * a) - ma * ma, blur(b * b) - mb * mb, blur(a * b) - ma * mb
    return float(np.mean(((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2))))


def luma(frame: Any) -> np.ndarray:
    return frame.to_ndarray(format="gray").astype(np.float32)


def encode(frames: list[Any], dst: Path, config: str) -> float:
    """Encode the frames with crf|preset|params; returns this process's CPU seconds spent."""
    import av

    crf, preset, params = config.split("|")
    with av.open(str(dst), "w") as out:
        stream = engine_encoder(out, frames[0].width, frames[0].height, Fraction(25),
                                {"crf": int(crf), "preset": preset, "encoder_params": params})
        start = cpu_s()
        for i, f in enumerate(frames):
            f.pts = i
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return cpu_s() - start


def measure(src: Path, configs: list[str], repeat: int, work: Path) -> list[dict[str, float]]:
    import av

    with av.open(str(src)) as c:
        # New frames over the decoded planes, as the engine hands them over (stages.video_frame): they carry no
        # picture type, so x264 chooses its own instead of copying the input's.
        planes: list[Any] = [np.ascontiguousarray(f.to_ndarray(format="yuv420p")) for f in c.decode(video=0)]
    frames = [av.VideoFrame.from_numpy_buffer(p, format="yuv420p") for p in planes]
    truth = [luma(f) for f in frames]
    cpu: dict[str, list[float]] = {k: [] for k in configs}
    rows = {}
    for round_ in range(repeat):
        for config in configs:
            dst = work / "out.mp4"
            cpu[config].append(encode(frames, dst, config))
            if round_ == 0:
                with av.open(str(dst)) as c:
                    out = [luma(f) for f in c.decode(video=0)]
                mse = float(np.mean([np.mean((a - b) ** 2) for a, b in zip(truth, out, strict=True)]))
                rows[config] = {"size": float(os.path.getsize(dst)), "psnr": 10 * np.log10(255**2 / mse),
                                "ssim": float(np.mean([ssim(a, b) for a, b in zip(truth[::3], out[::3], strict=True)]))}
    for config in configs:
        rows[config]["cpu_ms"] = 1000 * statistics.median(cpu[config]) / len(frames)
        rows[config]["frames"] = len(frames)
    return [rows[c] for c in configs]


def clips(work: Path) -> list[tuple[str, Path]]:
    from benchmarks.video_temporal import build_video, pick_images

    out = [(Path(name).stem.replace("udacity_", ""), require(VIDEOS / name)) for name in DASHCAM]
    out.append(("carnd_test_video 1920x1080", derived_clip(VIDEOS / DASHCAM[0], size=(1920, 1080))))
    pan = work / "pan.mp4"
    build_video(pick_images(6), pan)
    out.append(("pan over 6 stills 960x540", pan))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=list(DEFAULT_CONFIGS))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"cores: {os.cpu_count()}  repeat: {args.repeat} (median CPU)")
    with tempfile.TemporaryDirectory(prefix="veil-enc-") as tmp:
        work = Path(tmp)
        for name, src in clips(work):
            rows = measure(src, args.configs, args.repeat, work)
            base = rows[0]
            print(f"{name} ({int(base['frames'])} frames)")
            for config, r in zip(args.configs, rows, strict=True):
                print(f"  {config:32s} cpu {r['cpu_ms']:5.1f} ms/frame ({r['cpu_ms'] / base['cpu_ms']:.2f}x)  "
                      f"size {r['size'] / 1e6:5.2f} MB ({r['size'] / base['size']:.2f}x)  "
                      f"PSNR-Y {r['psnr']:.2f} dB ({r['psnr'] - base['psnr']:+.2f})  SSIM-Y {r['ssim']:.4f}")
    print("command: .venv/bin/python -m benchmarks.encoder_settings " + shlex.join(sys.argv[1:]))


if __name__ == "__main__":
    main()
