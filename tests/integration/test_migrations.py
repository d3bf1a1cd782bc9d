"""The schema comes from Alembic alone: one head, upgrades from empty, and matches the models."""

from __future__ import annotations

import uuid

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from shared.db import make_engine
from shared.migrate import alembic_config, current_heads, upgrade
from shared.settings import Settings
from shared.tables import metadata
from tests.support.services import create_database, drop_database


def test_single_head() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1


def test_upgrade_from_empty_matches_models_on_postgres(pg_admin_url: str) -> None:
    name = f"veil_migrate_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_admin_url, name)
    try:
        engine = make_engine(Settings(database_url=url))
        upgrade(engine)
        script = ScriptDirectory.from_config(alembic_config(url))
        assert current_heads(engine) == set(script.get_heads())
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diff == []
        engine.dispose()
    finally:
        drop_database(pg_admin_url, name)


def test_upgrade_from_empty_matches_models_on_sqlite(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = make_engine(Settings(data_dir=tmp_path))
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    assert diff == []
