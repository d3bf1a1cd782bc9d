"""A video job's engine options: the video operating point unless the job names its own."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

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



def test_the_encoder_settings_reach_the_options() -> None:
    settings = Settings(video_crf=23, video_preset="faster", video_encoder_params="me=umh:subme=4")
    options = video_options(JobOptions(), settings)
    assert (options.crf, options.preset, options.encoder_params) == (23, "faster", "me=umh:subme=4")


@pytest.mark.parametrize("params", ["", "me=dia", "me=dia:weightp=0", "rc-lookahead=5"])
def test_encoder_params_take_key_value_pairs(params: str) -> None:
    assert Settings(video_encoder_params=params).video_encoder_params == params


@pytest.mark.parametrize("params", ["me dia", "=dia", "me=", "me=dia:", "me=dia::subme=1", "me=dia=hex"])
def test_malformed_encoder_params_are_refused_at_start(params: str) -> None:
    with pytest.raises(ValidationError, match="video_encoder_params"):
        Settings(video_encoder_params=params)
