"""Small video clips for the video tests, written with PyAV into a test's tmp_path; nothing is downloaded."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

AUDIO_RATE = 16_000


def gradient(index: int, width: int, height: int) -> np.ndarray:
    """A moving RGB test pattern: every frame differs and none holds a face."""
    ys, xs = np.mgrid[0:height, 0:width]
    r = (xs * 255 // max(1, width - 1) + index * 7) % 256
    g = (ys * 255 // max(1, height - 1)) % 256
    b = np.full_like(xs, (index * 20) % 256)
    return np.stack([r, g, b], axis=-1).astype(np.uint8)


def make_clip(
    path: Path,
    *,
    fmt: str = "mp4",
    codec: str = "libx264",
    width: int = 160,
    height: int = 120,
    frames: int = 12,
    rate: int = 10,
    audio: bool = False,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    rotation: int = 0,
    draw: Callable[[int, int, int], np.ndarray] = gradient,
    pix_fmt: str = "yuv420p",
) -> Path:
    """Write a clip; `pts` (in `time_base`) makes its frame timing irregular, `draw(i, w, h)` gives RGB."""
    with av.open(str(path), mode="w", format=fmt) as out:
        video = out.add_stream(codec, rate=rate)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if time_base is not None:
            video.codec_context.time_base = time_base
            video.time_base = time_base
        if rotation:
            video.set_display_rotation(rotation)
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(draw(i, width, height), format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], time_base
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            total = int(AUDIO_RATE * frames / rate)
            t = np.arange(total) / AUDIO_RATE
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for start in range(0, total, 1024):
                chunk = tone[start : start + 1024].reshape(1, -1)
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                aframe.sample_rate, aframe.pts = AUDIO_RATE, start
                out.mux(sound.encode(aframe))
            out.mux(sound.encode(None))
    return path


def frame_times(path: Path) -> list[float]:
    """Presentation time of every video frame, in seconds."""
    with av.open(str(path)) as inp:
        return [float(f.pts * f.time_base) for f in inp.decode(video=0)]


def read_frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as inp:
        return [f.to_ndarray(format="rgb24") for f in inp.decode(video=0)]


def packet_bytes(path: Path, kind: str = "audio") -> list[tuple[bytes, int | None]]:
    """(payload, pts) of every packet of the first stream of `kind`."""
    with av.open(str(path)) as inp:
        stream = next(s for s in inp.streams if s.type == kind)
        return [
            (bytes(p), None if p.pts is None else round(float(p.pts * p.time_base) * 1_000_000))
            for p in inp.demux(stream)
            if p.size
        ]
