"""shared/job_options.py: what a client may ask of a job."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.job_options import JobOptions, Padding, SidePadding, TargetThresholds


def test_defaults() -> None:
    options = JobOptions()
    assert options.targets == ["face", "plate"]
    assert options.preset is None and options.padding is None and options.threshold is None
    assert options.mask == "blur"
    assert options.format == "same"
    assert options.model_dump(mode="json") == {
        "targets": ["face", "plate"], "preset": None, "mask": "blur", "padding": None,
        "threshold": None, "format": "same",
    }
    # Left out: the worker's defaults (the detector's calibrated padding and threshold, then the preset's).
    assert options.padding_for("plate") == (None, None) and options.threshold_for("face") is None


def test_defaults_are_not_shared_between_instances() -> None:
    a, b = JobOptions(), JobOptions()
    a.targets.remove("plate")
    assert b.targets == ["face", "plate"]


def test_valid_options_accepted() -> None:
    options = JobOptions.model_validate(
        {"mask": "pixelate", "padding": {"width": 1.0, "height": 3.0}, "threshold": 0.5, "format": "webp"}
    )
    assert options.mask == "pixelate"
    assert options.padding.width == 1.0
    assert options.padding.height == 3.0
    assert options.threshold == 0.5
    assert options.format == "webp"


def test_partial_padding_keeps_other_default() -> None:
    options = JobOptions.model_validate({"padding": {"width": 2}})
    assert options.padding == Padding(width=2.0, height=None)
    assert options.padding_for("face") == options.padding_for("plate") == (2.0, None)


def test_padding_and_threshold_per_target() -> None:
    options = JobOptions.model_validate(
        {"padding": {"plate": {"height": 1.4}}, "threshold": {"face": 0.3}, "preset": "thorough"}
    )
    assert options.padding == Padding(plate=SidePadding(height=1.4)) and isinstance(options.threshold, TargetThresholds)
    assert options.padding_for("plate") == (None, 1.4) and options.padding_for("face") == (None, None)
    assert options.threshold_for("face") == 0.3 and options.threshold_for("plate") is None
    assert options.preset == "thorough"
    # A target's own side wins; the side it leaves out falls back to the value for every target.
    mixed = JobOptions.model_validate({"padding": {"width": 1.3, "height": 1.6, "plate": {"height": 1.4}}})
    assert mixed.padding_for("plate") == (1.3, 1.4) and mixed.padding_for("face") == (1.3, 1.6)
    assert JobOptions.model_validate_json(options.model_dump_json()) == options


@pytest.mark.parametrize(
    "payload",
    [
        {"unknown": 1},
        {"Mask": "blur"},
        {"padding": {"width": 1.2, "depth": 2}},
        {"padding": {"extra": None}},
        {"padding": {"car": {"width": 1.2}}},
        {"padding": {"face": {"depth": 1.2}}},
    ],
)
def test_unknown_fields_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError) as info:
        JobOptions.model_validate(payload)
    assert {e["type"] for e in info.value.errors()} == {"extra_forbidden"}


@pytest.mark.parametrize(
    "payload",
    [
        {"padding": {"width": 0.99}},
        {"padding": {"width": 3.01}},
        {"padding": {"height": 0.5}},
        {"padding": {"height": 4}},
        {"threshold": 0.04},
        {"threshold": 1.0},
        {"threshold": -0.5},
        {"threshold": {"face": 1.0}},
        {"threshold": {"car": 0.5}},
        {"padding": {"plate": {"width": 0.9}}},
        {"preset": "fastest"},
    ],
)
def test_out_of_range_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate(payload)


@pytest.mark.parametrize("threshold", [0.05, 0.99])
def test_threshold_bounds_inclusive(threshold: float) -> None:
    assert JobOptions(threshold=threshold).threshold == threshold


@pytest.mark.parametrize("targets", [[], ["car"], ["face", "person"], ["Face"], "face"])
def test_targets_must_be_a_non_empty_list_of_known_targets(targets: Any) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"targets": targets})


@pytest.mark.parametrize("targets", [["face"], ["plate"], ["plate", "face"]])
def test_each_target_may_be_asked_for_alone(targets: list[str]) -> None:
    assert JobOptions.model_validate({"targets": targets}).targets == targets


@pytest.mark.parametrize(("field", "value"), [("mask", "blackout"), ("format", "gif"), ("format", "jpg")])
def test_enumerated_fields_refuse_other_values(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate({field: value})


def test_json_round_trip() -> None:
    options = JobOptions(mask="solid", threshold=0.3, format="png")
    assert JobOptions.model_validate_json(options.model_dump_json()) == options
