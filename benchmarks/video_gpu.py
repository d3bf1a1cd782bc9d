"""Veil's video engine with onnxruntime-gpu: 1080p fps and which execution provider really ran each model.

    python -m benchmarks.video_gpu [--videos DIR] [--seconds 30]

For each dashcam clip (default ../shared/data/videos), looped to >= --seconds and scaled to 1920x1080 as in
video_vs_deface: PyAV decode+encode alone (the I/O limit), Veil's video defaults with faces only and with faces
and plates, each in a fresh interpreter timed from outside (imports and model load included). Then every
model the video preset loads is opened through the registry and its active provider printed: ONNX Runtime
falls back to the CPU silently when CUDA fails to initialise, so fps alone would not say what ran. deface is
not run here: this is for a machine with a GPU and, often, no package registry.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from benchmarks.video_common import DASHCAM, VIDEOS, derived_clip, io_limit, require, run_veil_subprocess


def providers() -> dict[str, str]:
    import onnxruntime as ort

    from shared.settings import Settings
    from worker.engine.onnx_session import active_provider
    from worker.engine.registry import ModelRegistry

    settings = Settings()
    registry = ModelRegistry.from_settings(settings)
    found = {"available": ",".join(ort.get_available_providers()), "onnxruntime": ort.__version__}
    for name in ("yunet_n", "ppocr_v6_det_small", "plate_verifier_v1"):
        found[name] = active_provider(registry.load_session(name))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    print(json.dumps(providers()), flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in DASHCAM:
            clip = derived_clip(require(args.videos / name), min_seconds=args.seconds, size=(1920, 1080))
            frames, io_s = io_limit(clip, Path(tmp) / "io.mp4")
            faces = run_veil_subprocess(clip, Path(tmp) / "faces.mp4", targets="face")
            both = run_veil_subprocess(clip, Path(tmp) / "both.mp4", targets="face,plate")
            rows.append((name, frames, frames / io_s, frames / faces["wall_s"], frames / both["wall_s"],
                         faces["timings_ms"], both["timings_ms"]))
            print(json.dumps({"clip": name, "faces": faces, "faces_plates": both}), flush=True)
    print(f"\nthreads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cpus={os.cpu_count()}")
    print(f"{'clip (1920x1080 loop)':<34}{'frames':>7}{'I/O fps':>9}{'faces fps':>11}{'faces+plates fps':>18}")
    for name, frames, io_fps, f_fps, b_fps, _, _ in rows:
        print(f"{name:<34}{frames:>7}{io_fps:>9.1f}{f_fps:>11.1f}{b_fps:>18.1f}")


if __name__ == "__main__":
    main()
