"""`veil anonymize` runs the service's engine in-process over local files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from cli.main import app
from tests.images import astronaut_png, astronaut_rgb, decode_rgb


def test_anonymize_writes_masked_files_and_reports_failures(tmp_path: Path) -> None:
    good = tmp_path / "in" / "astronaut.png"
    good.parent.mkdir()
    good.write_bytes(astronaut_png())
    bad = tmp_path / "in" / "notes.jpg"
    bad.write_text("not an image")
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["anonymize", str(good), str(bad), "--out", str(out), "--mask", "solid"])
    assert result.exit_code == 1  # one file failed
    assert "1 done, 1 failed" in result.output and "unsupported_media_type" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.png"]
    before, after = astronaut_rgb(), decode_rgb((out / "astronaut.png").read_bytes())
    changed = np.any(before != after, axis=2)
    assert 0.005 < changed.mean() < 0.2  # the face box changed, the rest of the picture did not


def test_anonymize_refuses_unknown_options(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(astronaut_png())
    result = CliRunner().invoke(app, ["anonymize", str(src), "--out", str(tmp_path / "o"), "--mask", "smudge"])
    assert result.exit_code == 2 and "invalid option" in result.output


def test_format_option_converts(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(astronaut_png())
    result = CliRunner().invoke(app, ["anonymize", str(src), "--out", str(tmp_path / "o"), "--format", "jpeg"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "o" / "a.jpg").read_bytes()[:3] == b"\xff\xd8\xff"


def test_targets_and_preset_options(tmp_path: Path) -> None:
    src = tmp_path / "a.png"
    src.write_bytes(astronaut_png())
    runner = CliRunner()
    faces = runner.invoke(app, ["anonymize", str(src), "--out", str(tmp_path / "o"), "--targets", "face",
                                "--preset", "fast"])
    assert faces.exit_code == 0, faces.output
    assert "1 faces and 0 plates masked" in faces.output
    for bad in (["--targets", "car"], ["--targets", ""], ["--preset", "slow"]):
        result = runner.invoke(app, ["anonymize", str(src), "--out", str(tmp_path / "o"), *bad])
        assert result.exit_code == 2 and "invalid option" in result.output, bad
