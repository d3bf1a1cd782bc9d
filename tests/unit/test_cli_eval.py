"""`veil eval` end to end on a tiny licence-clean set: the astronaut photo and a blank frame.

Labels: the astronaut's face (found by YuNet, IoU 0.83), a 40 px "face" on the flag that nothing finds, and an
ignored 8 px box. So, for YuNet-n at its native settings: 2 counted faces, recall 1/2, C80 1/2, precision 1,
AP50 1/2 (one hit at precision 1, then nothing), no false masks.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from cli.main import app
from tests.images import astronaut_png
from worker.engine.detections import Detections
from worker.evaluation.unlabelled import Comparison, lone_boxes, write_contact_sheet

FACE = [182, 70, 84, 100]  # x, y, w, h


def make_set(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "images" / "astronaut.png").write_bytes(astronaut_png())
    Image.new("RGB", (96, 64), (90, 90, 90)).save(root / "images" / "blank.png")
    coco = {
        "images": [{"id": 1, "file_name": "astronaut.png", "width": 512, "height": 512},
                   {"id": 2, "file_name": "blank.png", "width": 96, "height": 64}],
        "annotations": [
            {"image_id": 1, "category": "face", "bbox": FACE, "ignore": False},
            {"image_id": 1, "category": "face", "bbox": [20, 20, 30, 40], "ignore": False},
            {"image_id": 1, "category": "face", "bbox": [450, 450, 8, 8], "ignore": True},
        ],
        "categories": [{"id": 1, "name": "face"}, {"id": 2, "name": "plate"}],
    }
    path = root / "dev.json"
    path.write_text(json.dumps(coco))
    return path


def test_eval_reports_hand_computed_figures_with_json_and_plot(tmp_path: Path) -> None:
    dataset = make_set(tmp_path / "set")
    out_json, plot = tmp_path / "r" / "eval.json", tmp_path / "r" / "eval.png"
    result = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--detector", "yunet_n",
                                      "--json", str(out_json), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "yunet_n" in result.output and "C80" in result.output
    figures = json.loads(out_json.read_text())
    assert figures["labelled_boxes"]["face"] == {"counted": 2, "ignored": 1}
    [report] = figures["reports"]
    assert report["images"] == 2 and report["ms_per_image"] > 0
    face = report["classes"]["face"]
    assert list(report["classes"]) == ["face"]  # no plate labels, so plates are not scored by default
    overall = face["all"]
    assert (overall["counted"], overall["true_positives"], overall["false_positives"]) == (2, 1, 0)
    assert overall["recall"] == 0.5 and overall["c80"] == 0.5 and overall["precision"] == 1.0
    assert overall["ap50"] == pytest.approx(0.5) and overall["false_masks_per_image"] == 0.0
    assert face[">=64"]["recall"] == 1.0 and face["32-64"]["recall"] == 0.0 and face["<16"]["counted"] == 0
    with Image.open(plot) as im:
        assert im.format == "PNG" and im.width >= 800


def test_presets_and_detectors_side_by_side(tmp_path: Path) -> None:
    dataset = make_set(tmp_path / "set")
    out_json = tmp_path / "eval.json"
    result = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--preset", "fast", "--detector", "yunet_s",
                                      "--targets", "face", "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    reports = json.loads(out_json.read_text())["reports"]
    assert [r["name"] for r in reports] == ["fast", "yunet_s"]
    for r in reports:  # the astronaut's face is large and clear: every candidate must hide it
        assert r["classes"]["face"][">=64"]["c80"] == 1.0


@pytest.mark.parametrize(("args", "message"), [
    ([], "either --dataset"),
    (["--preset", "fastest"], "unknown preset 'fastest'"),
    (["--detector", "nope"], "unknown detector 'nope'"),
    (["--targets", "car"], "--targets"),
])
def test_bad_options_are_refused_clearly(tmp_path: Path, args: list[str], message: str) -> None:
    dataset = make_set(tmp_path / "set")
    base = [] if args == [] else ["--dataset", str(dataset)]
    result = CliRunner().invoke(app, ["eval", *base, *args])
    assert result.exit_code == 2 and message in result.output


def test_a_bad_dataset_file_is_refused_with_where_it_is_wrong(tmp_path: Path) -> None:
    dataset = make_set(tmp_path / "set")
    coco = json.loads(dataset.read_text())
    coco["annotations"][1]["bbox"] = [20, 20, -30, 40]
    dataset.write_text(json.dumps(coco))
    result = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--detector", "yunet_n"])
    assert result.exit_code == 2 and "annotations.1.bbox" in result.output and "Traceback" not in result.output


def test_unlabelled_comparison_counts_and_writes_a_contact_sheet(tmp_path: Path) -> None:
    make_set(tmp_path / "set")
    (tmp_path / "set" / "images" / "notes.txt").write_text("not an image")
    sheet, out_json = tmp_path / "sheet.png", tmp_path / "cmp.json"
    result = CliRunner().invoke(app, ["eval", "--unlabelled", str(tmp_path / "set" / "images"),
                                      "--detector", "yunet_n", "--detector", "yunet_s",
                                      "--sheet", str(sheet), "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    figures = json.loads(out_json.read_text())
    assert figures["images"] == 2  # the text file is not an image
    assert figures["counts"] == {"yunet_n": {"face": 1}, "yunet_s": {"face": 1}}
    assert figures["lone"] == {"yunet_n": {}, "yunet_s": {}}  # both find the same face
    with Image.open(sheet) as im:
        assert im.format == "PNG"


def test_lone_boxes_and_their_contact_sheet(tmp_path: Path) -> None:
    a = Detections(np.array([[0, 0, 10, 10], [50, 50, 60, 60], [100, 0, 120, 20]]), np.array([0.9, 0.8, 0.7]),
                   np.array(["face", "face", "plate"]))
    b = Detections(np.array([[1, 1, 11, 11], [100, 0, 120, 20]]), np.array([0.9, 0.6]), np.array(["face", "face"]))
    lone = lone_boxes({"a": a, "b": b})
    # a's second face overlaps nothing; its plate overlaps only b's *face*, so it is lone too.
    assert lone["a"].tolist() == [False, True, True]
    assert lone["b"].tolist() == [False, True]
    crops = [("face 0.80 a", Image.new("RGB", (8, 8), (200, 0, 0))) for _ in range(10)]
    write_contact_sheet(Comparison(crops=crops), tmp_path / "s.png", columns=4)
    with Image.open(tmp_path / "s.png") as im:
        sheet = np.asarray(im.convert("RGB"))
    assert sheet.shape == (3 * 128, 4 * 128, 3)
    assert (sheet == (200, 0, 0)).all(axis=2).sum() > 10 * 100  # small crops are enlarged, not left at 8 px


def test_threshold_sweep_gives_one_candidate_per_threshold(tmp_path: Path) -> None:
    dataset = make_set(tmp_path / "set")
    out_json = tmp_path / "sweep.json"
    result = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--detector", "yunet_n",
                                      "--threshold", "0.99", "--threshold", "0.3", "--json", str(out_json)])
    assert result.exit_code == 0, result.output
    by_name = {r["name"]: r["classes"]["face"]["all"] for r in json.loads(out_json.read_text())["reports"]}
    assert set(by_name) == {"yunet_n@0.99", "yunet_n@0.3"}
    # The astronaut's face scores well below 0.99: only the lower threshold finds it.
    assert by_name["yunet_n@0.99"]["true_positives"] == 0 and by_name["yunet_n@0.3"]["true_positives"] == 1


def test_threshold_out_of_range_is_refused(tmp_path: Path) -> None:
    dataset = make_set(tmp_path / "set")
    result = CliRunner().invoke(app, ["eval", "--dataset", str(dataset), "--detector", "yunet_n",
                                      "--threshold", "1.5"])
    assert result.exit_code != 0 and "threshold must be in (0, 1]" in result.output
