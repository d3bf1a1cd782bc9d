"""Chaos run: a mixed batch of images and videos through the real service while workers are SIGKILLed and
Redis restarts.

Real PostgreSQL and Redis (throwaway, or VEIL_TEST_DATABASE_URL / VEIL_TEST_REDIS_URL), `veil api`, N
workers (`veil worker --queues images,videos`) and one sweeper (`veil worker --beat --queues maintenance`), each a
separate process. While the batch is submitted and processed, a random image worker is SIGKILLed (with its
pool) every few seconds and started again, and Redis is restarted once, empty, as a Redis without
persistence comes back. At the end every job must be terminal; outputs are counted per job in storage.

    .venv/bin/python -m benchmarks.chaos [--workers 3] [--kill-every 3] [--min-kills 10] [--images 240]
                                         [--videos 10]

Images: ../shared/data/wider_face_val_street when present (else generated faces), plus generated PNGs,
6000x4000 JPEGs (seconds each, so kills land mid-job), truncated JPEGs (which must fail as corrupt_image) and
short generated H.264 clips with an AAC track.
Goal: 0 lost, 0 duplicated.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.processes import kill_group, spawn, stop, wait_until

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO.parent / "shared" / "data" / "wider_face_val_street"
TERMINAL = {"succeeded", "failed", "dead", "cancelled"}


# --- the batch -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    name: str
    data: bytes
    kind: str  # photo, png, large, corrupt, video


def make_video(seed: int, frames: int = 60, size: tuple[int, int] = (640, 360)) -> bytes:
    """A short H.264 clip with an AAC tone: the astronaut's face drifting across a noisy street stand-in."""
    import av
    import numpy as np
    from PIL import Image

    from tests.images import astronaut_rgb

    rng = np.random.default_rng(seed)
    face = np.asarray(Image.fromarray(astronaut_rgb()).resize((128, 128)))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = out.add_stream("aac", rate=44100)
        background = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        for i in range(frames):
            canvas = background.copy()
            x = 20 + (i * 7) % (size[0] - 170)
            canvas[100:228, x:x + 128] = face
            out.mux(video.encode(av.VideoFrame.from_ndarray(canvas, format="rgb24")))
        samples = (np.sin(np.arange(44100 * frames // 25) * 2 * np.pi * 440 / 44100) * 0.2).astype(np.float32)
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024].reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = 44100
            out.mux(audio.encode(frame))
        out.mux(video.encode(None))
        out.mux(audio.encode(None))
    return buffer.getvalue()


def make_batch(total: int, seed: int, videos: int = 0) -> list[Item]:
    import numpy as np
    from PIL import Image

    from tests.images import astronaut_jpeg, astronaut_png, astronaut_rgb

    rng = np.random.default_rng(seed)
    large, pngs, corrupt = max(1, total // 24), max(1, total // 12), max(1, total // 24)
    photos = total - large - pngs - corrupt
    items: list[Item] = []
    if DATASET.is_dir():
        coco = json.loads((DATASET / "dev.json").read_text())
        paths = [DATASET / "images" / img["file_name"] for img in coco["images"]][:photos]
        items += [Item(p.name, p.read_bytes(), "photo") for p in paths]
    face = astronaut_rgb()
    while len(items) < photos:  # generated stand-ins: the astronaut at random scales
        scale = float(rng.uniform(0.5, 2.0))
        size = (int(face.shape[1] * scale), int(face.shape[0] * scale))
        buffer = io.BytesIO()
        Image.fromarray(face).resize(size).save(buffer, format="JPEG", quality=90)
        items.append(Item(f"face-{len(items)}.jpg", buffer.getvalue(), "photo"))
    items += [Item(f"astronaut-{i}.png", astronaut_png(), "png") for i in range(pngs)]
    for i in range(large):
        small = rng.integers(0, 256, (500, 750, 3), dtype=np.uint8)
        canvas = np.asarray(Image.fromarray(small).resize((6000, 4000), Image.Resampling.BILINEAR)).copy()
        canvas[200:200 + face.shape[0], 300:300 + face.shape[1]] = face
        buffer = io.BytesIO()
        Image.fromarray(canvas).save(buffer, format="JPEG", quality=85)
        items.append(Item(f"large-{i}.jpg", buffer.getvalue(), "large"))
    items += [Item(f"cut-{i}.jpg", astronaut_jpeg()[:4000], "corrupt") for i in range(corrupt)]
    items += [Item(f"clip-{i}.mp4", make_video(seed + i), "video") for i in range(videos)]
    random.Random(seed).shuffle(items)
    return items











@dataclass
class Worker:
    slot: int
    env: dict[str, str]
    work: Path
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        self.log = self.work / f"worker-{self.slot}-{self.starts}.log"
        self.proc = spawn(["worker", "--queues", "images,videos", "--concurrency", "1"], self.env, self.log)

    def ready(self) -> bool:
        return (self.proc is not None and self.proc.poll() is None and self.log is not None
                and b" ready." in self.log.read_bytes())


@dataclass
class Chaos:
    kills: int = 0
    kills_mid_job: int = 0
    redis_restarts: int = 0
    restart_at: float | None = None
    events: list[str] = field(default_factory=list)


# --- the run ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def servers() -> Iterator[tuple[str, str, object]]:
    from tests.support.services import throwaway_postgres, throwaway_redis_server

    with contextlib.ExitStack() as stack:
        admin = os.environ.get("VEIL_TEST_DATABASE_URL") or stack.enter_context(throwaway_postgres())
        if url := os.environ.get("VEIL_TEST_REDIS_URL"):
            yield admin, url, None  # an outside Redis: not restarted
        else:
            redis = stack.enter_context(throwaway_redis_server())
            yield admin, redis.url, redis


def submit_all(base: str, key: str, items: list[Item], ids: dict[int, str], done: threading.Event) -> None:
    """Submit every item; a refused or failed request is retried with its Idempotency-Key, so it counts once."""
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        for index, item in enumerate(items):
            idem = f"chaos-{index}-{uuid.uuid4().hex[:8]}"
            for _ in range(60):
                try:
                    response = client.post("/v1/jobs", files={"file": (item.name, item.data)},
                                           headers={"Idempotency-Key": idem})
                except httpx.HTTPError:
                    time.sleep(1)
                    continue
                if response.status_code in (200, 202):
                    ids[index] = response.json()["id"]
                    break
                time.sleep(1)
    done.set()


def run(args: argparse.Namespace) -> int:
    from sqlalchemy import text

    from shared import api_keys, tenants
    from shared.db import make_engine
    from shared.scopes import Scope
    from shared.settings import Settings
    from shared.storage import LocalStorage
    from tests.support.services import create_database, free_port

    items = make_batch(args.images, args.seed, args.videos)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="veil-chaos-"))
    chaos = Chaos()
    procs: list[subprocess.Popen[bytes]] = []
    workers: list[Worker] = []
    try:
        with servers() as (admin, redis_url, redis_server):
            db = create_database(admin, f"veil_chaos_{uuid.uuid4().hex[:8]}")
            port = free_port()
            env = {**{k: v for k, v in os.environ.items() if not k.startswith("VEIL_")},
                   "VEIL_DATABASE_URL": db, "VEIL_BROKER_URL": redis_url, "PYTHONUNBUFFERED": "1",
                   "VEIL_STORAGE_ROOT": str(work / "storage"), "VEIL_DATA_DIR": str(work / "data"),
                   "VEIL_LEASE_SECONDS": "5", "VEIL_QUEUED_REPUBLISH_SECONDS": "3", "VEIL_REAP_INTERVAL_SECONDS": "1",
                   "VEIL_TASK_TIME_LIMIT_SECONDS": "60", "VEIL_VISIBILITY_TIMEOUT_SECONDS": "121",
                   "VEIL_ORT_THREADS": "1", "VEIL_REQUESTS_PER_MINUTE": "1000000", "VEIL_LOG_LEVEL": "INFO"}
            subprocess.run([sys.executable, "-m", "cli.main", "db", "upgrade"], cwd=REPO, env=env, check=True,
                           capture_output=True)
            settings = Settings(database_url=db, broker_url=redis_url, storage_root=work / "storage",
                                data_dir=work / "data", task_time_limit_seconds=60, visibility_timeout_seconds=121)
            engine = make_engine(settings)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            from sqlmodel import Session

            with Session(engine) as session:
                tenants.ensure(session=session, tenant_id="chaos")
                key = api_keys.create(session=session, tenant_id="chaos", scopes=[Scope.jobs_write, Scope.jobs_read])[1]

            sweeper = spawn(["worker", "--beat", "--queues", "maintenance", "--concurrency", "1"], env,
                            work / "sweeper.log")
            api = spawn(["api", "--port", str(port)], env, work / "api.log")
            procs += [sweeper, api]
            workers = [Worker(slot, env, work) for slot in range(args.workers)]
            for w in workers:
                w.start()
            base = f"http://127.0.0.1:{port}"
            wait_until(lambda: all(w.ready() for w in workers), 180, "the workers")
            wait_until(lambda: b" ready." in (work / "sweeper.log").read_bytes(), 180, "the sweeper")
            wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60, "the API")

            ids: dict[int, str] = {}
            submitted = threading.Event()
            started = time.monotonic()
            submitter = threading.Thread(target=submit_all, args=(base, key, items, ids, submitted), daemon=True)
            submitter.start()

            def unfinished() -> int:
                if not submitted.is_set():
                    return len(items)
                with engine.connect() as conn:
                    return int(conn.execute(text(
                        "SELECT count(*) FROM job WHERE status NOT IN ('succeeded','failed','dead','cancelled')"
                    )).scalar_one())

            def running_on(pid: int) -> bool:
                # Lease tokens are host:pid:random, with the pid of the pool process that claimed the job.
                pids = _children(pid) | {str(pid)}
                with engine.connect() as conn:
                    owners = conn.execute(text("SELECT lease_owner FROM job WHERE status = 'running'")).scalars()
                    return any(o.rsplit(":", 2)[1] in pids for o in owners if o)

            restart_after = max(2, args.min_kills // 3)
            next_kill = time.monotonic() + args.kill_every
            deadline = started + args.deadline
            while time.monotonic() < deadline:
                left = unfinished()
                if left == 0 and chaos.kills >= args.min_kills:
                    break
                if left == 0:  # the batch outran the chaos: note it, and stop
                    chaos.events.append(f"batch finished after only {chaos.kills} kills")
                    break
                if time.monotonic() >= next_kill:
                    ready = [w for w in workers if w.ready()]
                    if ready:
                        victim = rng.choice(ready)
                        assert victim.proc is not None
                        mid_job = running_on(victim.proc.pid)
                        kill_group(victim.proc)
                        chaos.kills += 1
                        chaos.kills_mid_job += mid_job
                        victim.start()
                    if chaos.kills == restart_after and not chaos.redis_restarts and redis_server is not None:
                        redis_server.restart()  # type: ignore[attr-defined]
                        chaos.redis_restarts += 1
                        chaos.restart_at = time.monotonic() - started
                    next_kill = time.monotonic() + args.kill_every
                time.sleep(0.2)
            elapsed = time.monotonic() - started
            submitter.join(timeout=5)

            # The sweeper's regular passes delete what killed attempts left; run one more to be sure.
            subprocess.run([sys.executable, "-m", "cli.main", "reap"], cwd=REPO, env=env, check=True,
                           capture_output=True)
            storage = LocalStorage(settings.resolved_storage_root)
            with engine.connect() as conn:
                rows = conn.execute(text(
                    "SELECT id, status, error_code, attempts, output_key FROM job")).all()
            by_id = {str(r.id): r for r in rows}
            return report(args, items, ids, by_id, storage, chaos, elapsed)
    finally:
        for w in workers:
            if w.proc is not None:
                kill_group(w.proc)
        for p in procs:
            stop(p)
        if args.keep:
            print(f"logs kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _children(pid: int) -> set[str]:
    found: set[str] = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found.update((task / "children").read_text().split())
    return found


def report(args: argparse.Namespace, items: list[Item], ids: dict[int, str], rows: dict, storage: object,
           chaos: Chaos, elapsed: float) -> int:
    outputs = {job: list(storage.list(f"outputs/{job}")) for job in rows}  # type: ignore[attr-defined]
    statuses = Counter(r.status for r in rows.values())
    reasons = Counter(r.error_code for r in rows.values() if r.status in ("failed", "dead"))
    not_submitted = len(items) - len(ids)
    lost = [j for j, r in rows.items() if r.status not in TERMINAL]
    lost += [j for j, r in rows.items() if r.status == "succeeded" and r.output_key not in outputs[j]]
    duplicated = [j for j, keys in outputs.items() if len(keys) > 1]
    corrupt_ok = all(rows[ids[i]].status == "failed" and rows[ids[i]].error_code == "corrupt_image"
                     for i, item in enumerate(items) if item.kind == "corrupt" and i in ids)
    attempts = Counter(r.attempts for r in rows.values())
    kinds = Counter(item.kind for item in items)
    print(f"workers: {args.workers}  batch: {dict(kinds)}  seed: {args.seed}")
    print(f"kills (SIGKILL, worker and pool): {chaos.kills}  of them mid-job: {chaos.kills_mid_job}  "
          f"Redis restarts: {chaos.redis_restarts}"
          + (f" (at {chaos.restart_at:.0f} s)" if chaos.restart_at is not None else ""))
    for event in chaos.events:
        print(f"note: {event}")
    table = [
        ("jobs submitted", len(ids)),
        ("succeeded", statuses["succeeded"]),
        ("failed", statuses["failed"]),
        ("dead", statuses["dead"]),
        ("lost", len(lost) + not_submitted),
        ("duplicated outputs", len(duplicated)),
        ("time taken (s)", f"{elapsed:.1f}"),
    ]
    for label, value in table:
        print(f"{label:<22}{value:>10}")
    print(f"failure reasons: {dict(reasons) or '-'}  (corrupt inputs all failed as corrupt_image: {corrupt_ok})")
    unfinished_by_kind = Counter((item.kind, rows[ids[i]].status) for i, item in enumerate(items)
                                 if i in ids and rows[ids[i]].status != "succeeded")
    print(f"not succeeded, by input kind: {dict(unfinished_by_kind) or '-'}")
    print(f"attempts per job: {dict(sorted(attempts.items()))}")
    ok = not lost and not not_submitted and not duplicated and corrupt_ok
    print("RESULT:", "ok (0 lost, 0 duplicated)" if ok else "FAILED")
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--images", type=int, default=240)
    parser.add_argument("--videos", type=int, default=10, help="Short clips (60 frames, 640x360, with audio).")
    parser.add_argument("--kill-every", type=float, default=3.0, help="Seconds between SIGKILLs.")
    parser.add_argument("--min-kills", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=1200, help="Give up after this many seconds.")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the logs and storage folder.")
    args = parser.parse_args()
    sys.exit(run(args))


if __name__ == "__main__":
    main()
