"""The three face presets: which passes run and the operating point, tuned on the WIDER FACE street dev split.

Thresholds are the lowest that keep false masks at or under 2.0 per image on that split (a missed face is a
privacy leak, a false mask only blurs some background). Padding 1.6 x 2.0: boxes matched to a face need only
1.2 x 1.5 to cover it (99 % of them), the rest covers faces the boxes frame badly or miss beside a found
one; each step from 1.2 x 1.5 to 1.8 x 2.2 adds about one point of C80. On the dev split (C80 = share of
counted faces at least 80 % covered by the masks; `benchmarks/faces_presets.py` reproduces this):

    preset    C80 <16 px  C80 >=16 px  false masks/img  C80 >=16 px reaches 0.90 at  ms of one core per 1080p frame
    fast        0.725       0.845         1.92           8.3 false masks/img          53 (0.77x YuNet-n once)
    balanced    0.773       0.861         1.93           4.7                         237 (3.4x)
    thorough    0.789       0.908         1.96           1.7                        1340 (19x)

Only thorough meets issue #3's target (C80 >= 0.90 at 16 px and up and >= 0.75 under, at <= 2 false masks per
image), and it is the default for photos (Settings.default_preset). Its weights, fusion overlap and small-face
margin were chosen on this split too, so expect less on other data: a threshold chosen on a random half of the
split and applied to the other half gave on average the same figures (0.78 / 0.91 / 2.0 over 50 splits), but
half-splits vary widely (10th percentiles 0.72 and 0.89, 90th percentile of false masks 2.7 per image).
"""

from __future__ import annotations

from dataclasses import dataclass

from worker.engine.faces.ensemble import ScalePass


@dataclass(frozen=True)
class FacePreset:
    passes: tuple[ScalePass, ...]
    score_threshold: float
    padding: tuple[float, float]
    fusion_iou: float = 0.5
    small_face_margin: float = 0.0  # extra score fused boxes under 16 px need (ensemble.SMALL_FACE)


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
    # balanced plus a second model, CenterFace (another architecture: it misses other faces), at 1x and, for
    # faces under 48 px, at 2x. A face both models find outranks one only one finds, so the threshold can drop.
    # CenterFace weighs more (1.5 at 1x, 2 at 2x): alone at 1x it covers more faces >= 16 px than YuNet-n at
    # 2 false masks per image, 0.86 against 0.85. Fusion at IoU 0.4 joins the two models' differently framed
    # boxes, and boxes under 16 px need 0.10 more. Without CenterFace (more YuNet-n scales, flips, RetinaFace)
    # C80 >= 16 px stayed under 0.90.
    "thorough": FacePreset(
        passes=(
            ScalePass("yunet_n", 1.0),
            ScalePass("yunet_n", 1.5, max_height=48),
            # Budgeted at 4K: CenterFace's feature maps on a 24 MP photo took 7 GB of memory (the 80 MP
            # photos VEIL_MAX_IMAGE_PIXELS admits would take over 20); YuNet's 1x pass still sees every pixel.
            ScalePass("centerface", 1.0, weight=1.5, max_pixels=3840 * 2160),
            ScalePass("centerface", 2.0, max_height=48, weight=2.0),
        ),
        score_threshold=0.27,
        padding=(1.6, 2.0),
        fusion_iou=0.4,
        small_face_margin=0.10,
    ),
}
