"""Read a video's header, check it against the limits, and prove its first frame decodes."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.container
import av.video.stream

from worker.engine.errors import (
    CORRUPT_VIDEO,
    EMPTY_VIDEO,
    UNSUPPORTED_MEDIA_TYPE,
    VIDEO_TOO_LARGE,
    VIDEO_TOO_LONG,
    EngineError,
)
from worker.engine.video.formats import sniff_video_format


@dataclass(frozen=True)
class VideoLimits:
    max_duration_s: float
    max_width: int
    max_height: int
    max_frames: int | None = None


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int  # from the header, else estimated as duration * fps
    duration_s: float
    codec: str
    rotation: int  # display rotation, degrees counter-clockwise (0, 90, 180, 270), as PyAV's frame.rotation
    has_audio: bool
    stream_count: int


def open_input(path: Path) -> tuple[str, av.container.InputContainer]:
    """(sniffed format, opened container); EngineError unsupported_media_type or corrupt_video."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as exc:
        raise EngineError(CORRUPT_VIDEO, "the video could not be read") from exc
    fmt = sniff_video_format(head)
    if fmt is None:
        raise EngineError(UNSUPPORTED_MEDIA_TYPE, "not an MP4, MOV, Matroska/WebM or AVI file")
    try:
        return fmt, av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise EngineError(CORRUPT_VIDEO, "the video container could not be opened") from exc


def video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    # Cover art in MP4/MKV is a one-picture "video" stream; it is not the footage.
    streams = [s for s in container.streams.video if not s.disposition & av.stream.Disposition.attached_pic]
    if not streams:
        raise EngineError(UNSUPPORTED_MEDIA_TYPE, "the file has no video stream")
    return streams[0]


def frame_rate(stream: av.video.stream.VideoStream) -> Fraction | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate and rate > 0:
            return Fraction(rate)
    return None


def duration_s(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def normalise_rotation(degrees: float) -> int:
    """Nearest quarter turn, 0..270; odd angles (rare, never from cameras) round to the closest one."""
    return int(round(degrees / 90) % 4) * 90


def probe_video(path: Path, limits: VideoLimits) -> VideoInfo:
    """Header facts, checked against `limits` before any frame is decoded; then the first frame is decoded to
    prove the stream is readable and to read its display rotation."""
    _, container = open_input(path)
    with container:
        stream = video_stream(container)
        ctx = stream.codec_context
        width, height = ctx.width, ctx.height
        if width <= 0 or height <= 0:
            raise EngineError(CORRUPT_VIDEO, "the video stream declares no frame size")
        if width > limits.max_width or height > limits.max_height:
            raise EngineError(
                VIDEO_TOO_LARGE, f"{width}x{height} is over the limit of {limits.max_width}x{limits.max_height}"
            )
        rate = frame_rate(stream)
        fps = float(rate) if rate else 0.0
        duration = duration_s(container, stream)
        if not math.isfinite(duration) or duration > limits.max_duration_s:
            raise EngineError(VIDEO_TOO_LONG, f"the video is over the limit of {limits.max_duration_s:g} s")
        frames = stream.frames or (round(duration * fps) if fps else 0)
        if limits.max_frames is not None and frames > limits.max_frames:
            raise EngineError(VIDEO_TOO_LONG, f"the video has over the limit of {limits.max_frames} frames")
        first = first_frame(container, stream)
        return VideoInfo(
            width=width,
            height=height,
            fps=fps,
            frames=frames,
            duration_s=duration,
            codec=ctx.name,
            rotation=normalise_rotation(first.rotation),
            has_audio=bool(container.streams.audio),
            stream_count=len(container.streams),
        )


def first_frame(container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise EngineError(CORRUPT_VIDEO, "the video stream could not be decoded") from exc
    raise EngineError(EMPTY_VIDEO, "the video stream has no frames")
