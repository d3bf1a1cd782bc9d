"""Every place subject data lives, each with an erase and a verify step: the map an erasure follows.

A place is given the ids of the jobs a request matched (already scoped to the request's tenant) and erases
what hangs off them. `verify` re-queries or re-lists and returns what is still there; 0 is the proof.
Places run in registry order, objects before the rows that name them: an object whose row is gone is
invisible to everything but an erasure, so a pass that stops half-way leaves rows, not strays (the next pass
starts again from the matched ids stored on the request either way).

A table that holds subject data and is not a place here fails tests/unit/test_gdpr_erasure_registry.py; a
table without subject data says why in NO_SUBJECT_DATA. Other stores were considered in NOT_A_PLACE.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Engine

from shared.storage import Storage
from shared.tables import metadata

CHUNK = 500  # ids per statement: keeps IN lists and their bind parameters small
# Where worker.gdpr_access keeps an access request's archive (`access/<request id>/archive.zip`).
ACCESS_PREFIX = "access"


class ErasureContext(Protocol):
    @property
    def engine(self) -> Engine: ...

    @property
    def storage(self) -> Storage: ...


Step = Callable[[ErasureContext, Sequence[uuid.UUID]], int]


@dataclass(frozen=True)
class SubjectDataPlace:
    name: str
    kind: Literal["table", "store"]
    erase: Step  # deletes; returns how many rows or objects it removed
    verify: Step  # re-queries or re-lists; returns how many remain (0: verified)
    table: str | None = None  # for tables: the SQL name the completeness test checks

    @property
    def verify_method(self) -> str:
        return "re-query" if self.kind == "table" else "re-list"


def _chunks(ids: Sequence[uuid.UUID]) -> Iterator[list[uuid.UUID]]:
    for start in range(0, len(ids), CHUNK):
        yield list(ids[start:start + CHUNK])


def _rows(table_name: str, column: str) -> tuple[Step, Step]:
    """Erase and verify for rows of `table_name` whose `column` is one of the job ids."""
    table = metadata.tables[table_name]
    key = table.c[column]

    def erase(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> int:
        removed = 0
        with ctx.engine.begin() as conn:
            for chunk in _chunks(job_ids):
                removed += conn.execute(delete(table).where(key.in_(chunk))).rowcount
        return removed

    def verify(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> int:
        with ctx.engine.connect() as conn:
            return sum(conn.execute(select(func.count()).select_from(table).where(key.in_(chunk))).scalar_one()
                       for chunk in _chunks(job_ids))

    return erase, verify


def _objects(top: str) -> tuple[Step, Step]:
    """Erase and verify for every object under `<top>/<job id>/`.

    Every key is listed and deleted, whatever its name: all attempts' outputs, partial or losing ones
    included. LocalStorage keeps no versions (a delete unlinks the file); S3Storage lists every key that any
    version still holds and deletes every version and delete marker, so verify sees what a plain listing hides."""

    def keys(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> list[str]:
        return [key for job in job_ids for key in ctx.storage.list(f"{top}/{job}/")]

    def erase(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> int:
        return sum(1 for key in keys(ctx, job_ids) if ctx.storage.delete(key))

    def verify(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> int:
        return len(keys(ctx, job_ids))

    return erase, verify


def _access_archives() -> tuple[Step, Step]:
    """Access archives (Art. 15 copies: job records and anonymized outputs) of requests that matched any of
    the jobs. Every key under `access/<request id>/` goes, whatever the archive's expiry; the row keeps its
    expiry time and forgets the key, so it reads as an archive that is gone."""
    requests = metadata.tables["subject_request"]

    def holding(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
        wanted = {str(j) for j in job_ids}
        with ctx.engine.connect() as conn:
            rows = conn.execute(select(requests.c.id, requests.c.matched_job_ids)
                                .where(requests.c.type == "access")).all()
        # JSON lists are compared here rather than in SQL, to stay portable across PostgreSQL and SQLite.
        return [row.id for row in rows if wanted & set(row.matched_job_ids or [])]

    def keys(ctx: ErasureContext, request_ids: Sequence[uuid.UUID]) -> list[str]:
        return [key for rid in request_ids for key in ctx.storage.list(f"{ACCESS_PREFIX}/{rid}/")]

    def erase(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> int:
        found = holding(ctx, job_ids)
        removed = sum(1 for key in keys(ctx, found) if ctx.storage.delete(key))
        with ctx.engine.begin() as conn:
            for chunk in _chunks(found):
                conn.execute(update(requests).where(requests.c.id.in_(chunk)).values(archive_key=None))
        return removed

    def verify(ctx: ErasureContext, job_ids: Sequence[uuid.UUID]) -> int:
        return len(keys(ctx, holding(ctx, job_ids)))

    return erase, verify


def _place(name: str, kind: Literal["table", "store"], steps: tuple[Step, Step], table: str | None = None
           ) -> SubjectDataPlace:
    return SubjectDataPlace(name=name, kind=kind, erase=steps[0], verify=steps[1], table=table)


# The storage's temporary area is not a place: it is not per job. LocalStorage writes every object to
# `.tmp/<random>` and renames it into place or unlinks it in a `finally` block, so a temp file outlives its
# write only when the process is killed mid-write (SIGKILL, power loss), and then carries no job id to match.
REGISTRY: tuple[SubjectDataPlace, ...] = (
    _place("store:access_archives", "store", _access_archives()),  # copies first, then what they copy
    _place("store:outputs", "store", _objects("outputs")),  # masked images, every attempt's
    _place("store:inputs", "store", _objects("inputs")),  # the unmasked originals
    # Outbox rows carry the job's callback URL and status; the job's foreign key would cascade them, but
    # they are erased (and counted) as a place of their own, before the job rows.
    _place("table:webhook_delivery", "table", _rows("webhook_delivery", "job_id"), table="webhook_delivery"),
    # The row holds the subject-ref hashes, recorded_at, detections (face boxes), manifest and timings.
    _place("table:job", "table", _rows("job", "id"), table="job"),
)

NO_SUBJECT_DATA: dict[str, str] = {
    "tenant": "the customer (the controller), its limits and webhook secret; nothing about a data subject",
    "api_key": "key ids, hashed secrets, scopes and times of the customer's keys; nothing about a data subject",
    "audit_event": "key id, action, resource type and id, time and outcome only; never file names or "
                   "subject identifiers (a job id left behind points at nothing once the job is erased)",
    "alembic_version": "the schema revision",
    "subject_request": "the request itself: keyed hashes of the identifiers asked about (never in clear), the "
                       "range and job ids asked for, and the receipt. It is the controller's record that the "
                       "request was received and answered (Art. 5(2), 12), so an erasure keeps it; the receipt "
                       "copies none of the criteria. Access archives it points at expire on their own",
}

# Other stores that were checked for subject data and hold none that an erasure must remove.
NOT_A_PLACE: dict[str, str] = {
    "storage .tmp/": "write-then-rename temporaries, unlinked in a finally block; not attributable to a job",
    "worker temp directories": "the worker's per-job TemporaryDirectory, removed when the job's attempt ends",
    "thumbnails": "none are made",
    "detections": "kept only in the job row (job.detections), erased with it",
    "redis": "Celery messages carry job and request ids only, results are not stored, and the rate limiter "
             "counts per tenant; no image, identifier or hash is cached",
    "object versions": "LocalStorage keeps none; S3Storage's delete removes every version and delete marker, "
                       "and its listing shows keys only older versions hold, so the store places cover them",
    "logs": "carry ids, reason codes and exception types only (tests/integration/test_no_personal_data_in_logs.py)",
}


def unclassified_tables(table_names: Iterable[str]) -> set[str]:
    """Tables that are neither a place nor explained in NO_SUBJECT_DATA: each one is a gap in erasure."""
    return set(table_names) - registered_tables() - set(NO_SUBJECT_DATA)


def place_names() -> list[str]:
    return [place.name for place in REGISTRY]


def registered_tables() -> set[str]:
    return {place.table for place in REGISTRY if place.table is not None}
