"""A photo through the real service: API -> Postgres -> Redis -> celery worker -> storage -> API."""

from __future__ import annotations

import time

import numpy as np
from fastapi.testclient import TestClient

from shared.settings import Settings
from tests.images import astronaut_jpeg, astronaut_png, astronaut_rgb, decode_rgb, encode
from tests.integration.conftest import WorkerProcess, stored_keys, wait_for_status
from tests.unit.plate_fixtures import plate_frame
from worker.engine.masking import pad_boxes


def submit(client: TestClient, data: bytes, name: str = "photo.png", **form: str):  # type: ignore[no-untyped-def]
    return client.post("/v1/jobs", files={"file": (name, data, "application/octet-stream")}, data=form)


def test_photo_is_anonymized_end_to_end(client: TestClient, worker: WorkerProcess, settings: Settings) -> None:
    response = submit(client, astronaut_png(), options='{"mask": "solid", "format": "png"}',
                      subject_refs='{"vehicle": "WAG-123", "drive": 7}')
    assert response.status_code == 202, response.text
    job = response.json()
    assert response.headers["location"] == f"/v1/jobs/{job['id']}"
    assert job["status"] == "queued"

    done = wait_for_status(client, job["id"], {"succeeded", "failed", "dead"})
    assert done["status"] == "succeeded", done
    assert done["faces_found"] == 1
    assert done["plates_found"] is not None  # counted on every succeeded job (the plate test checks the value)
    assert done["attempts"] == 1
    model = done["manifest"]["models"][0]
    assert model["name"] == "yunet_n" and model["licence"] == "Apache-2.0" and len(model["sha256"]) == 64
    assert done["manifest"]["mask"] == "solid" and done["manifest"]["software_version"]

    detections = client.get(f"/v1/jobs/{job['id']}/detections").json()["detections"]
    assert len(detections) == 1 and detections[0]["label"] == "face" and detections[0]["score"] > 0.5

    result = client.get(f"/v1/jobs/{job['id']}/result")
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    before, after = astronaut_rgb(), decode_rgb(result.content)
    assert after.shape == before.shape
    # The padding the worker used: the face detector's calibrated one, recorded in the manifest.
    padding = done["manifest"]["tasks"]["face"]["padding"]
    x1, y1, x2, y2 = pad_boxes(np.array([detections[0]["box"]], np.float32), before.shape, **padding)[0]
    changed = np.any(before != after, axis=2)
    # The whole padded face box is masked, and not one pixel outside it differs.
    assert changed[y1:y2, x1:x2].mean() > 0.9
    changed[y1:y2, x1:x2] = False
    assert not changed.any()

    # Data minimisation: the original is deleted right after the job is finalized as succeeded (never before:
    # a worker that loses the job to another must leave the input for the winner), so allow a moment for it.
    deadline = time.monotonic() + 10
    while client.get(f"/v1/jobs/{job['id']}").json()["input_retained"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get(f"/v1/jobs/{job['id']}").json()["input_retained"] is False
    mine = [key for key in stored_keys(settings) if job["id"] in key]
    assert len(mine) == 1 and mine[0].startswith(f"outputs/{job['id']}/")
    # Subject identifiers are stored only as keyed hashes: nothing in the API echoes them.
    assert "WAG-123" not in client.get(f"/v1/jobs/{job['id']}").text


def test_plates_found_is_counted_in_the_job_view_and_the_list(client: TestClient, worker: WorkerProcess) -> None:
    rgb = np.ascontiguousarray(plate_frame()[..., ::-1])  # the fixture is BGR, as OpenCV draws it
    job = submit(client, encode(rgb), options='{"format": "png"}').json()
    done = wait_for_status(client, job["id"], {"succeeded", "failed", "dead"})
    assert done["status"] == "succeeded", done
    labels = [d["label"] for d in client.get(f"/v1/jobs/{job['id']}/detections").json()["detections"]]
    assert labels == ["plate"]
    assert (done["plates_found"], done["faces_found"]) == (1, 0)
    listed = {item["id"]: item for item in client.get("/v1/jobs").json()["items"]}
    assert listed[job["id"]]["plates_found"] == 1


def test_jpeg_keeps_its_format_and_sheds_metadata(client: TestClient, worker: WorkerProcess) -> None:
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x010F] = "DashCam Co"  # Make
    exif[0x8825] = {1: "N", 2: (52.0, 31.0, 0.0)}  # GPS latitude
    buffer = io.BytesIO()
    Image.fromarray(astronaut_rgb()).save(buffer, "JPEG", exif=exif)
    job = submit(client, buffer.getvalue(), "in.jpg").json()
    done = wait_for_status(client, job["id"], {"succeeded", "failed", "dead"})
    assert done["status"] == "succeeded" and done["output_media_type"] == "image/jpeg"
    out = Image.open(io.BytesIO(client.get(f"/v1/jobs/{job['id']}/result").content))
    assert out.format == "JPEG"
    assert len(out.getexif()) == 0


