"""`veil anonymize` on a video runs it as the service runs a video job with the same options."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from typer.testing import CliRunner
from video_fixtures import make_clip

import cli.anonymize_files
from cli.main import app
from shared.settings import get_settings
from worker.engine.video import VideoAnonymizer, VideoOptions


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[VideoOptions]:
    """Records the options each video ran with; the run itself is the real engine."""
    calls: list[VideoOptions] = []
    real = VideoAnonymizer.run

    def spy(self: VideoAnonymizer, src: Path, dst: Path, options: VideoOptions, **kw: object):  # type: ignore[no-untyped-def]
        calls.append(options)
        return real(self, src, dst, options, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(cli.anonymize_files.VideoAnonymizer, "run", spy)
    return calls


def test_video_gets_the_service_video_defaults(tmp_path: Path, seen: list[VideoOptions]) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    result = CliRunner().invoke(app, ["anonymize", str(clip), "--out", str(tmp_path / "o"), "--targets", "face"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "clip.mp4").stat().st_size > 0
    settings = get_settings()
    [options] = seen
    assert options.face.preset == settings.video_detection_preset
    assert options.cadence == {"face": settings.video_face_cadence, "plate": settings.video_plate_cadence}
    assert options.face.threshold_by_target["face"] == settings.video_face_threshold
    assert (options.crf, options.preset) == (settings.video_crf, settings.video_preset)
    assert options.encoder_params == settings.video_encoder_params
    assert gc.get_freeze_count() > 0  # the command froze its start-up heap before the work


def test_a_named_preset_still_wins(tmp_path: Path, seen: list[VideoOptions]) -> None:
    clip = make_clip(tmp_path / "clip.mp4")
    result = CliRunner().invoke(app, ["anonymize", str(clip), "--out", str(tmp_path / "o"), "--targets", "face",
                                      "--preset", "balanced"])
    assert result.exit_code == 0, result.output
    assert seen[0].face.preset == "balanced"
