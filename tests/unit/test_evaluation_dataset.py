"""Loading COCO sets for veil eval: the documented dialect loads; a bad file fails with a message saying where."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from worker.engine.detections import Detections
from worker.evaluation.dataset import DatasetError, load_coco
from worker.evaluation.evaluate import evaluate


def write_set(root: Path, coco: dict[str, object], sizes: dict[str, tuple[int, int]] | None = None) -> Path:
    (root / "images").mkdir(parents=True, exist_ok=True)
    for name, (w, h) in (sizes or {"a.png": (64, 48), "b.png": (32, 32)}).items():
        Image.new("RGB", (w, h), (120, 130, 140)).save(root / "images" / name)
    path = root / "dev.json"
    path.write_text(json.dumps(coco))
    return path


def good_coco() -> dict[str, object]:
    return {
        "images": [{"id": 2, "file_name": "b.png", "width": 32, "height": 32},
                   {"id": 1, "file_name": "a.png", "width": 64, "height": 48}],
        "annotations": [
            {"image_id": 1, "category": "face", "bbox": [1, 2, 10, 20], "ignore": False},
            {"image_id": 1, "category": "plate", "bbox": [30, 30, 20, 5]},
            {"image_id": 1, "category_id": 1, "bbox": [40, 2, 4, 4], "ignore": True},
            {"image_id": 2, "category": "face", "bbox": [0, 0, 8, 8], "ignore": False},
        ],
        "categories": [{"id": 1, "name": "face"}, {"id": 2, "name": "plate"}],
    }


def test_a_good_set_loads_sorted_by_id_with_xyxy_boxes(tmp_path: Path) -> None:
    ds = load_coco(write_set(tmp_path, good_coco()))
    assert [im.id for im in ds.images] == [1, 2]
    boxes, ignore = ds.images[0].truth("face")
    assert boxes.tolist() == [[1, 2, 11, 22], [40, 2, 44, 6]]  # category_id 1 resolves through categories
    assert ignore.tolist() == [False, True]
    assert ds.images[0].truth("plate")[0].tolist() == [[30, 30, 50, 35]]
    assert ds.counts() == {"face": {"counted": 2, "ignored": 1}, "plate": {"counted": 1, "ignored": 0}}
    assert len(ds.head(1).images) == 1 and ds.head(1).images[0].id == 1


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c.pop("images"), "images"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, 0, 5]), "bbox"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, 3]), "bbox"),
    (lambda c: c["annotations"][0].update(category="car"), "category"),
    (lambda c: c["annotations"][0].update(image_id=99), "image_id 99"),
    (lambda c: c["images"][0].update(file_name="../escape.png"), "file_name"),
    (lambda c: c["images"][0].update(file_name="missing.png"), "missing"),
    (lambda c: c["images"][1].update(id=2), "not unique"),
    (lambda c: c["images"][0].update(width=-1), "width"),
    (lambda c: c.update(images=[], annotations=[]), "no images"),
])
def test_a_bad_set_fails_with_a_clear_message(tmp_path: Path, change: Callable[[dict], object], message: str) -> None:
    coco = good_coco()
    change(coco)
    with pytest.raises(DatasetError, match=message):
        load_coco(write_set(tmp_path, coco))


def test_not_json_and_no_file_are_clear_errors(tmp_path: Path) -> None:
    path = write_set(tmp_path, good_coco())
    path.write_text("[1, 2]")
    with pytest.raises(DatasetError, match="must be a JSON object"):
        load_coco(path)
    path.write_text("{not json")
    with pytest.raises(DatasetError, match="not JSON"):
        load_coco(path)
    with pytest.raises(DatasetError, match="cannot read"):
        load_coco(tmp_path / "nothing.json")
    with pytest.raises(DatasetError, match="images folder"):
        load_coco(write_set(tmp_path, good_coco()), tmp_path / "no-such-dir")


def test_an_image_whose_size_disagrees_with_the_labels_is_refused(tmp_path: Path) -> None:
    ds = load_coco(write_set(tmp_path, good_coco(), {"a.png": (48, 64), "b.png": (32, 32)}))
    with pytest.raises(DatasetError, match="the dataset says 64x48"):
        evaluate(ds, lambda bgr: (Detections.empty(), np.zeros((0, 4))))


def test_evaluate_scores_a_predictor_end_to_end(tmp_path: Path) -> None:
    ds = load_coco(write_set(tmp_path, good_coco()))
    seen: list[tuple[int, ...]] = []

    def predict(bgr: np.ndarray) -> tuple[Detections, np.ndarray]:
        seen.append(bgr.shape)
        # Finds the 10x20 face in a.png (64x48) and masks exactly it; nothing on b.png.
        if bgr.shape[1] == 64:
            found = Detections(np.array([[1, 2, 11, 22]]), np.array([0.9]), np.array(["face"]))
            return found, np.array([[1, 2, 11, 22]])
        return Detections.empty(), np.zeros((0, 4), np.int32)

    report = evaluate(ds, predict, name="fake", targets=("face", "plate"))
    face, plate = report.classes["face"]["all"], report.classes["plate"]["all"]
    assert seen[-2:] == [(48, 64, 3), (32, 32, 3)] and report.images == 2
    assert (face.counted, face.true_positives, face.recall, face.c80, face.precision) == (2, 1, 0.5, 0.5, 1.0)
    assert (plate.counted, plate.recall, plate.c80, plate.precision) == (1, 0.0, 0.0, None)
    assert report.classes["face"]["16-32"].recall == 1.0 and report.classes["face"]["<16"].recall == 0.0
    as_json = json.loads(json.dumps(report.to_dict(curves=True)))
    assert as_json["classes"]["face"]["all"]["curve_recall"] == [0.5]
    with pytest.raises(ValueError, match="targets"):
        evaluate(ds, predict, targets=("car",))
