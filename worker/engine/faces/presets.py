"""The three face presets: which passes run and the operating point, tuned on the WIDER FACE street dev split.

Thresholds are the lowest that keep false masks at or under 2.0 per image on that split (a missed face is a
privacy leak, a false mask only blurs some background). Padding 1.6 x 2.0: boxes matched to a face need only
1.2 x 1.5 to cover it (99 % of them), the rest covers faces the boxes frame badly or miss beside a found
one; each step from 1.2 x 1.5 to 1.8 x 2.2 adds about one point of C80. On the dev split (C80 = share of
counted faces at least 80 % covered by the masks; `benchmarks/faces_presets.py` reproduces this):

    preset    C80 <16 px  C80 >=16 px  false masks/img  C80 >=16 px reaches 0.90 at
    fast        0.725       0.845         1.92           8.3 false masks/img
    balanced    0.773       0.861         1.93           4.7
    thorough    0.793       0.870         1.92           3.6

No preset reaches C80 0.90 on faces >= 16 px within 2 false masks per image with these models.
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.engine.faces.ensemble import ScalePass


@dataclass(frozen=True)
class FacePreset:
    passes: tuple[ScalePass, ...]
    score_threshold: float
    padding: tuple[float, float]


FACE_PRESETS: dict[str, FacePreset] = {
    # YuNet-n at the frame's own size up to 1600x900 and shrunk to that above it: a 1080p frame costs about
    # 0.7x a full-size pass, and its faces lose a sixth of their size (on dev images shrunk alike, C80 under
    # 16 px 0.725 -> 0.64, >= 16 px 0.845 -> 0.83; a 1280x720 budget would save a third more but drop the
    # first to about 0.5).
    "fast": FacePreset(
        passes=(ScalePass("yunet_n", 1.0, max_pixels=1600 * 900),),
        score_threshold=0.58,
        padding=(1.6, 2.0),
    ),
    # Adds a 1.5x pass trusted for faces under 48 px: nearly all of a 2x pass's gain on small faces at a
    # little over half its cost.
    "balanced": FacePreset(
        passes=(ScalePass("yunet_n", 1.0), ScalePass("yunet_n", 1.5, max_height=48)),
        score_threshold=0.54,
        padding=(1.6, 2.0),
    ),
    # A mirrored 1x pass, a 2x YuNet-n pass and a second model (RetinaFace: another architecture, other
    # errors) on small faces.
    "thorough": FacePreset(
        passes=(
            ScalePass("yunet_n", 1.0),
            ScalePass("yunet_n", 1.0, flip=True),
            ScalePass("yunet_n", 2.0, max_height=48),
            ScalePass("retinaface_mnet025", 2.0, max_height=48),
        ),
        score_threshold=0.45,
        padding=(1.6, 2.0),
    ),
}
