"""The plate detector's operating points per preset, tuned on openalpr dev (benchmarks/plates_eval.py).

The text detector runs on the whole frame scaled so its long side is `long_sides` pixels (tiled above
`tile`): on openalpr (mostly 1280x720), 1280 proposed as many plates as 1.5x upscaling in 640-px tiles with a
sixth of the false proposals, because plate characters are large for it. `thorough` adds a 1920 pass for
distant plates. Verifier thresholds: `fast` and `balanced` keep false masks under 0.3 per image on openalpr
dev (C80 0.971 and 0.986); `thorough` trades 0.39 false masks per image for C80 0.993. `fast` cannot reach
~40 ms per 1080p frame on two cores without losing about a quarter of the plates (see the model card).
"""

from __future__ import annotations

from collections.abc import Mapping

from worker.engine.plates.detector import PlateOperatingPoint

TEXT_MODEL = "ppocr_v6_det_small"
VERIFIER_MODEL = "plate_verifier_v1"

# Masks grow regressed boxes about their centre: labelled plate boxes hug the characters and some are
# shifted, and 1.3 x 1.5 reached the coverage plateau on openalpr dev (wider padding covered no more plates).
PADDING = (1.3, 1.5)

PLATE_PRESETS: Mapping[str, PlateOperatingPoint] = {
    "fast": PlateOperatingPoint(
        long_sides=(960,), max_scale=1.0, tile=1280, overlap=160,
        proposal_threshold=0.5, verifier_threshold=0.7, nms_threshold=0.3, padding=PADDING,
    ),
    "balanced": PlateOperatingPoint(
        long_sides=(1280,), max_scale=1.5, tile=1280, overlap=160,
        proposal_threshold=0.5, verifier_threshold=0.7, nms_threshold=0.3, padding=PADDING,
    ),
    "thorough": PlateOperatingPoint(
        long_sides=(1280, 1920), max_scale=2.0, tile=1280, overlap=160,
        proposal_threshold=0.6, verifier_threshold=0.7, nms_threshold=0.3, padding=PADDING,
    ),
}
