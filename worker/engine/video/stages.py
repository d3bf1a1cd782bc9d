"""The decode and encode threads around the masking loop, joined by bounded queues, plus rotation helpers."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass
from typing import Any

import av
import av.container
import av.stream
import av.video.stream
import cv2
import numpy as np

from worker.engine.errors import CORRUPT_VIDEO, VIDEO_TOO_LONG, EngineError
from worker.engine.masking import even_outward, i420_planes
from worker.engine.video.output import VideoOutput

# Frames per queue, from a memory budget per queue: 8 at 1080p, 4 at 4K, 2 at 8K (counted as BGR, the larger
# form). Detection makes the main thread's pace uneven (a detected frame takes 20-40 ms, a tracked one 1 ms);
# on the 960x540 clip with faces on two cores, 8 slots instead of 4 took 7 % off the wall time.
QUEUE_BYTES = 96 << 20
MIN_QUEUE_DEPTH, MAX_QUEUE_DEPTH = 2, 8
POLL_S = 0.1
END: Any = object()


# Decoded frames in this format (with even width and height, as x264's 4:2:0 output needs) stay YUV from decoder
# to encoder; others go through BGR (swscale), as does any frame the detector looks at.
I420_FORMAT = "yuv420p"
FULL_RANGE = 2  # AVCOL_RANGE_JPEG


@dataclass
class Frame:
    index: int
    pts: int
    image: np.ndarray  # BGR (H, W, 3), or I420 ((H * 3/2, W), the yuv420p planes) when `i420`
    i420: bool = False

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) in pixels."""
        h, w = self.image.shape[:2]
        return (h * 2 // 3, w) if self.i420 else (h, w)

    def bgr(self) -> np.ndarray:
        """The whole frame in BGR (converted when I420: BT.601, which only the detector sees)."""
        return cv2.cvtColor(self.image, cv2.COLOR_YUV2BGR_I420) if self.i420 else self.image

    def bgr_crop(self, x1: int, y1: int, x2: int, y2: int) -> np.ndarray:
        """Part of the frame in BGR, converting only that part."""
        if not self.i420:
            return np.ascontiguousarray(self.image[y1:y2, x1:x2])
        h, w = self.shape
        planes = i420_planes(self.image, h, w)
        ex1, ey1, ex2, ey2 = even_outward(x1, y1, x2, y2)
        parts = [planes[0][ey1:ey2, ex1:ex2], planes[1][ey1 // 2:ey2 // 2, ex1 // 2:ex2 // 2],
                 planes[2][ey1 // 2:ey2 // 2, ex1 // 2:ex2 // 2]]
        crop = np.concatenate([p.reshape(-1) for p in parts]).reshape((ey2 - ey1) * 3 // 2, ex2 - ex1)
        bgr = cv2.cvtColor(crop, cv2.COLOR_YUV2BGR_I420)
        return np.ascontiguousarray(bgr[y1 - ey1:y2 - ey1, x1 - ex1:x2 - ex1])


def queue_depth(width: int, height: int) -> int:
    """Slots per stage queue for frames of this size (QUEUE_BYTES)."""
    frame_bytes = max(1, width * height * 3)
    return max(MIN_QUEUE_DEPTH, min(MAX_QUEUE_DEPTH, QUEUE_BYTES // frame_bytes))


def video_frame(frame: Frame) -> av.VideoFrame:
    """An encoder frame over the image's own memory (from_ndarray copies it twice, through a bytes object); the
    array outlives the synchronous encode."""
    return av.VideoFrame.from_numpy_buffer(np.ascontiguousarray(frame.image),
                                           format=I420_FORMAT if frame.i420 else "bgr24")


def from_decoder(frame: av.VideoFrame, index: int, pts: int) -> Frame:
    # Full-range ("JPEG") YUV would need the output tagged so; such input takes the BGR path instead.
    if (frame.format.name == I420_FORMAT and frame.width % 2 == 0 and frame.height % 2 == 0
            and frame.color_range != FULL_RANGE):
        return Frame(index, pts, frame.to_ndarray(), i420=True)
    return Frame(index, pts, frame.to_ndarray(format="bgr24"))


def rotate_for_display(bgr: np.ndarray, rotation: int) -> np.ndarray:
    """The frame as a player shows it: `rotation` degrees counter-clockwise (np.rot90 turns that way)."""
    k = (rotation // 90) % 4
    return np.rot90(bgr, k) if k else bgr


def unrotate_boxes(boxes: np.ndarray, rotation: int, width: int, height: int) -> np.ndarray:
    """xyxy boxes found on `rotate_for_display(frame)` mapped back onto the stored `width` x `height` frame."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x1, y1, x2, y2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    k = (rotation // 90) % 4
    if k == 1:
        out = [width - y2, x1, width - y1, x2]
    elif k == 2:
        out = [width - x2, height - y2, width - x1, height - y1]
    elif k == 3:
        out = [y1, height - x2, y2, height - x1]
    else:
        return b
    return np.stack(out, axis=1)


class Stages:
    """Runs the reader (demux, decode, to BGR) and writer (encode, mux) threads. The caller's thread takes
    items with `get_in` and hands frames and packets on with `put_out`, in order, then calls `finish`."""

    def __init__(
        self,
        inp: av.container.InputContainer,
        vstream: av.video.stream.VideoStream,
        copy_streams: list[av.stream.Stream],
        out: VideoOutput,
        *,
        max_frames: int | None,
        max_duration_s: float,
    ) -> None:
        self._inp, self._vstream, self._out = inp, vstream, out
        self._copy = {s.index for s in copy_streams}
        self._streams = [vstream, *copy_streams]
        self._max_frames, self._max_duration_s = max_frames, max_duration_s
        ctx = vstream.codec_context
        depth = queue_depth(ctx.width, ctx.height)
        self._q_in: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._q_out: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self.timings = {"decode": 0.0, "encode": 0.0}
        self._threads = [
            threading.Thread(target=self._guard, args=(self._read,), name="veil-video-read", daemon=True),
            threading.Thread(target=self._guard, args=(self._write,), name="veil-video-write", daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def get_in(self) -> Any:
        while True:
            self._check()
            try:
                return self._q_in.get(timeout=POLL_S)
            except queue.Empty:
                continue

    def put_out(self, item: Any) -> None:
        self._put(self._q_out, item)

    def finish(self) -> None:
        self.put_out(END)
        for thread in self._threads:
            while thread.is_alive():
                thread.join(POLL_S)
                self._check()
        self._check()
        self.timings = {k: round(v * 1000, 3) for k, v in self.timings.items()}

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _check(self) -> None:
        if self._errors:
            self._stop.set()
            raise self._errors[0]

    def _put(self, q: queue.Queue[Any], item: Any) -> None:
        while True:
            self._check()
            if self._stop.is_set():
                raise _Stopped
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue

    def _guard(self, target: Any) -> None:
        try:
            target()
        except _Stopped:
            pass
        except BaseException as exc:  # handed to the caller's thread, which re-raises it
            self._errors.append(exc)
            self._stop.set()

    def _read(self) -> None:
        tb = self._vstream.time_base
        rate = self._vstream.average_rate or self._vstream.guessed_rate
        step = max(1, round(1 / (rate * tb))) if rate and tb else 1
        index, last_pts = 0, None
        t0 = time.perf_counter()
        try:
            for packet in self._inp.demux(self._streams):
                if packet.stream.index in self._copy:
                    if packet.size == 0 or (packet.pts is None and packet.dts is None):
                        continue  # demuxer flush marker, or a packet no muxer could place
                    self.timings["decode"] += time.perf_counter() - t0
                    self._put(self._q_in, packet)
                    t0 = time.perf_counter()
                    continue
                for frame in self._vstream.decode(packet):
                    # Presentation order from the decoder; a missing or repeated pts gets the next free tick
                    # so the encoder (which needs increasing pts) accepts every frame.
                    pts = frame.pts
                    if pts is None:
                        pts = 0 if last_pts is None else last_pts + step
                    elif last_pts is not None and pts <= last_pts:
                        pts = last_pts + 1
                    last_pts = pts
                    if self._max_frames is not None and index >= self._max_frames:
                        raise EngineError(VIDEO_TOO_LONG, f"the video has over {self._max_frames} frames")
                    if tb and float(pts * tb) > self._max_duration_s + 1:
                        raise EngineError(VIDEO_TOO_LONG, f"the video runs over {self._max_duration_s:g} s")
                    decoded = from_decoder(frame, index, pts)
                    self.timings["decode"] += time.perf_counter() - t0
                    self._put(self._q_in, decoded)
                    t0 = time.perf_counter()
                    index += 1
        except (av.FFmpegError, OSError, ValueError) as exc:
            raise EngineError(CORRUPT_VIDEO, "the video stream could not be decoded") from exc
        declared = self._vstream.frames
        if declared and declared - index > max(2, declared // 20):  # muxers count a frame or two loosely
            raise EngineError(CORRUPT_VIDEO, f"the video ends after {index} of its {declared} frames (truncated)")
        self._put(self._q_in, END)

    def _write(self) -> None:
        tb = self._vstream.time_base
        while True:
            try:
                item = self._q_out.get(timeout=POLL_S)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            t0 = time.perf_counter()
            try:
                if item is END:
                    self._out.finish()
                    self.timings["encode"] += time.perf_counter() - t0
                    return
                if isinstance(item, Frame):
                    vf = video_frame(item)
                    vf.pts, vf.time_base = item.pts, tb
                    self._out.encode(vf)
                else:
                    self._out.mux_copy(item)
            except (av.FFmpegError, OSError, ValueError) as exc:
                raise EngineError(CORRUPT_VIDEO, "the video could not be re-encoded") from exc
            self.timings["encode"] += time.perf_counter() - t0


class _Stopped(Exception):
    """Another stage failed or the run was cancelled; this thread just ends."""
