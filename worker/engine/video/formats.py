"""Video containers recognised by content, and the container each one is written back as."""

from __future__ import annotations

from typing import Final

VIDEO_FORMATS: Final = ("mp4", "mov", "mkv", "avi")

# format name -> (PyAV/FFmpeg muxer, output container). AVI cannot carry H.264 with B-frames reliably and has
# no per-frame timestamps (variable frame rate would not survive), so AVI input is written as Matroska, which
# also takes every audio codec AVI can hold (PCM, MP3, AC-3) unchanged; MP4 would refuse some of them.
OUTPUT_CONTAINERS: Final = {
    "mp4": ("mp4", "mp4"),
    "mov": ("mov", "mov"),
    "mkv": ("matroska", "mkv"),
    "avi": ("matroska", "mkv"),
}

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"
_QUICKTIME_FIRST_ATOMS = (b"moov", b"mdat", b"wide")


def sniff_video_format(head: bytes) -> str | None:
    """Return "mp4", "mov", "mkv" or "avi" from a file's first bytes (32 are enough), else None.

    ISO BMFF (MP4, M4V, MOV, 3GP) starts with a box size and `ftyp`; the QuickTime major brand `qt  ` is "mov".
    EBML covers Matroska and WebM (reported as "mkv"). RIFF with form type `AVI ` is AVI.
    """
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return "mov" if head[8:12] == b"qt  " else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_FIRST_ATOMS:  # pre-2001 QuickTime: no ftyp at all
        return "mov"
    if head[:4] == _EBML_MAGIC:
        return "mkv"
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    return None
