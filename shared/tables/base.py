"""The metadata every table registers on, with named constraints."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Column, MetaData
from sqlmodel import Field, SQLModel

from shared.timeutil import UTCDateTime

# Named constraints make migrations reviewable and let Alembic drop what it created.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata


def ts_field(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))
