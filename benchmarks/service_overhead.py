"""How much does the service cost on top of the engine?

Anonymizes the same photos twice in one run: through the service (HTTP upload, job row, broker, a real
worker process, polling, download) and with `veil anonymize`'s in-process engine. Prints both wall times
and their ratio, the service's overhead. Needs ../shared/data (not shipped with Veil).

    .venv/bin/python -m benchmarks.service_overhead [--mode production|embedded] [--limit N]

production: throwaway PostgreSQL + Redis (or VEIL_TEST_DATABASE_URL / VEIL_TEST_REDIS_URL), `veil api` and
one `veil worker` (concurrency 1) as separate processes. embedded: `veil serve` (SQLite, filesystem broker).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx

from benchmarks.processes import spawn, stop, wait_until

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO.parent / "shared" / "data" / "wider_face_val_street"


def image_paths(limit: int | None) -> list[Path]:
    coco = json.loads((DATASET / "dev.json").read_text())
    paths = [DATASET / "images" / img["file_name"] for img in coco["images"]]
    return paths[:limit] if limit else paths








@contextlib.contextmanager
def production_service(work: Path, port: int) -> Iterator[tuple[str, str]]:
    from tests.support.services import create_database, throwaway_postgres, throwaway_redis

    with contextlib.ExitStack() as stack:
        admin = os.environ.get("VEIL_TEST_DATABASE_URL") or stack.enter_context(throwaway_postgres())
        redis = os.environ.get("VEIL_TEST_REDIS_URL") or stack.enter_context(throwaway_redis())
        db = create_database(admin, f"veil_bench_{uuid.uuid4().hex[:8]}")
        env = {**os.environ, "VEIL_DATABASE_URL": db, "VEIL_BROKER_URL": redis,
               "VEIL_STORAGE_ROOT": str(work / "storage"), "VEIL_DATA_DIR": str(work / "data")}
        subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=REPO, env=env, check=True)
        key = make_key(env)
        worker = spawn(["worker", "--concurrency", "1"], env, work / "worker.log")
        api = spawn(["api", "--port", str(port)], env, work / "api.log")
        try:
            wait_until(lambda: b" ready." in (work / "worker.log").read_bytes(), 120, "the worker")
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, 60, "the API")
            yield f"http://127.0.0.1:{port}", key
        finally:
            stop(api)
            stop(worker)


@contextlib.contextmanager
def embedded_service(work: Path, port: int) -> Iterator[tuple[str, str]]:
    env = {**os.environ, "VEIL_DATA_DIR": str(work / "data"), "VEIL_API_PORT": str(port),
           "VEIL_REQUESTS_PER_MINUTE": "1000000"}
    serve = spawn(["serve"], env, work / "serve.log")
    try:
        wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
                   and b"ready." in (work / "serve.log").read_bytes(), 120, "veil serve")
        yield f"http://127.0.0.1:{port}", (work / "data" / "api-key").read_text().strip()
    finally:
        stop(serve)


def make_key(env: dict[str, str]) -> str:
    """A tenant with no rate limit and a key for it, made with the CLI as an operator would."""
    run = [sys.executable, "-m", "cli.main"]
    subprocess.run([*run, "tenants", "create", "bench", "--requests-per-minute", "1000000"], cwd=REPO, env=env,
                   check=True, capture_output=True)
    made = subprocess.run([*run, "keys", "create", "--tenant", "bench", "--scope", "admin"], cwd=REPO, env=env,
                          check=True, capture_output=True, text=True)
    return made.stdout.strip().splitlines()[-1]


def through_service(base: str, key: str, paths: list[Path], out: Path) -> tuple[float, dict[str, int]]:
    out.mkdir(parents=True, exist_ok=True)
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        start = time.perf_counter()
        ids = []
        for path in paths:
            with path.open("rb") as fh:
                response = client.post("/v1/jobs", files={"file": (path.name, fh)})
            response.raise_for_status()
            ids.append(response.json()["id"])
        statuses: dict[str, str] = {}
        # Jobs finish roughly in submission order: waiting on the oldest unfinished one keeps the poller
        # to about ten requests a second, so it does not steal the CPU the worker is measured on.
        for job_id in ids:
            while (body := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
                time.sleep(0.1)
            statuses[job_id] = body["status"]
            if body["status"] == "succeeded":
                (out / f"{job_id}.jpg").write_bytes(client.get(f"/v1/jobs/{job_id}/result").content)
        elapsed = time.perf_counter() - start
    counts: dict[str, int] = {}
    for status in statuses.values():
        counts[status] = counts.get(status, 0) + 1
    return elapsed, counts


def in_process(paths: list[Path], out: Path) -> float:
    from cli.anonymize_files import anonymize_files
    from shared.job_options import JobOptions
    from shared.settings import Settings
    from worker.image_job import engine_options

    start = time.perf_counter()
    outcomes = anonymize_files(paths, out, engine_options(JobOptions()), Settings(data_dir=out / ".data"),
                               show_progress=False)
    elapsed = time.perf_counter() - start
    assert not [o for o in outcomes if o.error_code], "in-process run had failures"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=["production", "embedded"], default="production")
    parser.add_argument("--limit", type=int, default=None, help="Only the first N images.")
    args = parser.parse_args()
    if not DATASET.is_dir():
        raise SystemExit(f"needs {DATASET} (the shared dev data); not found")
    from tests.support.services import free_port

    paths = image_paths(args.limit)
    work = Path(tempfile.mkdtemp(prefix="veil-bench-"))
    try:
        service = production_service if args.mode == "production" else embedded_service
        with service(work, free_port()) as (base, key):
            service_s, counts = through_service(base, key, paths, work / "service-out")
        engine_s = in_process(paths, work / "engine-out")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    n = len(paths)
    print(f"images: {n}  mode: {args.mode}  job outcomes: {counts}")
    print(f"{'path':<34}{'wall s':>9}{'img/s':>9}{'ms/img':>9}")
    print(f"{'service (upload..download)':<34}{service_s:>9.2f}{n / service_s:>9.2f}{1000 * service_s / n:>9.1f}")
    print(f"{'veil anonymize (in-process)':<34}{engine_s:>9.2f}{n / engine_s:>9.2f}{1000 * engine_s / n:>9.1f}")
    print(f"service / in-process: {service_s / engine_s:.2f}x")


if __name__ == "__main__":
    main()
