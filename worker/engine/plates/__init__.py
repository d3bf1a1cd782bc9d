"""Licence-plate detection: candidates from Veil's plate network and PP-OCRv6 text proposals, verified and
re-boxed by Veil's own plate verifier."""

from __future__ import annotations

from worker.engine.detector import SessionLoader
from worker.engine.plates.centre_net import CentreNetPlates
from worker.engine.plates.detector import PlateDetector, PlateOperatingPoint
from worker.engine.plates.presets import NETWORK_MODEL, PLATE_PRESETS, TEXT_MODEL, VERIFIER_MODEL
from worker.engine.plates.text_proposals import TextProposer
from worker.engine.plates.verifier import PlateVerifier

__all__ = ["PlateDetector", "PlateOperatingPoint", "build_plate_detector"]


def build_plate_detector(preset: str, load_session: SessionLoader) -> PlateDetector:
    """The plate `Detector` for a preset ("fast", "balanced", "thorough"), its models from `load_session`."""
    try:
        point = PLATE_PRESETS[preset]
    except KeyError:
        raise ValueError(f"preset must be one of {tuple(PLATE_PRESETS)}") from None
    proposer = TextProposer(load_session(TEXT_MODEL)) if point.long_sides else None
    network = CentreNetPlates(load_session(NETWORK_MODEL)) if point.net_long_sides else None
    names = [name for name, used in ((NETWORK_MODEL, network), (TEXT_MODEL, proposer)) if used is not None]
    return PlateDetector(proposer, PlateVerifier(load_session(VERIFIER_MODEL)), point,
                         model_names=(*names, VERIFIER_MODEL), network=network)
