"""Reason codes a job can fail with. Stable strings: clients and dashboards match on them."""

from enum import StrEnum


class ReasonCode(StrEnum):
    unsupported_media_type = "unsupported_media_type"
    corrupt_image = "corrupt_image"
    image_too_large = "image_too_large"
    corrupt_video = "corrupt_video"
    video_too_long = "video_too_long"
    video_too_large = "video_too_large"
    empty_video = "empty_video"
    input_missing = "input_missing"
    model_integrity = "model_integrity"
    model_missing = "model_missing"
    model_licence_refused = "model_licence_refused"
    target_unavailable = "target_unavailable"  # a target this build has no detector for
    attempts_exhausted = "attempts_exhausted"
    internal_error = "internal_error"


# Errors that the same input would raise again: retrying them only burns attempts.
DETERMINISTIC: frozenset[str] = frozenset(
    {
        ReasonCode.unsupported_media_type,
        ReasonCode.corrupt_image,
        ReasonCode.image_too_large,
        ReasonCode.corrupt_video,
        ReasonCode.video_too_long,
        ReasonCode.video_too_large,
        ReasonCode.empty_video,
        ReasonCode.input_missing,
        ReasonCode.target_unavailable,
    }
)
