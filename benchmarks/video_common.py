"""Shared pieces of the video benchmarks: the shared clips, derived (looped, scaled) clips, a PyAV
decode+encode baseline, and a subprocess runner for Veil's video engine that reports wall time and memory.

Derived clips are cached under /tmp/veil-bench-clips, keyed by the source's sha256 (never inside the repo).
The shared data is read by path and never copied; every entry point exits with a message when it is absent.

    .venv/bin/python -m benchmarks.video_common veil SRC DST [--mask solid] [--hold 8 --lead 4] [--rss-every 2]
        [--targets face,plate] [--preset fast] [--face-cadence 3] [--plate-cadence 5]

runs Veil on one file in this process and prints one JSON line (what the benchmarks parse).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import resource
import sys
import threading
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
VIDEOS = DATA / "videos"
CLIP_CACHE = Path("/tmp/veil-bench-clips")
DASHCAM = ("udacity_carnd_test_video.mp4", "udacity_solidWhiteRight.mp4")


def require(path: Path) -> Path:
    if not path.exists():
        raise SystemExit(f"needs {path} (the shared dev data, not shipped with Veil); not found")
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def probe_frames(path: Path) -> tuple[int, int, int, float]:
    """(frames, width, height, fps) by decoding: container headers are not trusted for the frame count."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        n = sum(1 for _ in c.decode(s))
        return n, s.codec_context.width, s.codec_context.height, float(s.average_rate or s.guessed_rate or 25)


def open_encoder(out: Any, width: int, height: int, rate: Fraction, crf: int, preset: str) -> Any:
    """The encoder that renders test clips (derived and temporal ones): kept as it was, so that the clips, and the
    detections on them, stay comparable between versions of Veil's own encoder."""
    stream = out.add_stream("libx264", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.options = {"crf": str(crf), "preset": preset}
    return stream


def engine_encoder(out: Any, width: int, height: int, rate: Fraction, fields: dict[str, Any] | None = None) -> Any:
    """An encoder set up as Veil's (frame threads; the service's crf, preset and x264 params unless `fields`
    gives encoder_fields' keywords): the I/O baseline, and the configurations benchmarks.encoder_settings
    compares."""
    from shared.settings import Settings
    from worker.engine.video.output import add_h264_stream, encoder_fields

    stream = add_h264_stream(out, rate, **(fields if fields is not None else encoder_fields(Settings())))
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    return stream


def encode_bgr(enc: Any, out: Any, img: Any, pts: int, rate: Fraction) -> None:
    """Encode one BGR frame at frame number `pts` of a constant-rate stream and mux its packets."""
    import av

    vf = av.VideoFrame.from_ndarray(img, format="bgr24")
    vf.pts = pts
    vf.time_base = 1 / rate
    for p in enc.encode(vf):
        out.mux(p)


def derived_clip(src: Path, *, min_seconds: float = 0.0, size: tuple[int, int] | None = None) -> Path:
    """`src` looped until it lasts >= min_seconds and optionally resized to `size` (w, h); H.264 crf 18.

    Decodes the source again for each loop rather than holding frames, so memory stays small at 1080p.
    """
    import av
    import cv2

    tag = f"{sha256(src)[:16]}-loop{int(min_seconds)}-{'x'.join(map(str, size)) if size else 'native'}.mp4"
    dst = CLIP_CACHE / tag
    if dst.exists():
        return dst
    CLIP_CACHE.mkdir(parents=True, exist_ok=True)
    _, w0, h0, fps = probe_frames(src)
    w, h = size or (w0, h0)
    rate = Fraction(fps).limit_denominator(1001)
    need = max(1, round(min_seconds * fps))
    tmp = dst.with_suffix(".part.mp4")
    written = 0
    with av.open(str(tmp), "w") as out:
        enc = open_encoder(out, w, h, rate, 18, "fast")
        while written < need or written == 0:
            with av.open(str(src)) as c:
                c.streams.video[0].thread_type = "AUTO"
                for frame in c.decode(video=0):
                    img: Any = frame.to_ndarray(format="bgr24")
                    if (w, h) != (w0, h0):
                        img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA if w < w0 else cv2.INTER_LINEAR)
                    encode_bgr(enc, out, img, written, rate)
                    written += 1
            if min_seconds <= 0:
                break
        for p in enc.encode(None):
            out.mux(p)
    tmp.rename(dst)
    return dst


