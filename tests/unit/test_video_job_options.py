"""A video job's engine options: the video operating point unless the job names its own."""

from __future__ import annotations

from shared.job_options import JobOptions
from shared.settings import Settings
from worker.video_job import video_options


def test_a_job_naming_nothing_gets_the_video_preset_threshold_and_cadences() -> None:
    settings = Settings(video_detection_preset="fast", video_face_threshold=0.4, video_face_cadence=2,
                        video_plate_cadence=8, default_preset="balanced")
    options = video_options(JobOptions(), settings)
    assert options.face.preset == "fast"  # not the photos' default_preset
    assert options.face.threshold_by_target["face"] == 0.4
    assert options.face.threshold_by_target.get("plate") is None  # the plate detector's own
    assert (options.cadence_of("face"), options.cadence_of("plate")) == (2, 8)
    assert options.lead_frames(["face", "plate"]) == 7  # carries a plate back over 7 skipped frames


def test_a_job_naming_its_preset_and_threshold_keeps_them() -> None:
    settings = Settings(video_detection_preset="fast", video_face_threshold=0.4)
    options = video_options(JobOptions(preset="thorough", threshold={"face": 0.7}), settings)
    assert options.face.preset == "thorough" and options.face.threshold_by_target["face"] == 0.7

