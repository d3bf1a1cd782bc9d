"""End to end on generated clips: geometry, clock, streams and rotation survive; faces are masked."""

from __future__ import annotations

import re
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from engine_fixtures import ASTRONAUT_FACE
from plate_fixtures import PLATE_BOX, plate_frame
from skimage import data
from video_fixtures import frame_times, make_clip, packet_bytes, read_frames

import worker.engine.video.pipeline as video_pipeline
from worker.engine.detection_engine import DetectionEngines
from worker.engine.errors import EngineError
from worker.engine.face_yunet import YuNetDetector
from worker.engine.masking import MaskStyle
from worker.engine.pipeline import AnonymizeOptions
from worker.engine.plates import build_plate_detector
from worker.engine.registry import ModelRegistry, default_manifest
from worker.engine.video import VideoAnonymizer, VideoCancelled, VideoLimits, VideoOptions, probe_video

LIMITS = VideoLimits(max_duration_s=60, max_width=1920, max_height=1080)
OPTIONS = VideoOptions(AnonymizeOptions())


@pytest.fixture(scope="module")
def anonymizer() -> VideoAnonymizer:
    return VideoAnonymizer(YuNetDetector())


def test_geometry_clock_and_audio_survive(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=15, rate=10, audio=True)
    dst = tmp_path / "out.mp4"
    result = anonymizer.run(src, dst, OPTIONS, limits=LIMITS)
    before, after = probe_video(src, LIMITS), probe_video(dst, LIMITS)
    assert (result.frames, result.width, result.height) == (15, 160, 120)
    assert (after.frames, after.width, after.height, after.codec) == (15, 160, 120, "h264")
    assert after.fps == pytest.approx(before.fps) and abs(after.duration_s - before.duration_s) <= 0.1
    assert frame_times(dst) == pytest.approx(frame_times(src), abs=1e-6)
    assert (result.copied_streams, result.output_codec, result.output_container) == (["audio"], "h264", "mp4")
    assert packet_bytes(dst) == packet_bytes(src)  # audio remuxed bit for bit, same timestamps
    assert result.detections == result.tracks == result.masked_boxes == 0
    assert {"decode", "detect", "mask", "encode", "total"} <= set(result.timings_ms)