def concat_clip(src: Path, repeats: int) -> Path:
    """`src` repeated `repeats` times by copying packets (no re-encode); x264's GOPs are closed, so this is valid."""
    import av

    dst = CLIP_CACHE / f"{src.stem}-x{repeats}.mp4"
    if dst.exists():
        return dst
    tmp = dst.with_suffix(".part.mp4")
    with av.open(str(src)) as probe:
        vs = probe.streams.video[0]
        span = max(int(p.pts) + int(p.duration or 0) for p in probe.demux(vs) if p.pts is not None)
    with av.open(str(tmp), "w") as out:
        ostream = None
        for r in range(repeats):
            with av.open(str(src)) as c:
                vs = c.streams.video[0]
                if ostream is None:
                    ostream = out.add_stream_from_template(vs)
                for p in c.demux(vs):
                    if p.dts is None or p.pts is None:
                        continue
                    p.pts += r * span
                    p.dts += r * span
                    p.stream = ostream
                    out.mux(p)
    tmp.rename(dst)
    return dst


def io_limit(src: Path, dst: Path) -> tuple[int, float]:
    """Decode + encode with PyAV alone (BGR round trip as the engine does, no detection): (frames, seconds)."""
    import av

    start = time.perf_counter()
    n = 0
    with av.open(str(src)) as c, av.open(str(dst), "w") as out:
        s = c.streams.video[0]
        s.thread_type = "AUTO"
        rate = s.average_rate or Fraction(25)
        enc = engine_encoder(out, s.codec_context.width, s.codec_context.height, rate)
        for frame in c.decode(s):
            encode_bgr(enc, out, frame.to_ndarray(format="bgr24"), n, rate)
            n += 1
        for p in enc.encode(None):
            out.mux(p)
    return n, time.perf_counter() - start


# Veil's own packages, byte-compiled before a timed fresh process as a regular install compiles them (pip and
# the Docker images do; deface's benchmark venv has them from pip). An editable checkout under
# PYTHONDONTWRITEBYTECODE (set on the build machines) otherwise compiles every module again in every process:
# 30-35 ms of a 1.3 s command on the 38-frame 720p clip.
PACKAGES = ("api", "worker", "shared", "cli", "benchmarks")


@functools.cache
def compile_veil() -> None:
    """Write the bytecode of Veil's packages that is missing or stale (once per process)."""
    import compileall

    for package in PACKAGES:
        if not compileall.compile_dir(str(REPO / package), quiet=1):
            raise SystemExit(f"byte-compiling {package} failed")


def run_veil_subprocess(src: Path, dst: Path, *, mask: str = "blur", hold: int = 8, lead: int = 4,
                        rss_every: float = 0.0, targets: str = "face", preset: str | None = None,
                        face_cadence: int | None = None, plate_cadence: int | None = None,
                        timeout: float | None = None) -> dict:
    """Veil in a fresh interpreter, timed from outside like deface (includes imports and model load; Veil's
    packages byte-compiled first, as installed).
    preset and cadences left None take the service's video defaults (Settings). Past `timeout` seconds the
    child is killed and subprocess.TimeoutExpired raised."""
    import subprocess

    compile_veil()
    cmd = [sys.executable, "-m", "benchmarks.video_common", "veil", str(src), str(dst), "--mask", mask,
           "--hold", str(hold), "--lead", str(lead), "--rss-every", str(rss_every), "--targets", targets]
    for flag, value in (("--preset", preset), ("--face-cadence", face_cadence), ("--plate-cadence", plate_cadence)):
        if value is not None:
            cmd += [flag, str(value)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"veil failed on {src}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall_s"] = wall
    return result


