"""Peak resident memory of Veil's video engine on a long 1080p video: flat, under 1.5 GB (issue target).

The video is the 1280x720 dashcam clip from ../shared/data/videos looped to 30 s and scaled to 1920x1080
(encoded once), then repeated by copying packets until it lasts --minutes (cached in /tmp/veil-bench-clips).
Veil runs with the video defaults (faces and plates; --targets face for faces only) in a fresh interpreter;
it reports ru_maxrss and samples VmRSS every --every seconds. Flat: the samples after warm-up stay within a
narrow band (max - min printed), with no upward drift between the first and the last quarter.

    .venv/bin/python -m benchmarks.video_memory [--minutes 10] [--every 2] [--targets face]
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
from pathlib import Path

from benchmarks.video_common import (
    DASHCAM,
    VIDEOS,
    concat_clip,
    derived_clip,
    engine_missing,
    probe_frames,
    require,
    run_veil_subprocess,
)

LIMIT_MB = 1500.0
WARMUP_S = 10.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--every", type=float, default=2.0, help="VmRSS sampling interval, seconds")
    parser.add_argument("--targets", default="face,plate", help="what a video job detects by default: both")
    args = parser.parse_args()
    src = require(VIDEOS / DASHCAM[0])
    if (why := engine_missing()):
        raise SystemExit(why)
    loop = derived_clip(src, min_seconds=30, size=(1920, 1080))
    loop_frames, _, _, fps = probe_frames(loop)
    repeats = max(1, math.ceil(args.minutes * 60 * fps / loop_frames))
    clip = concat_clip(loop, repeats)
    frames = loop_frames * repeats
    work = Path(tempfile.mkdtemp(prefix="veil-bench-"))
    try:
        r = run_veil_subprocess(clip, work / "out.mp4", rss_every=args.every, targets=args.targets)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if r["frames"] != frames:
        print(f"warning: engine reported {r['frames']} frames, expected {frames}", file=sys.stderr)
    peak_mb = r["maxrss_kib"] / 1024
    samples = [(t, kib / 1024) for t, kib in r["rss_samples"] if t >= WARMUP_S]
    print(f"video: {clip.name}  1920x1080  {frames} frames ({frames / fps / 60:.1f} min at {fps:g} fps)  "
          f"targets {args.targets}, preset {r['preset']}, cadence {r['cadence']}")
    print(f"{'measure':<40}{'value':>12}")
    print(f"{'wall s (fresh process)':<40}{r['wall_s']:>12.1f}")
    print(f"{'fps (engine.run)':<40}{frames / r['run_s']:>12.1f}")
    print(f"{'peak RSS, ru_maxrss MB':<40}{peak_mb:>12.0f}")
    if samples:
        vals = [v for _, v in samples]
        q = max(1, len(vals) // 4)
        first, last = sum(vals[:q]) / q, sum(vals[-q:]) / q
        print(f"{f'VmRSS samples after {WARMUP_S:g} s (n)':<40}{len(vals):>12}")
        print(f"{'  min MB':<40}{min(vals):>12.0f}")
        print(f"{'  max MB':<40}{max(vals):>12.0f}")
        print(f"{'  max - min MB':<40}{max(vals) - min(vals):>12.0f}")
        print(f"{'  mean first quarter MB':<40}{first:>12.0f}")
        print(f"{'  mean last quarter MB':<40}{last:>12.0f}")
        flat = (last - first) < 50 and (max(vals) - min(vals)) < 150
    else:
        flat = False
        print("no VmRSS samples after warm-up (run too short)")
    print(f"target: peak < {LIMIT_MB:g} MB: {'yes' if peak_mb < LIMIT_MB else 'NO'};  "
          f"flat (drift < 50 MB, band < 150 MB): {'yes' if flat else 'NO'}")
    print("command: " + " ".join([".venv/bin/python -m benchmarks.video_memory", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
