"""The writer's BGR frames: the same pixels to the encoder as PyAV's copying constructor, without the copies."""

from __future__ import annotations

import av
import numpy as np
import pytest

from worker.engine.video.stages import bgr_frame


@pytest.mark.parametrize("size", [(64, 48), (33, 17)])  # odd sizes are encoded 4:4:4
def test_bgr_frame_converts_like_from_ndarray(size: tuple[int, int]) -> None:
    w, h = size
    bgr = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    fmt = "yuv444p" if w % 2 or h % 2 else "yuv420p"
    want = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format=fmt).to_ndarray()
    got = bgr_frame(bgr).reformat(format=fmt).to_ndarray()
    assert np.array_equal(got, want)


def test_bgr_frame_takes_a_strided_view() -> None:
    # A rotated or cropped view has no contiguous rows; it is copied once rather than refused.
    bgr = np.random.default_rng(1).integers(0, 256, (40, 64, 3), dtype=np.uint8)
    view = bgr[:, ::-1]
    frame = bgr_frame(view)
    assert (frame.width, frame.height) == (64, 40)
    assert np.array_equal(frame.to_ndarray(format="bgr24"), view)
