"""What a client may ask of a job. Unknown fields are refused, not silently ignored.

Left out, `preset`, `padding` and `threshold` take the worker's defaults: VEIL_DEFAULT_PRESET, then each
target's detector (its calibrated padding and threshold), then the preset. `padding` and `threshold` take one
value for every target or an object per target: `{"face": {"width": 1.3}, "plate": {"height": 1.4}}`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Target = Literal["face", "plate"]
Preset = Literal["fast", "balanced", "thorough"]
TARGETS: tuple[Target, ...] = ("face", "plate")
Threshold = Annotated[float, Field(ge=0.05, le=0.99)]


class SidePadding(BaseModel):
    """Scales of a detected box's width and height before masking; a side left out keeps its default."""

    model_config = ConfigDict(extra="forbid")

    width: float | None = Field(None, ge=1.0, le=3.0)
    height: float | None = Field(None, ge=1.0, le=3.0)


class Padding(SidePadding):
    """`width`/`height` apply to every target; `face`/`plate` override them for one target. One model rather
    than a union, so a refused field is reported at its own path (padding.depth), not under a union member."""

    face: SidePadding | None = None
    plate: SidePadding | None = None


class TargetThresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    face: Threshold | None = None
    plate: Threshold | None = None


def _default_targets() -> list[Target]:
    return list(TARGETS)


class JobOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    targets: list[Target] = Field(default_factory=_default_targets, min_length=1)
    preset: Preset | None = Field(None, description="Detection preset; default: the service's (VEIL_DEFAULT_PRESET).")
    mask: Literal["blur", "pixelate", "solid"] = "blur"
    padding: Padding | None = Field(None, description="Box scales, for every target or per target.")
    threshold: Threshold | TargetThresholds | None = Field(
        None, description="Detector score threshold, for every target or per target."
    )
    format: Literal["same", "png", "jpeg", "webp"] = "same"

    def padding_for(self, target: Target) -> tuple[float | None, float | None]:
        """(width, height) asked for `target`; None where the job left the default."""
        if self.padding is None:
            return None, None
        own: SidePadding | None = getattr(self.padding, target)
        width = own.width if own is not None and own.width is not None else self.padding.width
        height = own.height if own is not None and own.height is not None else self.padding.height
        return width, height

    def threshold_for(self, target: Target) -> float | None:
        if isinstance(self.threshold, TargetThresholds):
            value: float | None = getattr(self.threshold, target)
            return value
        return self.threshold
