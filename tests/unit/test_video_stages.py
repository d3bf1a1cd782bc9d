"""The frames between decoder and encoder: BGR frames reach the encoder as PyAV's copying constructor would
give them, without the copies; yuv420p frames stay in their own planes from decoder to encoder."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest

from worker.engine.video.stages import MAX_QUEUE_DEPTH, MIN_QUEUE_DEPTH, Frame, from_decoder, queue_depth, video_frame


@pytest.mark.parametrize("size", [(64, 48), (33, 17)])  # odd sizes are encoded 4:4:4
def test_bgr_frames_convert_like_from_ndarray(size: tuple[int, int]) -> None:
    w, h = size
    bgr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    fmt = "yuv444p" if w % 2 or h % 2 else "yuv420p"
    want = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format=fmt).to_ndarray()
    got = video_frame(Frame(0, 0, bgr)).reformat(format=fmt).to_ndarray()
    assert np.array_equal(got, want)


def test_a_bgr_frame_may_be_a_strided_view() -> None:
    # A rotated or cropped view has no contiguous rows; it is copied once rather than refused.
    bgr = np.random.default_rng(1).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    view = bgr[:, ::-1]
    frame = video_frame(Frame(0, 0, view))
    assert (frame.width, frame.height) == (64, 40)
    assert np.array_equal(frame.to_ndarray(format="bgr24"), view)


def decoded(width: int, height: int, fmt: str = "yuv420p", seed: int = 2) -> av.VideoFrame:
    bgr = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format=fmt)


def test_a_yuv420p_frame_reaches_the_encoder_in_its_own_planes() -> None:
    source = decoded(64, 48)
    frame = from_decoder(source, 3, 300)
    assert frame.i420 and frame.shape == (48, 64) and (frame.index, frame.pts) == (3, 300)
    out = video_frame(frame)
    assert out.format.name == "yuv420p" and (out.width, out.height) == (64, 48)
    assert np.array_equal(out.to_ndarray(), source.to_ndarray())  # not a value changed


@pytest.mark.parametrize("case", ["odd size", "4:4:4", "full range"])
def test_other_frames_take_the_bgr_path(case: str) -> None:
    source = {"odd size": lambda: decoded(33, 17), "4:4:4": lambda: decoded(64, 48, "yuv444p"),
              "full range": lambda: decoded(64, 48)}[case]()
    if case == "full range":
        source.color_range = 2
    frame = from_decoder(source, 0, 0)
    assert not frame.i420 and frame.image.shape == (source.height, source.width, 3)


def test_bgr_of_an_i420_frame_and_of_a_crop_agree() -> None:
    frame = from_decoder(decoded(96, 64), 0, 0)
    whole = frame.bgr()
    assert whole.shape == (64, 96, 3)
    assert np.array_equal(whole, cv2.cvtColor(frame.image, cv2.COLOR_YUV2BGR_I420))
    # A crop on even coordinates converts to exactly that part of the whole frame.
    assert np.array_equal(frame.bgr_crop(32, 16, 96, 48), whole[16:48, 32:96])


@pytest.mark.parametrize(("size", "depth"), [((160, 120), MAX_QUEUE_DEPTH), ((1920, 1080), 8), ((3840, 2160), 4),
                                             ((7680, 4320), MIN_QUEUE_DEPTH)])
def test_queues_hold_fewer_large_frames(size: tuple[int, int], depth: int) -> None:
    # A budget of memory per queue, not of frames: 8 slots of 8K BGR frames would hold 800 MB each.
    assert queue_depth(*size) == depth