def test_dropping_other_streams(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", audio=True)
    result = anonymizer.run(
        src, tmp_path / "out.mp4", VideoOptions(OPTIONS.face, drop_other_streams=True), limits=LIMITS
    )
    assert result.copied_streams == [] and not probe_video(tmp_path / "out.mp4", LIMITS).has_audio


def test_variable_frame_rate_timestamps_survive(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    pts = [0, 1000, 1500, 4000, 4100, 9000, 9500, 12000, 13000, 20000, 21000, 22000]
    src = make_clip(tmp_path / "vfr.mp4", frames=len(pts), pts=pts, time_base=Fraction(1, 10000))
    anonymizer.run(src, tmp_path / "out.mp4", OPTIONS, limits=LIMITS)
    assert frame_times(tmp_path / "out.mp4") == pytest.approx([p / 10000 for p in pts], abs=1e-6)


@pytest.mark.parametrize(
    ("name", "kwargs", "container"),
    [
        ("hevc.mkv", {"fmt": "matroska", "codec": "libx265"}, "mkv"),
        ("odd.mp4", {"width": 161, "height": 97, "pix_fmt": "yuv444p"}, "mp4"),
        ("old.avi", {"fmt": "avi", "codec": "mpeg4", "audio": True}, "mkv"),
        ("clip.mov", {"fmt": "mov"}, "mov"),
    ],
)
def test_other_codecs_containers_and_sizes(
    anonymizer: VideoAnonymizer, tmp_path: Path, name: str, kwargs: dict[str, object], container: str
) -> None:
    src = make_clip(tmp_path / name, **kwargs)  # type: ignore[arg-type]
    dst = tmp_path / f"out.{container}"
    result = anonymizer.run(src, dst, OPTIONS, limits=LIMITS)
    before, after = probe_video(src, LIMITS), probe_video(dst, LIMITS)
    assert result.output_container == container
    assert (after.width, after.height, after.has_audio) == (before.width, before.height, before.has_audio)
    assert len(read_frames(dst)) == len(read_frames(src)) == result.frames


def face_frame(index: int, width: int, height: int) -> np.ndarray:
    """The astronaut's head on grey, moving right and down 6 px a frame."""
    canvas = np.full((height, width, 3), 128, np.uint8)
    x, y = 20 + 6 * index, 10 + 3 * index
    canvas[y : y + 230, x : x + 200] = data.astronaut()[30:260, 130:330]
    return canvas


def face_box(index: int) -> tuple[int, int, int, int]:
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    dx, dy = 20 + 6 * index - 130, 10 + 3 * index - 30
    return fx1 + dx + 6, fy1 + dy + 6, fx2 + dx - 6, fy2 + dy - 6  # the face itself, inside YuNet's slack


@pytest.mark.parametrize("rotation", [0, 90])
def test_the_face_is_masked_in_every_frame(anonymizer: VideoAnonymizer, tmp_path: Path, rotation: int) -> None:
    frames = 10
    if rotation:  # stored sideways; the display matrix turns it upright, and detection must too
        draw = lambda i, w, h: np.ascontiguousarray(np.rot90(face_frame(i, h, w), -1))  # noqa: E731
        src = make_clip(tmp_path / "in.mp4", width=320, height=400, frames=frames, draw=draw, rotation=90)
    else:
        src = make_clip(tmp_path / "in.mp4", width=400, height=320, frames=frames, draw=face_frame)
    dst = tmp_path / "out.mp4"
    result = anonymizer.run(src, dst, VideoOptions(AnonymizeOptions(mask=MaskStyle.SOLID)), limits=LIMITS)
    assert result.tracks >= 1 and result.detections >= frames - 1 and result.masked_boxes >= frames
    assert probe_video(dst, LIMITS).rotation == rotation
    for i, (original, masked) in enumerate(zip(read_frames(src), read_frames(dst), strict=True)):
        if rotation:
            original, masked = np.rot90(original), np.rot90(masked)
        x1, y1, x2, y2 = face_box(i)
        assert masked[y1:y2, x1:x2].mean() < 20, f"face visible in frame {i}"
        assert np.abs(original[y1:y2, x1:x2].astype(int) - masked[y1:y2, x1:x2]).mean() > 60
        assert np.abs(original[:, -40:].astype(int) - masked[:, -40:]).mean() < 4  # background kept


def test_cancel_deletes_the_partial_output(
    anonymizer: VideoAnonymizer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(video_pipeline, "PROGRESS_INTERVAL_S", 0.0)
    src = make_clip(tmp_path / "in.mp4", frames=30, audio=True)
    dst = tmp_path / "out.mp4"
    calls: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> bool:
        calls.append((done, total))
        return done < 5

    with pytest.raises(VideoCancelled):
        anonymizer.run(src, dst, OPTIONS, limits=LIMITS, progress=progress)
    assert not dst.exists()
    assert calls[-1] == (5, 30)


def test_progress_reaches_the_end(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    calls: list[tuple[int, int]] = []
    anonymizer.run(
        make_clip(tmp_path / "in.mp4"),
        tmp_path / "out.mp4",
        OPTIONS,
        limits=LIMITS,
        progress=lambda done, total: calls.append((done, total)) is None,
    )
    assert calls[-1] == (12, 12)


def test_corrupt_and_empty_videos_fail_cleanly(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    data_ = make_clip(tmp_path / "in.mp4", frames=30).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data_[: len(data_) // 2])
    empty = tmp_path / "empty.mkv"
    with av.open(str(empty), mode="w", format="matroska") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height = 64, 64
    for src in (cut, empty):
        dst = tmp_path / "out.mp4"
        with pytest.raises(EngineError) as err:
            anonymizer.run(src, dst, OPTIONS, limits=LIMITS)
        assert err.value.code in {"corrupt_video", "empty_video"}
        assert not dst.exists()


def test_truncated_mid_stream_fails_cleanly(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=30)
    faststart = tmp_path / "fs.mp4"  # index first, as a streaming-friendly camera writes it: opens, then runs dry
    with av.open(str(src)) as inp, av.open(str(faststart), "w", options={"movflags": "+faststart"}) as out:
        stream = out.add_stream_from_template(inp.streams.video[0])
        for packet in inp.demux(inp.streams.video[0]):
            if packet.size:
                packet.stream = stream
                out.mux(packet)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(faststart.read_bytes()[: faststart.stat().st_size * 2 // 3])
    with pytest.raises(EngineError) as err:
        anonymizer.run(cut, tmp_path / "out.mp4", OPTIONS, limits=LIMITS)
    assert err.value.code == "corrupt_video" and not (tmp_path / "out.mp4").exists()


@pytest.mark.parametrize("cadence", [3, 5])
def test_with_a_detection_cadence_the_face_is_masked_on_the_skipped_frames_too(
    anonymizer: VideoAnonymizer, tmp_path: Path, cadence: int
) -> None:
    frames = 12
    src = make_clip(tmp_path / "in.mp4", width=400, height=320, frames=frames, draw=face_frame)
    dst = tmp_path / "out.mp4"
    options = VideoOptions(AnonymizeOptions(mask=MaskStyle.SOLID), cadence={"face": cadence})
    result = anonymizer.run(src, dst, options, limits=LIMITS)
    assert result.cadence == {"face": cadence} and options.lead_frames(["face"]) >= cadence - 1
    # The detector ran on frames 0 and 1 (a new track needs a velocity), then on every cadence-th frame only.
    assert result.detections == 2 + (frames - 2) // cadence
    assert result.masked_boxes >= frames
    for i, masked in enumerate(read_frames(dst)):
        x1, y1, x2, y2 = face_box(i)
        assert masked[y1:y2, x1:x2].mean() < 20, f"face visible in frame {i}"


def test_cadence_must_be_positive() -> None:
    with pytest.raises(ValueError, match="cadence"):
        VideoOptions(AnonymizeOptions(), cadence={"face": 0})


def test_unmasked_pixels_reach_the_encoder_as_decoded(anonymizer: VideoAnonymizer, tmp_path: Path) -> None:
    # yuv420p frames stay in their planes: losslessly encoded (crf 0), every pixel comes back as decoded. A
    # round trip through BGR changed values by up to 38 levels.
    src = make_clip(tmp_path / "in.mp4", width=160, height=120, frames=6)
    dst = tmp_path / "out.mp4"
    anonymizer.run(src, dst, VideoOptions(AnonymizeOptions(), crf=0), limits=LIMITS)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        before = [f.to_ndarray() for f in a.decode(video=0)]
        after = [f.to_ndarray() for f in b.decode(video=0)]
    assert len(before) == len(after) == 6
    assert all(np.array_equal(x, y) for x, y in zip(before, after, strict=True))


def x264_options(path: Path) -> dict[str, str]:
    """The settings x264 wrote into the stream (its SEI text: "... options: cabac=1 ref=1 ...")."""
    found = re.search(rb"x264 - core .*? - options: ([ -~]+)", path.read_bytes())
    assert found, "no x264 settings in the stream"
    return dict(item.split("=", 1) for item in found.group(1).decode().split() if "=" in item)


@pytest.mark.parametrize(("params", "search"), [("", "hex"), ("me=dia", "dia"), ("me=umh:subme=4", "umh")])
def test_the_encoder_runs_the_preset_with_the_params_over_it(
    anonymizer: VideoAnonymizer, tmp_path: Path, params: str, search: str
) -> None:
    src = make_clip(tmp_path / "in.mp4", frames=6)
    dst = tmp_path / "out.mp4"
    anonymizer.run(src, dst, VideoOptions(AnonymizeOptions(), crf=23, preset="veryfast", encoder_params=params),
                   limits=LIMITS)
    written = x264_options(dst)
    assert written["me"] == search
    assert written["subme"] == ("4" if "subme" in params else "2")  # veryfast's, unless the params name one
    assert written["crf"].startswith("23")
    assert written["sliced_threads"] == "0"  # frame threads, not PyAV's default slice threads


def test_the_service_encoder_writes_no_b_frames_nor_p8x8_partitions(anonymizer: VideoAnonymizer,
                                                                    tmp_path: Path) -> None:
    from shared.settings import Settings
    from worker.engine.video.output import encoder_fields

    src = make_clip(tmp_path / "in.mp4", frames=12)
    dst = tmp_path / "out.mp4"
    anonymizer.run(src, dst, VideoOptions(AnonymizeOptions(), **encoder_fields(Settings())), limits=LIMITS)
    written = x264_options(dst)
    assert written["bframes"] == "0"
    # "analyse=I:P" holds x264's partition flags for I- and P-frames; 0x10 is 8x8 sub-partitions of P
    # macroblocks (veryfast alone writes 0x3:0x113). Intra 4x4 and 8x8 stay on in both.
    intra, inter = (int(flags, 16) for flags in written["analyse"].split(":"))
    assert intra == 0x3 and inter & 0x3 == 0x3 and not inter & 0x10
    with av.open(str(dst)) as c:
        packets = [p for p in c.demux(video=0) if p.size]
    # Stored in display order: no packet decodes before it shows (veryfast alone reorders for B-frames).
    assert len(packets) == 12 and all(p.dts == p.pts for p in packets)


def plate_clip_frame(index: int, width: int, height: int) -> np.ndarray:
    """The rendered plate moving right 4 px a frame (RGB for make_clip)."""
    frame = np.roll(plate_frame(height, width), 4 * index, axis=1)
    return np.ascontiguousarray(frame[..., ::-1])


def test_plates_are_followed_between_whole_looks_in_regions(tmp_path: Path) -> None:
    registry = ModelRegistry(default_manifest(), models_dir=tmp_path, allowed_licences=("Apache-2.0", "MIT"),
                             providers=["CPUExecutionProvider"])
    plates = build_plate_detector("fast", registry.load_session)
    anonymizer = VideoAnonymizer(DetectionEngines.fixed(plates))
    frames = 12
    src = make_clip(tmp_path / "in.mp4", width=960, height=540, frames=frames, draw=plate_clip_frame)
    dst = tmp_path / "out.mp4"
    options = VideoOptions(AnonymizeOptions(targets=("plate",), mask=MaskStyle.SOLID), cadence={"plate": 4})
    result = anonymizer.run(src, dst, options, limits=LIMITS)
    # Whole looks on frames 0, 4 and 8; the new track asked for frame 1, seen only around it.
    assert result.detected_frames == {"plate": 3} and result.region_frames["plate"] >= 1
    assert result.detections >= 3 + result.region_frames["plate"]
    x1, y1, x2, y2 = PLATE_BOX
    for i, masked in enumerate(read_frames(dst)):
        assert masked[y1 + 4 : y2 - 4, x1 + 4 * i + 4 : x2 + 4 * i - 4].mean() < 20, f"plate visible in frame {i}"
