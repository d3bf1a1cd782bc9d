"""Worker metrics: recorded in forked children, summed and served by the main process (multiprocess mode).

Runs in a fresh interpreter: multiprocess mode is process-wide state that must not leak into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.services import free_port
from worker.metrics import WorkerMetrics

REPO = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import json, multiprocessing, os, sys, urllib.request
from celery.signals import worker_process_shutdown
from shared.settings import Settings
from worker.metrics_server import enable_multiprocess, serve

folder = enable_multiprocess()
from worker.metrics import WorkerMetrics  # after enabling, as `veil worker` does
metrics = WorkerMetrics()

def child(seconds, provider, exits_cleanly):
    metrics.set_provider(provider)
    metrics.observe_job("image", "succeeded", seconds)
    metrics.observe_video_fps(12.5)
    if exits_cleanly:  # what Celery's pool does for a child that shuts down
        worker_process_shutdown.send(sender=None, pid=os.getpid(), exitcode=0)

fork = multiprocessing.get_context("fork")
for args in ((0.2, "CPUExecutionProvider", False), (3.0, "CUDAExecutionProvider", True)):
    p = fork.Process(target=child, args=args)
    p.start(); p.join()
port = int(sys.argv[1])
serve(Settings(worker_metrics_port=port), folder)
text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
print(json.dumps({"text": text, "folder": str(folder)}))
"""


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_children_are_summed_and_an_exited_child_drops_its_provider() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VEIL_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(free_port())], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    s = samples(out["text"])
    job = frozenset({("kind", "image"), ("outcome", "succeeded")})
    assert s[("veil_job_processing_seconds_count", job)] == 2
    assert abs(s[("veil_job_processing_seconds_sum", job)] - 3.2) < 1e-9
    assert s[("veil_job_processing_seconds_bucket", job | {("le", "0.25")})] == 1
    assert s[("veil_video_fps_count", frozenset())] == 2
    # The child that went through Celery's shutdown signal no longer reports its provider; the other does.
    assert s[("veil_worker_execution_provider", frozenset({("provider", "CPUExecutionProvider")}))] == 1
    assert ("veil_worker_execution_provider", frozenset({("provider", "CUDAExecutionProvider")})) not in s
    assert not Path(out["folder"]).exists()  # removed when the main process exited


def test_single_process_mode_records_into_a_registry() -> None:
    registry = CollectorRegistry()
    metrics = WorkerMetrics(registry)
    metrics.observe_job("video", "failed", 42.0)
    metrics.observe_video_fps(0.0)  # nothing finished: not an observation
    metrics.set_provider("CPUExecutionProvider")
    s = samples(generate_latest(registry).decode())
    assert s[("veil_job_processing_seconds_count", frozenset({("kind", "video"), ("outcome", "failed")}))] == 1
    assert s[("veil_video_fps_count", frozenset())] == 0
    assert s[("veil_worker_execution_provider", frozenset({("provider", "CPUExecutionProvider")}))] == 1
