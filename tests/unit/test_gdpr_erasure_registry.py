"""shared/gdpr/erasure_registry.py: every table is classified, and each place erases and verifies (SQLite)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from shared import tenants
from shared.db import make_engine
from shared.gdpr.erasure_registry import (
    NO_SUBJECT_DATA,
    REGISTRY,
    SubjectDataPlace,
    place_names,
    registered_tables,
    unclassified_tables,
)
from shared.settings import Settings
from shared.storage import LocalStorage, input_key, output_key
from shared.tables import Job, SubjectRequest, WebhookDelivery, metadata
from shared.timeutil import utcnow
from shared.webhook_outbox import enqueue_job_event


def test_every_table_is_a_place_or_says_why_it_holds_no_subject_data() -> None:
    # A new table fails here until it is registered as a place or listed, with its reason, in NO_SUBJECT_DATA.
    assert unclassified_tables(metadata.tables) == set()


def test_an_unclassified_table_is_caught() -> None:
    assert unclassified_tables([*metadata.tables, "driver_profile"]) == {"driver_profile"}


def test_no_table_is_both_a_place_and_free_of_subject_data() -> None:
    assert registered_tables() & set(NO_SUBJECT_DATA) == set()
    assert registered_tables() == {"job", "webhook_delivery"}
    assert set(NO_SUBJECT_DATA) - {"alembic_version"} <= set(metadata.tables)
    assert all(reason.strip() for reason in NO_SUBJECT_DATA.values())


def test_places_are_named_once_and_ordered_children_before_parents() -> None:
    names = place_names()
    assert len(names) == len(set(names))
    assert names.index("table:webhook_delivery") < names.index("table:job")
    assert names.index("store:outputs") < names.index("table:job")
    assert names.index("store:inputs") < names.index("table:job")
    assert {p.verify_method for p in REGISTRY if p.kind == "table"} == {"re-query"}
    assert {p.verify_method for p in REGISTRY if p.kind == "store"} == {"re-list"}


@pytest.fixture
def ctx(tmp_path: Path) -> SimpleContext:
    engine = make_engine(Settings(data_dir=tmp_path))
    metadata.create_all(engine)
    with Session(engine) as session:
        tenants.create(session=session, tenant_id="acme")
    return SimpleContext(engine=engine, storage=LocalStorage(tmp_path / "storage"))


class SimpleContext:
    def __init__(self, engine: Engine, storage: LocalStorage) -> None:
        self.engine, self.storage = engine, storage


def add_job(ctx: SimpleContext, tmp_path: Path, outputs: int = 2) -> uuid.UUID:
    job_id = uuid.uuid4()
    with Session(ctx.engine) as session:
        session.add(Job(id=job_id, tenant_id="acme", callback_url="https://receiver.example/hook",
                        subject_ref_hashes=["h"]))
        session.commit()
    with ctx.engine.begin() as conn:
        enqueue_job_event(conn, job_id, "running")
    source = tmp_path / "blob"
    source.write_bytes(b"pixels")
    ctx.storage.put_file(input_key(str(job_id)), source)
    for attempt in range(outputs):
        ctx.storage.put_file(output_key(str(job_id), f"attempt{attempt}", ".jpg"), source)
    return job_id


def place(name: str) -> SubjectDataPlace:
    return next(p for p in REGISTRY if p.name == name)


def count(engine: Engine, table: type[Job] | type[WebhookDelivery]) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_each_place_erases_only_the_given_jobs_and_verifies_to_zero(ctx: SimpleContext, tmp_path: Path) -> None:
    gone, kept = add_job(ctx, tmp_path), add_job(ctx, tmp_path, outputs=1)
    expected = {"store:outputs": 2, "store:inputs": 1, "table:webhook_delivery": 1, "table:job": 1,
                "store:access_archives": 0}
    assert {p.name: p.verify(ctx, [gone]) for p in REGISTRY} == expected
    assert {p.name: p.erase(ctx, [gone]) for p in REGISTRY} == expected
    assert {p.name: p.verify(ctx, [gone]) for p in REGISTRY} == dict.fromkeys(expected, 0)
    # Running it again finds nothing more.
    assert {p.name: p.erase(ctx, [gone]) for p in REGISTRY} == dict.fromkeys(expected, 0)
    assert sorted(ctx.storage.list("")) == sorted([input_key(str(kept)), output_key(str(kept), "attempt0", ".jpg")])
    assert count(ctx.engine, Job) == 1 and count(ctx.engine, WebhookDelivery) == 1
    assert place("table:job").verify(ctx, [kept]) == 1


def test_access_archives_holding_an_erased_job_are_removed(ctx: SimpleContext, tmp_path: Path) -> None:
    job, other = add_job(ctx, tmp_path), add_job(ctx, tmp_path)
    holding = SubjectRequest(tenant_id="acme", type="access", status="completed", due_at=utcnow(),
                             matched_job_ids=[str(other), str(job)], archive_key="pending")
    unrelated = SubjectRequest(tenant_id="acme", type="access", status="completed", due_at=utcnow(),
                               matched_job_ids=[str(other)], archive_key="pending")
    ids = holding.id, unrelated.id
    with Session(ctx.engine) as session:
        session.add_all([holding, unrelated])
        session.commit()
    source = tmp_path / "zip"
    source.write_bytes(b"PK")
    for rid in ids:
        ctx.storage.put_file(f"access/{rid}/archive.zip", source)
    archives = place("store:access_archives")
    assert archives.verify(ctx, [job]) == 1
    assert archives.erase(ctx, [job]) == 1
    assert archives.verify(ctx, [job]) == 0
    assert list(ctx.storage.list("access/")) == [f"access/{ids[1]}/archive.zip"]
    with Session(ctx.engine) as session:
        kept_key = {r.id: r.archive_key for r in session.exec(select(SubjectRequest))}
    assert kept_key == {ids[0]: None, ids[1]: "pending"}
