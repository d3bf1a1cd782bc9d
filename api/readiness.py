"""Readiness beyond "it answers": will the broker keep queued messages, and is anyone taking jobs?

Both checks are advisory. They answer "ok", "degraded: <reason>" or "unknown: <reason>" and never raise:
a readiness probe that failed on them would pull every API process out of the load balancer because
Redis lacks persistence, which helps nobody. A dependency that is down is the other checks' business.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, literal, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from shared.settings import Settings
from shared.states import JobStatus
from shared.tables import Job
from shared.timeutil import utcnow

REDIS_SCHEMES = ("redis://", "rediss://")


def broker_durability(broker_url: str) -> str:
    """Whether Redis would keep the queue through a restart and under memory pressure."""
    import redis

    try:
        with redis.Redis.from_url(broker_url, socket_timeout=2, socket_connect_timeout=2) as client:
            config: dict[str, str] = {}
            for name in ("appendonly", "save", "maxmemory-policy"):
                config.update({str(k): str(v) for k, v in client.config_get(name).items()})
    except redis.ResponseError:  # CONFIG renamed or refused, as managed Redis services do
        return "unknown: CONFIG is not available; check persistence and maxmemory-policy with the provider"
    except Exception as exc:  # unreachable: the broker check reports that
        return f"unknown: {type(exc).__name__}"
    if not {"appendonly", "save", "maxmemory-policy"} <= config.keys():
        return "unknown: CONFIG GET did not report persistence and maxmemory-policy"
    problems = []
    if config["appendonly"] != "yes" and not config["save"].strip():
        problems.append("persistence is off (appendonly no, no save points): a restart loses queued messages")
    policy = config["maxmemory-policy"]
    # volatile-* policies evict only keys with a TTL; queue keys have none. allkeys-* may evict a queue.
    if policy.startswith("allkeys-"):
        problems.append(f"maxmemory-policy {policy} may evict queue keys (use noeviction)")
    return "degraded: " + "; ".join(problems) if problems else "ok"


def stall_seconds(settings: Settings) -> float:
    """How long jobs may wait with no claim at all before the workers count as not consuming.

    A busy worker claims its next job within the task time limit; a lost message is sent again within
    the republish delay plus one sweeper interval. Past both, nobody is taking jobs."""
    return settings.task_time_limit_seconds + settings.queued_republish_seconds + settings.reap_interval_seconds


def queue_health(engine: Engine, stall: float) -> str:
    """Degraded when jobs have waited longer than `stall` and no job was claimed within it (celery#8030:
    workers alive but no longer consuming). A backlog alone is not a stall: claims go on."""
    now = utcnow()
    cutoff = now - timedelta(seconds=stall)
    try:
        with engine.connect() as conn:
            # A queued job's updated_at is when it (re-)entered the queue. Both queries use the status index.
            oldest = conn.execute(
                select(func.min(col(Job.updated_at))).where(col(Job.status) == JobStatus.queued.value)
            ).scalar_one_or_none()
            if oldest is None or oldest >= cutoff:
                return "ok"
            # A live lease was claimed within the task time limit, so within `stall` (retries included,
            # which keep their first started_at). Cheap; the scan of started_at runs only when there is none.
            busy = conn.execute(select(literal(1)).where(
                col(Job.status) == JobStatus.running.value, col(Job.lease_expires_at) > now).limit(1)).first()
            claimed = busy or conn.execute(
                select(literal(1)).where(col(Job.started_at) >= cutoff).limit(1)).first()
    except Exception as exc:  # the database check reports an outage
        return f"unknown: {type(exc).__name__}"
    if claimed:
        return "ok"
    return f"degraded: jobs have waited over {stall:.0f} s and no job was claimed in that time"
