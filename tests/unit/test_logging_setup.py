"""JSON log lines from structlog and from stdlib loggers, with bound ids and no exception texts."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import structlog
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.request_log import RequestLogMiddleware
from shared.logging_setup import JsonFormatter, configure_logging
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    configure_logging("INFO")
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    structlog.contextvars.clear_contextvars()
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        structlog.contextvars.clear_contextvars()


def records(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_a_library_logger_comes_out_as_json_with_extra_and_bound_ids(lines: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(job_id="j-1")
    logging.getLogger("some.library").warning("disk at %d%%", 91, extra={"queue": "images"})
    [entry] = records(lines)
    assert entry["msg"] == "disk at 91%" and entry["level"] == "warning" and entry["logger"] == "some.library"
    assert entry["queue"] == "images" and entry["job_id"] == "j-1"
    assert list(entry)[:4] == ["ts", "level", "logger", "msg"]


def test_structlog_events_share_the_format(lines: io.StringIO) -> None:
    structlog.contextvars.bind_contextvars(request_id="r-1")
    structlog.get_logger("veil.test").info("job accepted", kind="image", bytes=12)
    [entry] = records(lines)
    assert entry == {"ts": entry["ts"], "level": "info", "logger": "veil.test", "msg": "job accepted",
                     "kind": "image", "bytes": 12, "request_id": "r-1"}


def test_exceptions_keep_their_type_and_lose_their_text(lines: io.StringIO) -> None:
    for log in (logging.getLogger("lib"), structlog.get_logger("veil.test")):
        try:
            raise FileNotFoundError("/uploads/Jane-Doe.jpg")
        except FileNotFoundError:
            log.exception("read failed")
    out = lines.getvalue()
    assert "Jane-Doe" not in out and "Traceback" not in out
    assert [e["exc_type"] for e in records(lines)] == ["FileNotFoundError", "FileNotFoundError"]


def test_the_level_filters_both_kinds(lines: io.StringIO) -> None:
    configure_logging("WARNING")
    try:
        logging.getLogger("lib").info("quiet")
        structlog.get_logger("veil.test").info("quiet too")
        structlog.get_logger("veil.test").error("loud")
    finally:
        configure_logging("INFO")
    assert [e["msg"] for e in records(lines)] == ["loud"]


def test_configuring_twice_adds_one_handler() -> None:
    configure_logging("INFO")
    configure_logging("INFO")
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    assert len(ours) == 1


def test_every_line_of_a_request_carries_its_request_id(lines: io.StringIO) -> None:
    app = FastAPI()
    app.add_middleware(RequestLogMiddleware)

    @app.get("/things/{thing_id}")
    def thing(thing_id: str) -> dict[str, str]:  # sync: runs in a worker thread, as most of our routes do
        logging.getLogger("veil.api").info("thing read")
        return {"ok": thing_id}

    with TestClient(app) as client:
        response = client.get("/things/Jane-Doe?name=Jane-Doe")
    request_id = response.headers["X-Request-ID"]
    uuid.UUID(request_id)
    ours = [e for e in records(lines) if e["logger"] in ("veil.api", "veil.access")]
    assert [e["msg"] for e in ours] == ["thing read", "request"]
    assert {e["request_id"] for e in ours} == {request_id}
    assert ours[1]["route"] == "/things/{thing_id}" and ours[1]["status"] == 200
    # httpx logs the test's own client side; the service's lines hold no path values or query strings.
    assert not any("Jane-Doe" in json.dumps(e) for e in records(lines) if e["logger"] != "httpx")


def test_a_real_api_process_writes_only_json_lines(tmp_path: Path) -> None:
    """uvicorn's own loggers included: `veil api` hands them to the root JSON handler."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    env.update(VEIL_DATA_DIR=str(tmp_path), PYTHONUNBUFFERED="1")
    log = (tmp_path / "api.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "api", "--port", str(port)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=log)
    try:
        answered = None
        for _ in range(300):
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert answered is not None and answered.status_code == 200
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        log.close()
    lines = (tmp_path / "api.log").read_text().splitlines()
    entries = [json.loads(line) for line in lines]  # every line, or this raises
    loggers = {e["logger"] for e in entries}
    assert {"uvicorn.error", "veil.access"} <= loggers, loggers
    assert any(e["logger"] == "veil.access" and e["route"] == "/healthz" and e["request_id"] for e in entries)
