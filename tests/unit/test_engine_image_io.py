"""Image I/O: format by content, pixel limit before decode, corrupt data refused, metadata not written."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from engine_fixtures import astronaut_bgr, save_astronaut, save_rgb
from PIL import ExifTags, Image, ImageCms, ImageFile

from worker.engine.errors import EngineError
from worker.engine.image_io import (
    extension,
    media_type,
    output_format,
    read_image,
    sniff_image_format,
    write_image,
)

LIMIT = 50_000_000


def engine_error(path: Path, max_pixels: int = LIMIT) -> str:
    with pytest.raises(EngineError) as err:
        read_image(path, max_pixels=max_pixels)
    assert path.name not in err.value.message and str(path.parent) not in err.value.message
    return err.value.code


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def test_sniff_by_content_not_name(tmp_path: Path) -> None:
    disguised = save_astronaut(tmp_path / "photo.jpg", "PNG")
    assert sniff_image_format(disguised.read_bytes()[:16]) == "png"
    assert read_image(disguised, max_pixels=LIMIT).format == "png"
    assert sniff_image_format(b"\xff\xd8\xff\xe0\x00\x10JFIF") == "jpeg"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_format(b"hello, this is text") is None
    assert sniff_image_format(b"") is None


@pytest.mark.parametrize("content", [b"", b"plain text, not an image\n", b"GIF89a\x01\x00\x01\x00"])
def test_unsupported_content(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    assert engine_error(path) == "unsupported_media_type"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_round_trip_each_format(tmp_path: Path, fmt: str) -> None:
    decoded = read_image(save_astronaut(tmp_path / "in", fmt), max_pixels=LIMIT)
    assert (decoded.width, decoded.height) == (512, 512)
    assert decoded.bgr.dtype == np.uint8 and decoded.bgr.shape == (512, 512, 3)
    assert np.abs(decoded.bgr.astype(int) - astronaut_bgr().astype(int)).mean() < 4  # BGR order, not RGB
    out = tmp_path / "out"
    write_image(out, decoded.bgr, decoded.format)
    assert sniff_image_format(out.read_bytes()[:16]) == decoded.format
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:, :20] = (255, 0, 0)  # left half red
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # display rotated 90 degrees clockwise
    decoded = read_image(save_rgb(tmp_path / "rot.jpg", rgb, "JPEG", exif=exif, quality=95), max_pixels=LIMIT)
    assert decoded.bgr.shape == (40, 20, 3)
    assert (decoded.width, decoded.height) == (20, 40)
    assert decoded.bgr[5, 10, 2] > 200 and decoded.bgr[35, 10, 2] < 50  # the red half is now on top


def test_metadata_is_stripped_on_write(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SecretCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 7.0)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = save_astronaut(tmp_path / "src.jpg", "JPEG", exif=exif, icc_profile=icc, comment=b"Jane at home")
    assert b"SecretCam" in src.read_bytes()
    decoded = read_image(src, max_pixels=LIMIT)
    assert decoded.icc_profile == icc
    for fmt in ("jpeg", "png", "webp"):
        out = tmp_path / f"out.{fmt}"
        write_image(out, decoded.bgr, fmt, icc_profile=decoded.icc_profile)
        raw = out.read_bytes()
        assert b"SecretCam" not in raw and b"Jane" not in raw and b"Exif" not in raw
        with Image.open(out) as im:
            assert not im.getexif() and "exif" not in im.info and "icc_profile" not in im.info
            assert "xmp" not in im.info and "comment" not in im.info
        write_image(out, decoded.bgr, fmt, keep_metadata=True, icc_profile=decoded.icc_profile)
        with Image.open(out) as im:
            assert im.info.get("icc_profile") == icc and not im.getexif()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_truncated_data_is_corrupt(tmp_path: Path, fmt: str) -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    whole = save_astronaut(tmp_path / "whole", fmt).read_bytes()
    cut = tmp_path / "cut"
    cut.write_bytes(whole[: len(whole) // 2])
    assert engine_error(cut) == "corrupt_image"


def test_garbage_after_magic_bytes_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    assert engine_error(path) == "corrupt_image"


def header_only_png(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IEND", b"")


@pytest.mark.parametrize(("side", "max_pixels"), [(100_000, LIMIT), (100_000, 10**12), (8_000, LIMIT)])
def test_huge_declared_size_is_refused_before_decoding(tmp_path: Path, side: int, max_pixels: int) -> None:
    # The file holds no pixel data at all: reaching a decoder would fail as corrupt, so image_too_large
    # proves the size was judged from the header. 8000 x 8000 is under Pillow's own bomb guard, so our
    # limit answers; 100000 x 100000 trips Pillow's guard inside Image.open, whatever our limit.
    path = tmp_path / "bomb.png"
    path.write_bytes(header_only_png(side, side))
    assert engine_error(path, max_pixels) == "image_too_large"


def test_our_pixel_limit_applies(tmp_path: Path) -> None:
    path = save_astronaut(tmp_path / "a.png")
    assert engine_error(path, max_pixels=512 * 512 - 1) == "image_too_large"
    assert read_image(path, max_pixels=512 * 512).width == 512


def to_png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("image", "expected_bgr"),
    [
        (Image.new("L", (8, 8), 77), (77, 77, 77)),
        (Image.new("LA", (8, 8), (77, 255)), (77, 77, 77)),
        (Image.new("RGBA", (8, 8), (10, 20, 30, 255)), (30, 20, 10)),
        (Image.new("RGBA", (8, 8), (10, 20, 30, 0)), (255, 255, 255)),  # hidden pixels do not resurface
        (Image.new("P", (8, 8), 0), (0, 0, 0)),
        (Image.fromarray(np.full((8, 8), 65535, np.uint16)), (255, 255, 255)),  # 16-bit grey
    ],
)
def test_modes_become_bgr_uint8(tmp_path: Path, image: Image.Image, expected_bgr) -> None:
    path = tmp_path / "m.png"
    path.write_bytes(to_png(image))
    decoded = read_image(path, max_pixels=LIMIT)
    assert decoded.bgr.dtype == np.uint8 and decoded.bgr.shape == (8, 8, 3)
    assert tuple(int(v) for v in decoded.bgr[4, 4]) == expected_bgr


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "c.jpg"
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(path, "JPEG", quality=100)  # pure red
    pixel = read_image(path, max_pixels=LIMIT).bgr[4, 4]
    assert pixel[2] > 200 and pixel[0] < 60 and pixel[1] < 60


def test_format_helpers() -> None:
    assert output_format("jpeg", "same") == "jpeg"
    assert output_format("jpeg", "png") == "png"
    with pytest.raises(ValueError):
        output_format("jpeg", "gif")
    assert [media_type(f) for f in ("jpeg", "png", "webp")] == ["image/jpeg", "image/png", "image/webp"]
    assert [extension(f) for f in ("jpeg", "png", "webp")] == [".jpg", ".png", ".webp"]
