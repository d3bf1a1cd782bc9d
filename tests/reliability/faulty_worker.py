"""`veil worker` with a probe (and optionally a fault) wired into the engine, for the reliability tests.

    python -m tests.reliability.faulty_worker --queues images --concurrency 1

RELIABILITY_TRACE (a folder): every engine run appends `start <job> <pid>`, then `end <job> <pid>` (or
`abort ...` when it raised) to `trace.log` there, and holds an exclusive flock on `<job>.lock` while it
runs. A run that finds the lock taken writes `parallel <job> <pid>`: two live processes working on one
job at once. The kernel drops the lock of a killed process, so a crash never looks like a parallel run.

RELIABILITY_FAULT: `die` (the process SIGKILLs itself inside every image, as an OOM kill or a segfault
would) or `raise` (every image raises an error the worker cannot tell from a transient one).

The patch is made in the worker's main process, before Celery forks, so every pool child inherits it.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
from pathlib import Path
from typing import Any

from worker.engine.pipeline import ImageAnonymizer

TRACE_FILE = "trace.log"


def _record(folder: Path, line: str) -> None:
    # One write() of a short line to an O_APPEND file: lines from concurrent processes never interleave.
    fd = os.open(folder / TRACE_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def install(trace: str | None, fault: str | None) -> None:
    original = ImageAnonymizer.run

    def run(self: ImageAnonymizer, src: Path, *args: Any, **kwargs: Any) -> Any:
        job = Path(src).parent.name  # storage_root/inputs/<job id>/original
        folder = Path(trace) if trace else None
        lock_fd: int | None = None
        if folder is not None:
            lock_fd = os.open(folder / f"{job}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                _record(folder, f"parallel {job} {os.getpid()}")
            _record(folder, f"start {job} {os.getpid()}")
        outcome = "abort"
        try:
            if fault == "die":
                os.kill(os.getpid(), signal.SIGKILL)
            if fault == "raise":
                raise RuntimeError("injected fault")
            result = original(self, src, *args, **kwargs)
            outcome = "end"
            return result
        finally:
            if folder is not None and lock_fd is not None:
                _record(folder, f"{outcome} {job} {os.getpid()}")
                os.close(lock_fd)  # releases the flock

    ImageAnonymizer.run = run  # type: ignore[method-assign]


if __name__ == "__main__":
    install(os.environ.get("RELIABILITY_TRACE"), os.environ.get("RELIABILITY_FAULT"))
    from cli.main import app

    app(["worker", *sys.argv[1:]], prog_name="veil")
