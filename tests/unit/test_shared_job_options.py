"""shared/job_options.py: what a client may ask of an image job."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from shared.job_options import JobOptions, Padding


def test_defaults() -> None:
    options = JobOptions()
    assert options.targets == ["face"]
    assert options.mask == "blur"
    assert options.padding == Padding(width=1.2, height=1.5)
    assert options.threshold is None
    assert options.format == "same"
    assert options.model_dump(mode="json") == {
        "targets": ["face"], "mask": "blur", "padding": {"width": 1.2, "height": 1.5},
        "threshold": None, "format": "same",
    }


def test_defaults_are_not_shared_between_instances() -> None:
    a, b = JobOptions(), JobOptions()
    a.targets.append("face")
    assert b.targets == ["face"]


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
    assert JobOptions.model_validate({"padding": {"width": 2}}).padding == Padding(width=2.0, height=1.5)


@pytest.mark.parametrize(
    "payload",
    [
        {"unknown": 1},
        {"Mask": "blur"},
        {"padding": {"width": 1.2, "depth": 2}},
        {"padding": {"extra": None}},
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
    ],
)
def test_out_of_range_refused(payload: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate(payload)


@pytest.mark.parametrize("threshold", [0.05, 0.99])
def test_threshold_bounds_inclusive(threshold: float) -> None:
    assert JobOptions(threshold=threshold).threshold == threshold


@pytest.mark.parametrize("targets", [[], ["plate"], ["face", "plate"], ["Face"], "face"])
def test_targets_must_be_non_empty_faces(targets: Any) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate({"targets": targets})


@pytest.mark.parametrize(("field", "value"), [("mask", "blackout"), ("format", "gif"), ("format", "jpg")])
def test_enumerated_fields_refuse_other_values(field: str, value: str) -> None:
    with pytest.raises(ValidationError):
        JobOptions.model_validate({field: value})


def test_json_round_trip() -> None:
    options = JobOptions(mask="solid", threshold=0.3, format="png")
    assert JobOptions.model_validate_json(options.model_dump_json()) == options
