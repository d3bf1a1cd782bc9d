"""What does a /metrics scrape cost as the job table grows?

The API's gauges are computed at scrape time (counts by status and kind, the oldest queued job, open
subject requests, queue depths), so their cost grows with the tables. This fills a throwaway PostgreSQL
with N jobs and N/100 subject requests, then times /metrics against /readyz (which also asks PostgreSQL and
Redis, one round trip each) in the same process and run, and prints the medians and their ratio.

    .venv/bin/python -m benchmarks.metrics_scrape [--rows 10000 100000 300000] [--repeat 15]

VEIL_TEST_DATABASE_URL / VEIL_TEST_REDIS_URL point it at running servers; otherwise it starts throwaway ones.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import text
from sqlmodel import Session

from api.app import create_app
from shared import tenants
from shared.db import make_engine
from shared.migrate import upgrade
from shared.settings import Settings

TOKEN = "bench"

FILL = text("""
INSERT INTO job (id, tenant_id, kind, status, created_at, updated_at, attempts, max_attempts, options,
                 subject_ref_hashes, progress)
SELECT md5(:seed || g)::uuid, 'bench', CASE WHEN g % 10 = 0 THEN 'video' ELSE 'image' END,
       (ARRAY['succeeded','succeeded','succeeded','failed','queued','running','cancelled','dead'])[1 + g % 8],
       now() - (g || ' seconds')::interval, now(), 1, 3, '{}', '[]', 0
FROM generate_series(1, :n) AS g
""")
FILL_REQUESTS = text("""
INSERT INTO subject_request (id, tenant_id, type, status, subject_ref_hashes, job_ids, received_at, due_at,
                             extension_months, attempts, matched_job_ids)
SELECT md5('r' || :seed || g)::uuid, 'bench', CASE WHEN g % 2 = 0 THEN 'erasure' ELSE 'access' END,
       CASE WHEN g % 3 = 0 THEN 'received' ELSE 'completed' END, '[]', '[]', now(), now() + interval '20 days',
       0, 0, '[]'
FROM generate_series(1, :n) AS g
""")


def median_ms(client: TestClient, path: str, repeat: int) -> float:
    client.get(path)  # warm: connection pools, the registry
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000, 300_000])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()

    from tests.support.services import create_database, drop_database, throwaway_postgres, throwaway_redis

    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="veil-bench-") as tmp:
        admin = os.environ.get("VEIL_TEST_DATABASE_URL") or stack.enter_context(throwaway_postgres())
        redis = os.environ.get("VEIL_TEST_REDIS_URL") or stack.enter_context(throwaway_redis())
        name = f"veil_bench_{uuid.uuid4().hex[:8]}"
        stack.callback(drop_database, admin, name)
        settings = Settings(data_dir=Path(tmp), database_url=create_database(admin, name), broker_url=redis,
                            metrics_token=SecretStr(TOKEN), log_level="WARNING")
        engine = make_engine(settings)
        upgrade(engine)
        with Session(engine) as session:
            tenants.ensure(session=session, tenant_id="bench")
        client = stack.enter_context(TestClient(create_app(settings),
                                                headers={"Authorization": f"Bearer {TOKEN}"}))
        print(f"{'jobs':>9} {'/metrics ms':>12} {'/readyz ms':>11} {'ratio':>6}")
        total = 0
        for rows in sorted(args.rows):
            with engine.begin() as conn:
                conn.execute(FILL, {"n": rows - total, "seed": f"{rows}-"})
                conn.execute(FILL_REQUESTS, {"n": (rows - total) // 100, "seed": f"{rows}-"})
                conn.execute(text("ANALYZE job; ANALYZE subject_request"))
            total = rows
            metrics, ready = median_ms(client, "/metrics", args.repeat), median_ms(client, "/readyz", args.repeat)
            print(f"{rows:>9} {metrics:>12.1f} {ready:>11.1f} {metrics / ready:>6.2f}")


if __name__ == "__main__":
    main()
