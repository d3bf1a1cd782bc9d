"""A full run's logs, API and worker, hold no file names, subject identifiers or client addresses."""

from __future__ import annotations

import io
import logging
import time

from fastapi.testclient import TestClient

from shared.logging_setup import JsonFormatter
from tests.images import astronaut_jpeg
from tests.integration.conftest import WorkerProcess, wait_for_status

IDENTIFIERS = ["Jane-Doe", "DRV-998877", "B-XY-1234", "testclient", "secret-route-token"]


def test_logs_of_a_full_run_hold_no_personal_data(client: TestClient, subject_client: TestClient,
                                                   worker: WorkerProcess) -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    # httpx logs the test's own client side; everything else is the service speaking.
    handler.addFilter(lambda record: not record.name.startswith("httpx"))
    root = logging.getLogger()
    root.addHandler(handler)
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    worker_log_start = len(worker.output())
    try:
        refs = '{"driver": "DRV-998877", "vehicle": "B-XY-1234"}'
        good = client.post("/v1/jobs", files={"file": ("Jane-Doe_2026-03-03.jpg", astronaut_jpeg())},
                           data={"subject_refs": refs}).json()
        bad = client.post("/v1/jobs", files={"file": ("Jane-Doe-broken.jpg", astronaut_jpeg()[:3000])},
                          data={"subject_refs": refs}).json()
        wait_for_status(client, good["id"], {"succeeded"})
        wait_for_status(client, bad["id"], {"failed"})
        client.get(f"/v1/jobs/{good['id']}/result")
        client.get("/v1/jobs", params={"cursor": "secret-route-token"})
        client.post("/v1/jobs", files={"file": ("Jane-Doe.txt", b"hello")}, data={"subject_refs": refs})
        client.post("/v1/jobs", files={"file": ("Jane-Doe.jpg", astronaut_jpeg())},
                    data={"subject_refs": '{"driver": {"nested": "DRV-998877"}}'})
        # Data-subject requests name the same people: an access request and an erasure, through the worker.
        subject = {"subject_refs": {"driver": "DRV-998877", "vehicle": "B-XY-1234"}}
        access = subject_client.post("/v1/subject-requests", json={
            "type": "access", "subject": subject, "reference": "Jane-Doe ticket 7"}).json()
        erasure = subject_client.post("/v1/subject-requests", json={
            "type": "erasure", "subject": subject, "reference": "Jane-Doe ticket 8"}).json()
        for request_id, done in ((access["id"], {"completed"}), (erasure["id"], {"sweeping", "completed"})):
            _wait_request(subject_client, request_id, done)
        client.delete(f"/v1/jobs/{good['id']}")
    finally:
        root.removeHandler(handler)
        root.setLevel(previous_level)
    api_logs = buffer.getvalue()
    worker_logs = worker.output()[worker_log_start:]
    assert '"logger": "veil.access"' in api_logs and "job accepted" in api_logs  # the capture did capture
    assert good["id"] in worker_logs and "gdpr.erase" in worker_logs and "gdpr.access" in worker_logs
    for identifier in IDENTIFIERS:
        assert identifier not in api_logs, identifier
        assert identifier not in worker_logs, identifier


def _wait_request(client: TestClient, request_id: str, statuses: set[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.get(f"/v1/subject-requests/{request_id}").json()["status"] in statuses:
            return
        time.sleep(0.1)
    raise AssertionError(f"subject request did not reach {statuses}")
