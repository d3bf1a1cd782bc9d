"""The job state machine: which status may follow which, in one place."""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    dead = "dead"
    cancelled = "cancelled"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.dead, JobStatus.cancelled}
)
ACTIVE: frozenset[JobStatus] = frozenset({JobStatus.queued, JobStatus.running})

# running -> queued is the reaper taking back an expired lease; queued -> dead is a claim past the cap.
_ALLOWED: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.queued: frozenset({JobStatus.running, JobStatus.cancelled, JobStatus.dead}),
    JobStatus.running: frozenset(
        {JobStatus.succeeded, JobStatus.failed, JobStatus.dead, JobStatus.cancelled, JobStatus.queued}
    ),
    JobStatus.succeeded: frozenset(),
    JobStatus.failed: frozenset(),
    JobStatus.dead: frozenset(),
    JobStatus.cancelled: frozenset(),
}


class IllegalTransition(ValueError):
    pass


def can_transition(current: JobStatus, target: JobStatus) -> bool:
    return target in _ALLOWED[current]


def check_transition(current: JobStatus, target: JobStatus) -> None:
    if not can_transition(current, target):
        raise IllegalTransition(f"{current} -> {target} is not a legal job transition")


def sources_of(target: JobStatus) -> frozenset[JobStatus]:
    """The statuses from which `target` may be reached: the WHERE clause of a compare-and-set."""
    return frozenset(s for s, targets in _ALLOWED.items() if target in targets)
