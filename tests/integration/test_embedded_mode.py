"""The README's first command: `veil serve` on embedded defaults (SQLite, filesystem broker, local disk),
with a real worker process, and nothing but the repository and its virtual environment."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.images import astronaut_jpeg
from tests.support.services import free_port

REPO = Path(__file__).resolve().parents[2]


def test_serve_runs_a_job_end_to_end_without_external_services(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}
    env.update({"VEIL_API_PORT": str(port), "VEIL_DATA_DIR": str(tmp_path / "data"), "PYTHONUNBUFFERED": "1"})
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve"], cwd=tmp_path, env=env,
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc, tmp_path / "serve.log")
        key = (tmp_path / "data" / "api-key").read_text().strip()
        assert (tmp_path / "data" / "api-key").stat().st_mode & 0o077 == 0  # readable by its owner only
        auth = {"Authorization": f"Bearer {key}"}
        assert httpx.post(f"{base}/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}).status_code == 401
        job = httpx.post(f"{base}/v1/jobs", files={"file": ("a.jpg", astronaut_jpeg())}, headers=auth).json()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            body = httpx.get(f"{base}/v1/jobs/{job['id']}", headers=auth).json()
            if body["status"] not in ("queued", "running"):
                break
            time.sleep(0.2)
        assert body["status"] == "succeeded", body
        assert body["faces_found"] == 1
        result = httpx.get(f"{base}/v1/jobs/{job['id']}/result", headers=auth)
        assert result.status_code == 200 and result.content[:3] == b"\xff\xd8\xff"
        assert (tmp_path / "data" / "veil.db").is_file()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    marker = f"VEIL_DATA_DIR={tmp_path / 'data'}".encode()
    deadline = time.monotonic() + 30
    while (left := _processes_with_env(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not left, "veil serve left its worker running"
    output = (tmp_path / "serve.log").read_text(errors="replace")
    assert f"Veil is up: http://127.0.0.1:{port}" in output
    assert key in output  # printed once for the person who started it


def _processes_with_env(marker: bytes) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0") and b"Z" not in (
                        entry / "stat").read_bytes().split(b")")[-1][:3]:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _wait_ready(base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200 and " ready." in log.read_text(
                    errors="replace"):
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("veil serve did not become ready:\n" + log.read_text(errors="replace")[-3000:])