def test_idempotency_key_returns_the_same_job(client: TestClient, worker: WorkerProcess,
                                               settings: Settings) -> None:
    headers = {"Idempotency-Key": "upload-2026-11-30-0001"}
    data = astronaut_jpeg()
    first = client.post("/v1/jobs", files={"file": ("a.jpg", data)}, headers=headers)
    second = client.post("/v1/jobs", files={"file": ("a.jpg", data)}, headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["id"] == second.json()["id"]
    other = client.post("/v1/jobs", files={"file": ("b.png", astronaut_png())}, headers=headers)
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    wait_for_status(client, first.json()["id"], {"succeeded"})
    # The replays stored nothing of their own.
    assert all(first.json()["id"] in key for key in stored_keys(settings))


def test_corrupt_image_fails_with_reason_and_worker_survives(client: TestClient, worker: WorkerProcess) -> None:
    truncated = astronaut_jpeg()[:4000]
    bad = submit(client, truncated, "cut.jpg").json()
    failed = wait_for_status(client, bad["id"], {"succeeded", "failed", "dead"})
    assert failed["status"] == "failed" and failed["error"]["code"] == "corrupt_image"
    assert failed["attempts"] == 1  # bad input is not retried
    assert client.get(f"/v1/jobs/{bad['id']}/result").status_code == 409
    assert worker.alive()
    good = submit(client, astronaut_jpeg(), "ok.jpg").json()
    assert wait_for_status(client, good["id"], {"succeeded", "failed"})["status"] == "succeeded"


def test_list_jobs_paginates_with_a_cursor_and_filters(client: TestClient, worker: WorkerProcess) -> None:
    ids = [submit(client, astronaut_jpeg(quality=70 + i), f"{i}.jpg").json()["id"] for i in range(5)]
    for job_id in ids:
        wait_for_status(client, job_id, {"succeeded"})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/v1/jobs", params=params).json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))  # newest first, each exactly once
    assert client.get("/v1/jobs", params={"status": "failed"}).json()["items"] == []
    assert len(client.get("/v1/jobs", params={"status": "succeeded"}).json()["items"]) == 5
    bad = client.get("/v1/jobs", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_cursor"


def test_delete_removes_input_and_output(client: TestClient, worker: WorkerProcess, settings: Settings) -> None:
    job = submit(client, astronaut_jpeg(), "x.jpg").json()
    wait_for_status(client, job["id"], {"succeeded"})
    assert stored_keys(settings)
    assert client.delete(f"/v1/jobs/{job['id']}").status_code == 204
    assert stored_keys(settings) == []
    assert client.get(f"/v1/jobs/{job['id']}/result").status_code == 409
    assert client.delete(f"/v1/jobs/{uuid_zero()}").status_code == 404


def uuid_zero() -> str:
    return "00000000-0000-0000-0000-000000000000"
