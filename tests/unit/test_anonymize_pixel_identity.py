"""`veil anonymize --format png --mask solid` leaves every pixel outside the masks as the input shows it.

That makes coverage measurable from the output alone: a labelled face is hidden where the output turned
solid. Checked on a real photo (the astronaut) in the input forms that could break it: lossy JPEG, an EXIF
rotation, an opaque alpha channel, a palette and greyscale. "As the input shows it" is Pillow's upright RGB
rendering of the file, the reference any viewer would give.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageOps
from typer.testing import CliRunner

from cli.main import app
from tests.images import astronaut_rgb
from worker.evaluation.metrics import coverage, coverage_from_pixels

# The astronaut's face as a person would label it (x1, y1, x2, y2), inside the detector's box.
FACE = (182, 70, 266, 170)


def _rotated_exif() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored sideways, shown rotated 90 degrees clockwise
    return exif


def _rgba(rgb: np.ndarray) -> Image.Image:
    return Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]))


INPUTS: dict[str, Callable[[np.ndarray, Path], None]] = {
    "rgb.png": lambda rgb, p: Image.fromarray(rgb).save(p),
    "lossy.jpg": lambda rgb, p: Image.fromarray(rgb).save(p, quality=80),
    # Stored rotated back by 90 degrees, so that shown upright it is the astronaut again.
    "rotated.jpg": lambda rgb, p: Image.fromarray(np.rot90(rgb, 1).copy()).save(p, quality=90, exif=_rotated_exif()),
    "opaque-alpha.png": lambda rgb, p: _rgba(rgb).save(p),
    "palette.png": lambda rgb, p: Image.fromarray(rgb).convert("P").save(p),
    "grey.jpg": lambda rgb, p: Image.fromarray(rgb).convert("L").save(p),
    "lossy.webp": lambda rgb, p: Image.fromarray(rgb).save(p, quality=70),
}


@pytest.mark.parametrize("name", list(INPUTS))
def test_solid_png_output_differs_from_the_input_only_inside_masks(tmp_path: Path, name: str) -> None:
    src = tmp_path / "in" / name
    src.parent.mkdir()
    INPUTS[name](astronaut_rgb(), src)
    result = CliRunner().invoke(app, ["anonymize", str(src), "--out", str(tmp_path / "out"),
                                      "--targets", "face", "--mask", "solid", "--format", "png"])
    assert result.exit_code == 0, result.output
    with Image.open(src) as im:
        shown = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    with Image.open(tmp_path / "out" / f"{src.stem}.png") as im:
        assert im.mode == "RGB"
        output = np.asarray(im)
    assert output.shape == shown.shape == (512, 512, 3)  # upright, as shown
    changed = (output != shown).any(axis=2)
    solid = (output == 0).all(axis=2)
    # Every pixel that changed is the mask colour: no colour shift, rotation or alpha artefact anywhere else.
    assert changed.any() and not (changed & ~solid).any()
    # The masks form whole rectangles, so the changed area sits in one box around the face.
    ys, xs = np.nonzero(changed)
    x1, y1, x2, y2 = xs.min(), ys.min(), xs.max() + 1, ys.max() + 1
    assert x1 <= FACE[0] and y1 <= FACE[1] and x2 >= FACE[2] and y2 >= FACE[3]
    assert changed.mean() < 0.25  # a padded face, not the picture
    # And so coverage can be read from the output alone: the labelled face is hidden.
    assert coverage_from_pixels([FACE], changed | solid)[0] == 1.0


def test_pixel_coverage_agrees_with_box_coverage_on_whole_pixels() -> None:
    masks = np.array([[10, 10, 30, 25], [25, 20, 40, 50], [0, 45, 12, 60]])
    masked = np.zeros((64, 64), bool)
    for x1, y1, x2, y2 in masks:
        masked[y1:y2, x1:x2] = True
    truth = np.array([[5, 5, 35, 55], [0, 0, 64, 64], [26, 21, 39, 49], [50, 0, 60, 10]])
    assert coverage_from_pixels(truth, masked) == pytest.approx(coverage(truth, masks))
    assert coverage_from_pixels(truth, masked)[2:].tolist() == [1.0, 0.0]
