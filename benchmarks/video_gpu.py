"""Veil's video engine with onnxruntime-gpu: 1080p fps, which execution provider really ran each model, and
whether the provider gains from batching frames.

    python -m benchmarks.video_gpu [--videos DIR] [--seconds 30] [--batches 1,2,4,8] [--run-timeout 300]

First every model the video preset loads is opened through the registry and its active provider printed:
ONNX Runtime falls back to the CPU silently when CUDA fails to initialise, so fps alone would not say what
ran. Then each detection network runs on random input at the sizes the video preset gives it, in batches of
--batches frames: milliseconds per frame at each batch size say whether the provider gains from batching.
The plate models run, and are timed, on the CPU under VEIL_ORT_CPU_MODELS's default; VEIL_ORT_CPU_MODELS='[]'
puts them on CUDA.
Then, for each dashcam clip (default ../shared/data/videos), looped to >= --seconds and scaled to 1920x1080
as in video_vs_deface: PyAV decode+encode alone (the I/O limit), Veil's video defaults with faces only, with
faces detected on every frame, and with faces and plates, each in a fresh interpreter timed from outside
(imports and model load included), with the engine's own stage timings. deface is not run here: this is
for a machine with a GPU and, often, no package registry.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.video_common import DASHCAM, VIDEOS, derived_clip, io_limit, require, run_veil_subprocess

# (model, input height, input width): YuNet sees the whole 1080p frame padded to its stride (32); the plate
# network sees it at its largest long side in `fast` (1280, stride-padded as centre_net does).
BATCH_INPUTS = (("yunet_n", 1088, 1920), ("plate_detector_v1", 736, 1280))


def video_registry() -> tuple[Any, Any]:
    """The service's settings and one model registry for the whole benchmark, so each model's session is
    built once (the detectors and the timings below share it)."""
    from shared.settings import Settings
    from worker.engine.registry import ModelRegistry

    settings = Settings()
    return settings, ModelRegistry.from_settings(settings)


def providers(settings: Any, registry: Any) -> dict[str, str]:
    import onnxruntime as ort

    from worker.engine.detection_engine import DetectionEngines
    from worker.engine.onnx_session import active_provider

    engine = DetectionEngines.from_loader(registry.load_session, registry.record).get(
        settings.video_detection_preset)
    found = {"available": ",".join(ort.get_available_providers()), "onnxruntime": ort.__version__,
             "preset": settings.video_detection_preset}
    for task in ("face", "plate"):
        for name in engine.detector(task).model_names:
            found[name] = active_provider(registry.load_session(name))
    return found


def batch_gain(registry: Any, batches: list[int], repeat: int = 20) -> list[tuple[str, str, int, float]]:
    """(model, provider, batch, ms per frame): the median of `repeat` runs after three warm-up runs."""
    import numpy as np

    from worker.engine.onnx_session import active_provider

    rows = []
    rng = np.random.default_rng(0)
    for name, height, width in BATCH_INPUTS:
        session = registry.load_session(name)
        feed_name = session.get_inputs()[0].name
        for batch in batches:
            feed = {feed_name: rng.random((batch, 3, height, width), dtype=np.float32) * 255}
            for _ in range(3):
                session.run(None, feed)
            times = []
            for _ in range(repeat):
                start = time.perf_counter()
                session.run(None, feed)
                times.append(time.perf_counter() - start)
            rows.append((name, active_provider(session), batch, float(np.median(times)) * 1000 / batch))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=Path, default=VIDEOS)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batches", default="1,2,4,8", help="batch sizes for the per-model timing ('': skip)")
    parser.add_argument("--run-timeout", type=float, default=300.0, help="seconds before a Veil run counts as stalled")
    args = parser.parse_args()
    settings, registry = video_registry()
    print(json.dumps(providers(settings, registry)), flush=True)
    batches = [int(b) for b in args.batches.split(",") if b]
    gains = batch_gain(registry, batches) if batches else []
    for name, provider, batch, ms in gains:
        print(json.dumps({"model": name, "provider": provider, "batch": batch, "ms_per_frame": round(ms, 3)}),
              flush=True)
    rows: list[tuple[str, int, float, float | None, float | None, float | None]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in DASHCAM:
            clip = derived_clip(require(args.videos / name), min_seconds=args.seconds, size=(1920, 1080))
            frames, io_s = io_limit(clip, Path(tmp) / "io.mp4")
            runs = {
                "faces": veil(clip, Path(tmp) / "faces.mp4", args.run_timeout, targets="face"),
                "faces_every_frame": veil(clip, Path(tmp) / "every.mp4", args.run_timeout, targets="face",
                                          face_cadence=1),
                "faces_plates": veil(clip, Path(tmp) / "both.mp4", args.run_timeout, targets="face,plate"),
            }
            fps = [frames / r["wall_s"] if r else None for r in runs.values()]
            rows.append((name, frames, frames / io_s, fps[0], fps[1], fps[2]))
            print(json.dumps({"clip": name, "io_s": io_s, **runs}), flush=True)
    print(f"\nthreads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, cpus={os.cpu_count()}")
    if gains:
        print(f"{'model':<20}{'provider':<26}{'batch':>6}{'ms/frame':>10}")
        for name, provider, batch, ms in gains:
            print(f"{name:<20}{provider:<26}{batch:>6}{ms:>10.2f}")
    print(f"{'clip (1920x1080 loop)':<34}{'frames':>7}{'I/O fps':>9}{'faces fps':>11}{'faces x1 fps':>14}"
          f"{'faces+plates fps':>18}")
    for name, frames, io_fps, f_fps, every_fps, b_fps in rows:
        print(f"{name:<34}{frames:>7}{io_fps:>9.1f}{_fps(f_fps):>11}{_fps(every_fps):>14}{_fps(b_fps):>18}")
    print(f"faces x1: faces detected on every frame (VEIL_VIDEO_FACE_CADENCE=1); stalled: over {args.run_timeout:g} s")


def veil(src: Path, dst: Path, timeout: float, **kwargs: object) -> dict | None:
    """One Veil run, or None when it outlasts `timeout` (on CUDA a model fed a new input shape on most calls
    once took about a second a call, and a benchmark that waits on it forever reports nothing)."""
    try:
        return run_veil_subprocess(src, dst, timeout=timeout, **kwargs)  # type: ignore[arg-type]
    except subprocess.TimeoutExpired:
        return None


def _fps(value: float | None) -> str:
    return "stalled" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    main()
