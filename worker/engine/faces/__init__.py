"""Face detection presets: multi-scale, multi-model ensembles behind the Detector protocol."""

from __future__ import annotations

from worker.engine.detector import SessionLoader
from worker.engine.faces.centerface import CenterFaceRunner
from worker.engine.faces.ensemble import FaceEnsemble, Runner, ScalePass
from worker.engine.faces.presets import FACE_PRESETS, FacePreset
from worker.engine.faces.retinaface import RetinaFaceRunner
from worker.engine.faces.yunet import YuNetRunner

RUNNERS: dict[str, type[YuNetRunner] | type[RetinaFaceRunner] | type[CenterFaceRunner]] = {
    "yunet_n": YuNetRunner,
    "yunet_s": YuNetRunner,
    "retinaface_mnet025": RetinaFaceRunner,
    # thorough's second model: alone about as good as YuNet-n at several times the cost, but it misses other faces.
    "centerface": CenterFaceRunner,
}


def build_face_detector(preset: str, load_session: SessionLoader) -> FaceEnsemble:
    """The face detector of a preset ("fast", "balanced", "thorough"), its models loaded by `load_session`."""
    try:
        spec = FACE_PRESETS[preset]
    except KeyError:
        raise ValueError(f"unknown face preset {preset!r}; expected one of {sorted(FACE_PRESETS)}") from None
    return build_ensemble(preset, spec, load_session)


def build_ensemble(name: str, spec: FacePreset, load_session: SessionLoader) -> FaceEnsemble:
    runners: dict[str, Runner] = {}
    for model in dict.fromkeys(p.model for p in spec.passes):
        if model not in RUNNERS:
            raise ValueError(f"no face decoder for model {model!r}")
        runners[model] = RUNNERS[model](load_session(model))
    return FaceEnsemble(
        spec.passes, runners, preset=name, score_threshold=spec.score_threshold, padding=spec.padding,
        fusion_iou=spec.fusion_iou, small_face_margin=spec.small_face_margin,
    )


__all__ = ["FACE_PRESETS", "FaceEnsemble", "FacePreset", "ScalePass", "build_ensemble", "build_face_detector"]
