"""Per-tenant request rate limits: a fixed one-minute window, in Redis when there is one.

With Redis every API process shares the count; on the embedded defaults a process-local count does.
A limiter that cannot reach Redis lets requests through: losing rate limiting for a while is better than
refusing every customer while the broker restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("veil.api")
WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int  # seconds until the window resets; 0 when allowed


class RateLimiter(Protocol):
    def hit(self, key: str, limit: int) -> Decision: ...


def _window(now: float) -> tuple[int, int]:
    start = int(now // WINDOW_SECONDS) * WINDOW_SECONDS
    return start, max(1, start + WINDOW_SECONDS - int(now))


class MemoryRateLimiter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, int], int] = {}

    def hit(self, key: str, limit: int) -> Decision:
        start, retry_after = _window(time.time())
        with self._lock:
            self._counts = {k: v for k, v in self._counts.items() if k[1] == start}
            count = self._counts.get((key, start), 0) + 1
            self._counts[(key, start)] = count
        return Decision(count <= limit, 0 if count <= limit else retry_after)


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)

    def hit(self, key: str, limit: int) -> Decision:
        start, retry_after = _window(time.time())
        name = f"veil:rate:{key}:{start}"
        try:
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, WINDOW_SECONDS + 5)
            count = int(pipe.execute()[0])
        except Exception as exc:  # fail open: see the module docstring
            log.warning("rate limiter unavailable", extra={"error": type(exc).__name__})
            return Decision(True, 0)
        return Decision(count <= limit, 0 if count <= limit else retry_after)


def make_rate_limiter(broker_url: str) -> RateLimiter:
    return RedisRateLimiter(broker_url) if broker_url.startswith(("redis://", "rediss://")) else MemoryRateLimiter()
