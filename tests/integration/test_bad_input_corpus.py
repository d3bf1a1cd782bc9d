"""The bad-input corpus, through the whole service: every bad file is a 4xx problem at upload or a job that
ends `failed` with a specific reason code; nothing is retried, the worker survives, the next good job
succeeds, and a refused upload leaves nothing in storage. Generated here, never downloaded."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from shared.settings import Settings
from tests.images import astronaut_jpeg, astronaut_png
from tests.integration.conftest import WorkerProcess, stored_keys, wait_for_status


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_bomb() -> bytes:
    """A PNG that declares 100,000 x 100,000 pixels (10 gigapixels) in a few hundred bytes."""
    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def over_pixel_limit() -> bytes:
    """A real, valid, 1-bit PNG of 9,000 x 9,000 = 81 megapixels: over the default 80 megapixel limit."""
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")
    return buffer.getvalue()


def corrupt_jpeg_header() -> bytes:
    data = bytearray(astronaut_jpeg())
    data[4:40] = b"\xff" * 36  # the JFIF segment and quantisation tables: garbage after the magic bytes
    return bytes(data)


FAILING_JOBS = [
    ("truncated.jpg", lambda: astronaut_jpeg()[:5000], "corrupt_image"),
    ("truncated.png", lambda: astronaut_png()[:5000], "corrupt_image"),
    ("bad-header.jpg", corrupt_jpeg_header, "corrupt_image"),
    ("bomb.png", png_bomb, "image_too_large"),
    ("huge.png", over_pixel_limit, "image_too_large"),
]

REFUSED_UPLOADS = [
    ("empty.jpg", b"", 415, "unsupported_media_type"),
    ("notes.jpg", b"plain text, not a photo\n" * 20, 415, "unsupported_media_type"),
    ("clip.mp4", b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + b"\x00" * 64, 415, "unsupported_media_type"),
    ("truncated.mp4", b"\x00\x00\x00\x18ftypmp4", 415, "unsupported_media_type"),
]


@pytest.mark.parametrize(("name", "make", "reason"), FAILING_JOBS, ids=[f[0] for f in FAILING_JOBS])
def test_unreadable_images_fail_with_a_reason_and_the_worker_carries_on(
        client: TestClient, worker: WorkerProcess, name: str, make, reason: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/v1/jobs", files={"file": (name, make())})
    assert response.status_code == 202, response.text
    done = wait_for_status(client, response.json()["id"], {"succeeded", "failed", "dead"})
    assert (done["status"], done["error"]["code"], done["attempts"]) == ("failed", reason, 1)
    assert worker.alive()
    good = client.post("/v1/jobs", files={"file": ("ok.jpg", astronaut_jpeg())}).json()
    assert wait_for_status(client, good["id"], {"succeeded", "failed", "dead"})["status"] == "succeeded"


@pytest.mark.parametrize(("name", "data", "status", "code"), REFUSED_UPLOADS, ids=[r[0] for r in REFUSED_UPLOADS])
def test_refused_uploads_leave_nothing_behind(client: TestClient, settings: Settings, name: str, data: bytes,
                                              status: int, code: str) -> None:
    response = client.post("/v1/jobs", files={"file": (name, data)})
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert response.headers["content-type"].startswith("application/problem+json")
    assert stored_keys(settings) == []


def test_a_file_name_with_path_separators_and_invalid_utf8_is_harmless(
        client: TestClient, worker: WorkerProcess, settings: Settings) -> None:
    boundary = b"veilboundary"
    body = (b"--" + boundary + b"\r\n"
            b'Content-Disposition: form-data; name="file"; filename="../../etc/\xff\xfe/passwd.jpg"\r\n'
            b"Content-Type: image/jpeg\r\n\r\n" + astronaut_jpeg() + b"\r\n--" + boundary + b"--\r\n")
    response = client.post("/v1/jobs", content=body,
                           headers={"content-type": f"multipart/form-data; boundary={boundary.decode()}"})
    assert response.status_code == 202, response.text
    job_id = response.json()["id"]
    assert wait_for_status(client, job_id, {"succeeded", "failed"})["status"] == "succeeded"
    # The name is never used for storage: every object lives under Veil's own keys.
    assert all(key.startswith(f"outputs/{job_id}/") for key in stored_keys(settings))
    assert "passwd" not in client.get(f"/v1/jobs/{job_id}").text
