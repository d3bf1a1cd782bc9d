"""Keep a claimed job's lease alive while it is being processed, and notice when it is taken away."""

from __future__ import annotations

import logging
import threading
from types import TracebackType

from sqlalchemy.engine import Engine

from shared.job_claims import Claim, renew

log = logging.getLogger("veil.worker")


class LeaseKeeper:
    """A background heartbeat. `lost` is set once a renewal finds the job no longer ours
    (cancelled, erased, or taken over after we stalled): the work should stop, and its output go."""

    def __init__(self, engine: Engine, claim: Claim, *, lease_seconds: int) -> None:
        self._engine, self._claim, self._lease = engine, claim, lease_seconds
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._progress: float | None = None
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def report(self, progress: float) -> None:
        self._progress = progress

    def _run(self) -> None:
        interval = max(0.5, self._lease / 3)
        while not self._stop.wait(interval):
            try:
                if not renew(self._engine, self._claim, lease_seconds=self._lease, progress=self._progress):
                    self.lost.set()
                    return
            except Exception as exc:  # a database blip: the lease still has time left, try again
                log.warning("lease renewal failed", extra={"error": type(exc).__name__})

    def __enter__(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
