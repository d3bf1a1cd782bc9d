"""Bad input gets a 4xx application/problem+json with a stable code, and leaves nothing in storage."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.app import FORM_OVERHEAD_BYTES, create_app
from shared.settings import Settings
from tests.images import astronaut_jpeg, astronaut_png
from tests.integration.conftest import stored_keys


def assert_problem(response, status: int, code: str) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["title"]


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("empty.jpg", b"", "unsupported_media_type"),
        ("notes.jpg", b"this is a text file, not a photo\n" * 10, "unsupported_media_type"),
        ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, "unsupported_media_type"),
    ],
)
def test_files_that_are_not_images_are_refused(client: TestClient, settings: Settings, name: str,
                                               data: bytes, code: str) -> None:
    assert_problem(client.post("/v1/jobs", files={"file": (name, data)}), 415, code)
    assert stored_keys(settings) == []


def test_a_png_named_jpg_is_judged_by_content(client: TestClient) -> None:
    response = client.post("/v1/jobs", files={"file": ("photo.jpg", astronaut_png())})
    assert response.status_code == 202 and response.json()["input_media_type"] == "image/png"


@pytest.mark.parametrize(
    ("options", "code"),
    [
        ("{not json", "invalid_options"),
        ('{"mask": "smudge"}', "invalid_options"),
        ('{"colour": "red"}', "invalid_options"),
        ('{"padding": {"width": 9}}', "invalid_options"),
        ('{"threshold": 2}', "invalid_options"),
        ('{"targets": []}', "invalid_options"),
    ],
)
def test_invalid_options_are_refused(client: TestClient, settings: Settings, options: str, code: str) -> None:
    response = client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}, data={"options": options})
    assert_problem(response, 422, code)
    assert stored_keys(settings) == []


@pytest.mark.parametrize("refs", ["[1, 2]", '"driver"', '{"driver": {"id": 1}}', '{"driver": ""}', "{oops"])
def test_invalid_subject_refs_are_refused(client: TestClient, refs: str) -> None:
    response = client.post("/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}, data={"subject_refs": refs})
    assert_problem(response, 422, "invalid_subject_refs")


def test_missing_file_field(client: TestClient) -> None:
    assert_problem(client.post("/v1/jobs", data={"options": "{}"}), 422, "file_missing")


def test_malformed_multipart(client: TestClient) -> None:
    response = client.post("/v1/jobs", content=b"--x\r\nbroken", headers={
        "content-type": "multipart/form-data; boundary=x"})
    assert response.status_code in (400, 422) and response.json()["code"] in ("malformed_multipart", "file_missing")


def test_upload_over_the_limit_is_413_and_stores_nothing(settings: Settings, api_key: str) -> None:
    small = settings.model_copy(update={"max_upload_bytes": 10_000})
    with TestClient(create_app(small), headers={"Authorization": f"Bearer {api_key}"}) as client:
        big = astronaut_jpeg()
        assert 10_000 < 40_000 < len(big) and 2 * len(big) > 10_000 + FORM_OVERHEAD_BYTES
        # Declared length over the limit plus the form overhead: refused before reading.
        assert_problem(client.post("/v1/jobs", files={"file": ("big.jpg", big * 2)}), 413, "payload_too_large")
        # Under the middleware's allowance but over the file limit: refused while streaming to storage.
        assert_problem(client.post("/v1/jobs", files={"file": ("big.jpg", big[:40_000])}), 413,
                       "payload_too_large")
    assert stored_keys(settings) == []


def test_unknown_job_and_bad_ids(client: TestClient) -> None:
    assert_problem(client.get("/v1/jobs/00000000-0000-0000-0000-000000000000"), 404, "job_not_found")
    assert_problem(client.get("/v1/jobs/not-a-uuid"), 422, "validation_error")
    assert_problem(client.get("/v1/jobs", params={"status": "exploded"}), 422, "validation_error")
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"  # the test Redis runs without persistence, and it says so
    checks = ready.json()["checks"]
    assert checks.pop("broker_durability").startswith("degraded: persistence is off")
    assert checks == {"database": "ok", "broker": "ok", "storage": "ok", "queue": "ok"}


def test_readiness_reports_a_broker_that_is_down(settings: Settings) -> None:
    from tests.support.services import free_port

    down = settings.model_copy(update={"broker_url": f"redis://127.0.0.1:{free_port()}/0"})
    with TestClient(create_app(down)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("error")
    assert response.json()["checks"]["database"] == "ok"
