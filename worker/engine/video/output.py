"""The output side: an H.264 stream matching the input's geometry and clock, plus remuxed copies of the rest."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import av.container
import av.stream
import av.video.stream

from worker.engine.errors import STREAM_NOT_COPYABLE, EngineError
from worker.engine.video.formats import OUTPUT_CONTAINERS

if TYPE_CHECKING:
    from shared.settings import Settings

OUTPUT_CODEC = "h264"
# libx264 4:2:0 needs even width and height. Rather than resize or pad (the output must keep the input's exact
# resolution), odd-sized input is encoded 4:4:4, which x264 accepts at any size (High 4:4:4 profile).
PIX_FMT_EVEN = "yuv420p"
PIX_FMT_ODD = "yuv444p"
COPY_TYPES = ("audio", "subtitle", "data")


def encoder_fields(settings: Settings) -> dict[str, Any]:
    """The service's encoder settings as the keywords of VideoOptions and add_h264_stream (crf, preset and
    encoder_params), so that jobs, the CLI and the benchmarks' I/O baseline read them in one place."""
    return {"crf": settings.video_crf, "preset": settings.video_preset,
            "encoder_params": settings.video_encoder_params}


def add_h264_stream(
    container: av.container.OutputContainer, rate: Fraction, *, crf: int, preset: str, encoder_params: str = ""
) -> av.video.stream.VideoStream:
    """A libx264 stream at this rate factor and preset, `encoder_params` ("key=value:...") applied over the
    preset, encoding on frame threads."""
    options = {"crf": str(crf), "preset": preset}
    if encoder_params:
        options["x264-params"] = encoder_params
    out = container.add_stream("libx264", rate=rate, options=options)
    # PyAV opens encoders with slice threads, which x264 runs as one frame cut in slices: a sync per frame and a
    # little worse compression. Frame threads encode several frames at once. On the 960x540 clip, encoding
    # alone: 1.60 s against 1.88 s on two cores, 4 % less CPU and a 0.9 % smaller file.
    out.codec_context.thread_type = "FRAME"
    return out


class VideoOutput:
    """Owns the output container. Create it on one thread, then call only `encode`, `mux_copy` and `finish`
    from the one thread that writes."""

    def __init__(
        self,
        dst: Path,
        in_format: str,
        src_stream: av.video.stream.VideoStream,
        copy_streams: list[av.stream.Stream],
        *,
        rate: Fraction | None,
        rotation: int,
        crf: int,
        preset: str,
        encoder_params: str = "",
    ) -> None:
        muxer, self.container_name = OUTPUT_CONTAINERS[in_format]
        options = {"movflags": "+faststart"} if muxer in ("mp4", "mov") else {}
        self.container: av.container.OutputContainer = av.open(str(dst), mode="w", format=muxer, options=options)
        try:
            self.stream = self._add_video(src_stream, rate, rotation, crf, preset, encoder_params)
            self.copies: dict[int, av.stream.Stream] = {}
            self.copied_types: list[str] = []
            for s in copy_streams:
                try:
                    self.copies[s.index] = self.container.add_stream_from_template(s)
                except (av.FFmpegError, ValueError) as exc:
                    raise EngineError(
                        STREAM_NOT_COPYABLE, f"a {s.type} stream cannot be copied into {self.container_name}"
                    ) from exc
                self.copied_types.append(s.type)
            try:
                self.container.start_encoding()
            except (av.FFmpegError, ValueError) as exc:
                if copy_streams:
                    raise EngineError(
                        STREAM_NOT_COPYABLE, f"the other streams cannot be copied into {self.container_name}"
                    ) from exc
                raise
        except BaseException:
            self.container.close()
            raise

    def _add_video(
        self, src: av.video.stream.VideoStream, rate: Fraction | None, rotation: int, crf: int, preset: str,
        encoder_params: str,
    ) -> av.video.stream.VideoStream:
        ctx = src.codec_context
        out = add_h264_stream(self.container, rate or Fraction(30), crf=crf, preset=preset,
                              encoder_params=encoder_params)
        out.width, out.height = ctx.width, ctx.height
        out.pix_fmt = PIX_FMT_ODD if ctx.width % 2 or ctx.height % 2 else PIX_FMT_EVEN
        # The input's own clock: every frame keeps its pts, so variable frame rate and gaps survive.
        if src.time_base:
            out.codec_context.time_base = src.time_base
            out.time_base = src.time_base
        sar = ctx.sample_aspect_ratio
        if sar:
            out.codec_context.sample_aspect_ratio = sar
        # Frames go BGR -> YUV with the same matrix they came out with, so the YUV values (and with them the
        # input's colour tags) carry over; the range is always limited, x264's default.
        for attr in ("color_primaries", "color_trc", "colorspace"):
            value = getattr(ctx, attr, None)
            if value:
                setattr(out.codec_context, attr, value)
        if rotation:
            # Pixels stay as stored; the display matrix tells players to turn them, as it did for the input.
            out.set_display_rotation(rotation)
        if src.language:
            out.metadata["language"] = src.language
        return out

    def encode(self, frame: av.VideoFrame | None) -> None:
        self.container.mux(self.stream.encode(frame))

    def mux_copy(self, packet: av.Packet) -> None:
        packet.stream = self.copies[packet.stream.index]
        self.container.mux(packet)

    def finish(self) -> None:
        self.encode(None)
        self.container.close()

    def close(self) -> None:
        self.container.close()
