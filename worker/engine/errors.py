"""The one exception the engine raises for bad inputs or bad model files."""

from __future__ import annotations

from typing import Final

UNSUPPORTED_MEDIA_TYPE: Final = "unsupported_media_type"
CORRUPT_IMAGE: Final = "corrupt_image"
IMAGE_TOO_LARGE: Final = "image_too_large"
MODEL_INTEGRITY: Final = "model_integrity"
MODEL_MISSING: Final = "model_missing"
# A model whose licence is not in VEIL_ALLOWED_MODEL_LICENCES.
MODEL_LICENCE: Final = "model_licence_refused"
TARGET_UNAVAILABLE: Final = "target_unavailable"
CORRUPT_VIDEO: Final = "corrupt_video"
VIDEO_TOO_LONG: Final = "video_too_long"
VIDEO_TOO_LARGE: Final = "video_too_large"
EMPTY_VIDEO: Final = "empty_video"
# An audio, data or subtitle stream the output container cannot carry unchanged; the job may drop them.
STREAM_NOT_COPYABLE: Final = "stream_not_copyable"


class EngineError(Exception):
    """A failure with a stable machine `code` and a human `message`.

    The message may reach API clients and logs, so it must never contain file names, paths or anything
    derived from the image content: callers add their own (job-scoped) context.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ModelUnusable(EngineError):
    """A model this worker cannot use: its file altered (`model_integrity`) or its licence outside
    VEIL_ALLOWED_MODEL_LICENCES (`model_licence_refused`), or missing (ModelMissing). A fault of the worker's
    installation or configuration, not of the job, so running the job again on this worker cannot help."""

    def __init__(self, model: str, code: str, message: str) -> None:
        super().__init__(code, message)
        self.model = model  # a manifest name, never a path


class ModelMissing(ModelUnusable):
    """A model the manifest lists (or a name it lacks) with no file where this worker looks."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(model, MODEL_MISSING, message)
