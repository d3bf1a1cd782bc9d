"""Container sniffing and header checks: bad, truncated, oversized and overlong videos fail with a code."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from video_fixtures import make_clip

from worker.engine.errors import EngineError
from worker.engine.video import VideoLimits, probe_video, sniff_video_format

LIMITS = VideoLimits(max_duration_s=60, max_width=1920, max_height=1080)


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  \x00\x00\x02\x00", "mov"),
        (b"\x00\x00\x00\x20ftypM4V \x00\x00\x00\x01", "mp4"),
        (b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01webm", "mkv"),
        (b"RIFF\x10\x00\x00\x00AVI LIST", "avi"),
        (b"RIFF\x10\x00\x00\x00WAVEfmt ", None),
        (b"\x89PNG\r\n\x1a\n", None),
        (b"", None),
    ],
)
def test_sniff_video_format(head: bytes, expected: str | None) -> None:
    assert sniff_video_format(head) == expected


def test_probe_reads_the_header(tmp_path: Path) -> None:
    info = probe_video(make_clip(tmp_path / "a.mp4", frames=12, rate=10, audio=True), LIMITS)
    assert (info.width, info.height, info.frames, info.codec) == (160, 120, 12, "h264")
    assert info.fps == pytest.approx(10) and info.duration_s == pytest.approx(1.2, abs=0.1)
    assert info.has_audio and info.stream_count == 2 and info.rotation == 0


def test_probe_reads_rotation(tmp_path: Path) -> None:
    assert probe_video(make_clip(tmp_path / "r.mp4", rotation=90), LIMITS).rotation == 90
    assert probe_video(make_clip(tmp_path / "l.mp4", rotation=-90), LIMITS).rotation == 270


@pytest.mark.parametrize(
    ("limits", "code"),
    [
        (VideoLimits(max_duration_s=0.5, max_width=1920, max_height=1080), "video_too_long"),
        (VideoLimits(max_duration_s=60, max_width=1920, max_height=1080, max_frames=5), "video_too_long"),
        (VideoLimits(max_duration_s=60, max_width=100, max_height=1080), "video_too_large"),
        (VideoLimits(max_duration_s=60, max_width=1920, max_height=100), "video_too_large"),
    ],
)
def test_probe_enforces_limits(tmp_path: Path, limits: VideoLimits, code: str) -> None:
    with pytest.raises(EngineError) as err:
        probe_video(make_clip(tmp_path / "a.mp4", frames=12, rate=10), limits)
    assert err.value.code == code


def test_not_a_video_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    with pytest.raises(EngineError) as err:
        probe_video(path, LIMITS)
    assert err.value.code == "unsupported_media_type"


@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_truncated_file_is_corrupt(tmp_path: Path, keep: float) -> None:
    data = make_clip(tmp_path / "a.mp4", frames=30).read_bytes()  # index at the end, as cameras write it
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(EngineError) as err:
        probe_video(path, LIMITS)
    assert err.value.code == "corrupt_video"


def test_garbage_after_a_valid_signature_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "g.mkv"
    path.write_bytes(b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40)
    with pytest.raises(EngineError) as err:
        probe_video(path, LIMITS)
    assert err.value.code == "corrupt_video"


def test_absurd_declared_dimensions_fail_fast(tmp_path: Path) -> None:
    # Raw video in Matroska: the frame size lives only in the header, so patch it to 65535 x 65535.
    clip = make_clip(tmp_path / "a.mkv", fmt="matroska", codec="rawvideo", width=320, height=256, frames=2)
    data = bytearray(clip.read_bytes())
    for element in (b"\xb0\x82\x01\x40", b"\xba\x82\x01\x00"):  # PixelWidth 320, PixelHeight 256
        at = data.find(element)
        assert at > 0
        data[at + 2 : at + 4] = b"\xff\xff"
    path = tmp_path / "huge.mkv"
    path.write_bytes(bytes(data))
    started = time.perf_counter()
    with pytest.raises(EngineError) as err:
        probe_video(path, LIMITS)
    assert err.value.code in {"video_too_large", "corrupt_video"}
    assert time.perf_counter() - started < 2
