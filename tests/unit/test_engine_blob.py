"""planar_blob: the network input every detector builds, against the plain numpy HWC -> CHW reference."""

from __future__ import annotations

import numpy as np
import pytest

from worker.engine.blob import planar_blob


def reference(image: np.ndarray, height: int, width: int, scale: float, shift: np.ndarray, rgb: bool) -> np.ndarray:
    x = image[..., ::-1] if rgb else image
    out = np.zeros((1, image.shape[2], height, width), np.float32)
    h, w = image.shape[:2]
    out[0, :, :h, :w] = (x.astype(np.float32) * np.float32(scale) + shift).transpose(2, 0, 1)
    return out


@pytest.mark.parametrize("rgb", [False, True])
@pytest.mark.parametrize(("scale", "shift"), [(1.0, 0.0), (1 / 127.5, -1.0), (1.0, (-104.0, -117.0, -127.0))])
def test_channels_scale_shift_and_zero_padding_match_the_reference(
    rgb: bool, scale: float, shift: float | tuple[float, ...]
) -> None:
    image = np.random.default_rng(3).integers(0, 256, (37, 50, 3), dtype=np.uint8)
    got = planar_blob(image, multiple=32, scale=scale, shift=shift, rgb=rgb)
    want = reference(image, 64, 64, scale, np.asarray(shift, np.float32), rgb)
    assert got.shape == (1, 3, 64, 64) and got.dtype == np.float32 and got.flags["C_CONTIGUOUS"]
    assert np.array_equal(got, want)
    assert not got[0, :, 37:, :].any() and not got[0, :, :, 50:].any()


def test_without_a_multiple_the_blob_is_the_image_size_and_channels_keep_their_order() -> None:
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 2] = 9  # red in BGR
    got = planar_blob(image)
    assert got.shape == (1, 3, 4, 6)
    assert (got[0, 2] == 9).all() and not got[0, :2].any()
    assert (planar_blob(image, rgb=True)[0, 0] == 9).all()


def test_a_grey_image_is_one_channel() -> None:
    assert planar_blob(np.full((5, 5), 7, np.uint8), multiple=8).shape == (1, 1, 8, 8)


def test_a_shift_per_channel_must_match_the_channels() -> None:
    with pytest.raises(ValueError, match="2 shifts for 3 channels"):
        planar_blob(np.zeros((40, 40, 3), np.uint8), shift=(1.0, 2.0))


def test_sides_round_up_to_the_multiple_and_only_the_bottom_and_right_are_padded() -> None:
    assert [planar_blob(np.zeros((s, 1), np.uint8), multiple=32).shape[2] for s in (1, 32, 33, 720)] == [
        32, 32, 64, 736]
    blob = planar_blob(np.ones((33, 64, 3), np.uint8), multiple=32)
    assert blob.shape == (1, 3, 64, 64)
    assert blob[0, :, :33].all() and not blob[0, :, 33:].any()