def veil_options(mask: str, hold: int, lead: int, *, targets: tuple[str, ...] = ("face",),
                 preset: str | None = None, cadence: dict[str, int] | None = None) -> Any:
    """The engine options of a video job with these choices; None: the service's video defaults (as
    worker.video_job.video_options applies them)."""
    from shared.settings import Settings
    from worker.engine.masking import MaskStyle
    from worker.engine.pipeline import AnonymizeOptions
    from worker.engine.video import VideoOptions
    from worker.engine.video.output import encoder_fields

    settings = Settings()
    defaults = {"face": settings.video_face_cadence, "plate": settings.video_plate_cadence}
    thresholds = {"face": settings.video_face_threshold} if "face" in targets else {}
    what = AnonymizeOptions(targets=targets, preset=preset or settings.video_detection_preset, mask=MaskStyle(mask),
                            threshold_by_target=thresholds)
    return VideoOptions(face=what, **encoder_fields(settings), track_hold_frames=hold, track_lead_frames=lead,
                        cadence={**defaults, **(cadence or {})})


def veil_engines() -> Any:
    """The service's detectors: every preset on licence- and hash-checked registry sessions."""
    from shared.settings import Settings
    from worker.context import build_engines

    return build_engines(Settings())


def veil_limits() -> Any:
    from worker.engine.video import VideoLimits

    return VideoLimits(max_duration_s=7200, max_width=7680, max_height=4320)


def engine_missing() -> str | None:
    try:
        import worker.engine.video  # noqa: F401
    except ImportError as exc:
        return f"worker.engine.video is not importable yet ({exc})"
    return None


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _count(x: object) -> int | str:
    if isinstance(x, (int, float)):
        return int(x)
    try:
        return len(x)  # type: ignore[arg-type]
    except TypeError:
        return str(x)


def _veil_main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="video_common veil")
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--mask", default="blur")
    parser.add_argument("--hold", type=int, default=8)
    parser.add_argument("--lead", type=int, default=4)
    parser.add_argument("--rss-every", type=float, default=0.0, help="sample VmRSS every N seconds (0: off)")
    parser.add_argument("--targets", default="face", help="face or face,plate")
    parser.add_argument("--preset", default=None, help="default: VEIL_VIDEO_DETECTION_PRESET")
    parser.add_argument("--face-cadence", type=int, default=None, help="default: VEIL_VIDEO_FACE_CADENCE")
    parser.add_argument("--plate-cadence", type=int, default=None, help="default: VEIL_VIDEO_PLATE_CADENCE")
    args = parser.parse_args(argv)
    samples: list[tuple[float, int]] = []
    stop = threading.Event()
    t0 = time.perf_counter()
    if args.rss_every > 0:
        def sample() -> None:
            while not stop.wait(args.rss_every):
                samples.append((time.perf_counter() - t0, rss_kib()))
        threading.Thread(target=sample, daemon=True).start()
    from worker.engine.video import VideoAnonymizer
    from worker.startup_heap import freeze_startup_heap

    cadence = {k: v for k, v in (("face", args.face_cadence), ("plate", args.plate_cadence)) if v is not None}
    options = veil_options(args.mask, args.hold, args.lead, targets=tuple(args.targets.split(",")),
                           preset=args.preset, cadence=cadence)
    engine = VideoAnonymizer(veil_engines())
    freeze_startup_heap()  # as the CLI does
    t_run = time.perf_counter()
    r = engine.run(args.src, args.dst, options, limits=veil_limits(), progress=None)
    run_s = time.perf_counter() - t_run
    stop.set()
    print(json.dumps({
        "frames": r.frames, "width": r.width, "height": r.height, "fps_reported": r.fps,
        "detections": _count(r.detections), "tracks": _count(r.tracks), "masked_boxes": _count(r.masked_boxes),
        "timings_ms": {k: float(v) for k, v in dict(r.timings_ms).items()},
        "run_s": run_s, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_samples": samples, "threads_env": os.environ.get("OMP_NUM_THREADS"),
        "preset": options.face.preset, "cadence": r.cadence, "detected_frames": r.detected_frames,
        "region_frames": r.region_frames,
    }))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "veil":
        _veil_main(sys.argv[2:])
    else:
        raise SystemExit(__doc__)
