"""shared/timeutil.py: UTC timestamps through SQLite."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Engine
from sqlalchemy.exc import StatementError

from shared.timeutil import UTCDateTime, utcnow

metadata = MetaData()
stamps = Table("stamps", metadata, Column("id", Integer, primary_key=True), Column("at", UTCDateTime()))


@pytest.fixture
def engine() -> Engine:
    eng = create_engine("sqlite://")
    metadata.create_all(eng)
    return eng


def test_round_trip_returns_aware_utc(engine: Engine) -> None:
    given = datetime(2024, 3, 10, 23, 30, 15, 250000, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    with engine.begin() as conn:
        conn.execute(insert(stamps).values(id=1, at=given))
        back = conn.execute(select(stamps.c.at).where(stamps.c.id == 1)).scalar_one()
    assert back == given
    assert back.tzinfo is UTC
    assert back.utcoffset() == timedelta(0)
    assert (back.year, back.month, back.day, back.hour, back.minute) == (2024, 3, 10, 18, 0)


def test_none_round_trips(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(insert(stamps).values(id=1, at=None))
        assert conn.execute(select(stamps.c.at)).scalar_one() is None


def test_naive_datetime_refused_on_bind(engine: Engine) -> None:
    with engine.begin() as conn, pytest.raises(StatementError) as info:
        conn.execute(insert(stamps).values(id=1, at=datetime(2024, 1, 1, 12, 0)))
    assert isinstance(info.value.orig, ValueError)
    assert "naive" in str(info.value.orig)


def test_comparisons_use_utc_instant_not_local_text(engine: Engine) -> None:
    east = timezone(timedelta(hours=9))
    west = timezone(timedelta(hours=-8))
    early = datetime(2024, 1, 1, 20, 0, tzinfo=east)  # 11:00 UTC
    late = datetime(2024, 1, 1, 4, 0, tzinfo=west)    # 12:00 UTC
    with engine.begin() as conn:
        conn.execute(insert(stamps), [{"id": 1, "at": early}, {"id": 2, "at": late}])
        ordered = conn.execute(select(stamps.c.id).order_by(stamps.c.at)).scalars().all()
        cutoff = datetime(2024, 1, 1, 11, 30, tzinfo=UTC)
        after = conn.execute(select(stamps.c.id).where(stamps.c.at > cutoff)).scalars().all()
    assert ordered == [1, 2]
    assert after == [2]


def test_non_sqlite_dialect_keeps_aware_utc() -> None:
    given = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    bound = UTCDateTime().process_bind_param(given, postgresql.dialect())
    assert bound is not None
    assert bound.tzinfo is UTC
    assert bound.hour == 10


def test_result_value_converts_aware_to_utc() -> None:
    aware = datetime(2024, 1, 1, 12, 0, tzinfo=timezone(timedelta(hours=-3)))
    out = UTCDateTime().process_result_value(aware, postgresql.dialect())
    assert out is not None
    assert out.tzinfo is UTC
    assert out.hour == 15


def test_utcnow_is_aware_utc() -> None:
    now = utcnow()
    assert now.tzinfo is UTC
    assert abs(datetime.now(UTC) - now) < timedelta(seconds=5)
