"""The plate detector's operating points per preset, tuned on openalpr dev (benchmarks/plates_eval.py).

Candidates come from Veil's plate network (plate_detector_v1, run with its long side at 960 and 1280: plates
it learned from 5 px up; 7 and 16 ms on a 1080p frame) and, in `balanced` and `thorough`, from the PP-OCRv6
text detector (long side 1280; about 220-360 ms), and the verifier keeps the plates among them. The network
finds the small and blurred plates the text detector never proposes (on the plates_train held-out tenth,
C80 0.52 -> 0.78 at `balanced`); the text detector adds large, sharp plates the network scores low.
Thresholds keep false masks under 0.3 per image on openalpr dev; MODEL_CARD.md of plate_detector_v1 has
the sweeps.
"""

from __future__ import annotations

from collections.abc import Mapping

from worker.engine.plates.detector import PlateOperatingPoint

TEXT_MODEL = "ppocr_v6_det_small"
VERIFIER_MODEL = "plate_verifier_v1"
NETWORK_MODEL = "plate_detector_v1"

# Masks grow regressed boxes about their centre: labelled plate boxes hug the characters and some are
# shifted, and 1.3 x 1.5 reached the coverage plateau on openalpr dev (wider padding covered no more plates).
PADDING = (1.3, 1.5)

NETWORK_SIDES = (960, 1280)

_TEXT_AND_NETWORK = PlateOperatingPoint(
    long_sides=(1280,), max_scale=1.5, tile=1280, overlap=160,
    proposal_threshold=0.5, verifier_threshold=0.85, nms_threshold=0.3, padding=PADDING,
    net_long_sides=NETWORK_SIDES, net_threshold=0.15, net_track_threshold=0.05,
)

PLATE_PRESETS: Mapping[str, PlateOperatingPoint] = {
    # The network alone, never enlarging the frame: 25-35 ms for a 1080p frame on two cores (the text detector
    # cost 224 ms here), 12 ms for a 960x540 one.
    "fast": PlateOperatingPoint(
        long_sides=(), max_scale=1.0, tile=1280, overlap=160,
        proposal_threshold=0.5, verifier_threshold=0.7, nms_threshold=0.3, padding=PADDING,
        net_long_sides=NETWORK_SIDES, net_threshold=0.15, net_track_threshold=0.05, net_max_scale=1.0,
    ),
    "balanced": _TEXT_AND_NETWORK,
    # The same as balanced: a second text pass at long side 1920 (the old thorough) covered no more openalpr
    # plates within 0.3 false masks per image and fewer held-out ones (C80 0.70 against 0.78), and thorough
    # is the default preset, which must meet the plate target.
    "thorough": _TEXT_AND_NETWORK,
}
