"""Image decoding and encoding with Pillow: format by content, size limit before decode, no metadata out."""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from worker.engine.errors import CORRUPT_IMAGE, IMAGE_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, EngineError

FORMATS = ("jpeg", "png", "webp")
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_MEDIA_TYPE = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}
_EXTENSION = {"jpeg": ".jpg", "png": ".png", "webp": ".webp"}
SNIFF_BYTES = 16


def sniff_image_format(head: bytes) -> str | None:
    """The format from magic bytes; a file's name or declared type is never trusted."""
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


@dataclass
class DecodedImage:
    bgr: np.ndarray
    format: str
    width: int
    height: int
    # Kept apart from the pixels so write_image can re-embed it only when asked (keep_metadata=True).
    icc_profile: bytes | None = None


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit greyscale: Pillow's convert() clips at 255 (a white image); scale to 8 bits instead.
        arr = np.asarray(im, dtype=np.float64) / 257.0
        im = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.rint(np.asarray(im)), 0, 255).astype(np.uint8))
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        # Composite onto white rather than drop alpha: fully transparent pixels can still hold an image
        # (a hidden face) that would reappear, unmasked, in an output without alpha.
        rgba = im.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return im.convert("RGB")


def read_image(path: Path | str, *, max_pixels: int) -> DecodedImage:
    path = Path(path)
    with path.open("rb") as fh:
        fmt = sniff_image_format(fh.read(SNIFF_BYTES))
    if fmt is None:
        raise EngineError(UNSUPPORTED_MEDIA_TYPE, "only JPEG, PNG and WebP images are supported")
    try:
        with Image.open(path, formats=[_PIL_FORMAT[fmt]]) as im:
            # Image.open reads only the header, so the limit applies before any pixel buffer exists.
            if im.width * im.height > max_pixels:
                raise EngineError(IMAGE_TOO_LARGE, f"image has more than {max_pixels} pixels")
            icc = im.info.get("icc_profile") or None
            im.load()  # LOAD_TRUNCATED_IMAGES is left False, so truncated data raises here
            upright = ImageOps.exif_transpose(im)
            rgb = np.asarray(_to_rgb(upright))
    except Image.DecompressionBombError as exc:
        # Pillow's own guard (2x Image.MAX_IMAGE_PIXELS) fires inside Image.open, before our check.
        raise EngineError(IMAGE_TOO_LARGE, "image exceeds the decoder's pixel limit") from exc
    except (OSError, SyntaxError, ValueError, EOFError, zlib.error) as exc:
        raise EngineError(CORRUPT_IMAGE, f"the {fmt} data is corrupt or truncated") from exc
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    return DecodedImage(bgr=bgr, format=fmt, width=bgr.shape[1], height=bgr.shape[0], icc_profile=icc)


def write_image(
    path: Path | str,
    bgr: np.ndarray,
    fmt: str,
    *,
    jpeg_quality: int = 92,
    keep_metadata: bool = False,
    icc_profile: bytes | None = None,
) -> None:
    """Encode `bgr` as `fmt` with no EXIF, GPS, XMP or comments: the image is rebuilt from bare pixels.

    keep_metadata=True re-embeds only `icc_profile`: it describes the camera's colour space (wide-gamut
    photos look wrong without it) and holds no time, place or owner data, unlike EXIF/XMP.
    `jpeg_quality` also sets WebP's lossy quality. The file is written beside `path` and renamed into place
    so a reader never sees a half-written image.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unsupported output format {fmt!r}")
    path = Path(path)
    im = Image.fromarray(np.ascontiguousarray(bgr[:, :, ::-1]))
    params: dict[str, object] = {}
    if fmt in ("jpeg", "webp"):
        params["quality"] = jpeg_quality
    if keep_metadata and icc_profile:
        params["icc_profile"] = icc_profile
    tmp = path.with_name(f".{path.name}.part")
    try:
        im.save(tmp, format=_PIL_FORMAT[fmt], **params)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def output_format(input_format: str, requested: str = "same") -> str:
    fmt = input_format if requested == "same" else requested
    if fmt not in FORMATS:
        raise ValueError(f"unsupported output format {fmt!r}")
    return fmt


def media_type(fmt: str) -> str:
    return _MEDIA_TYPE[fmt]


def extension(fmt: str) -> str:
    """File extension with its dot, e.g. ".jpg"."""
    return _EXTENSION[fmt]
