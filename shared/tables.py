"""Tables. Every row carries its tenant so that every query can be scoped by it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, Index, MetaData, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.states import JobStatus
from shared.timeutil import UTCDateTime, utcnow

# Named constraints make migrations reviewable and let Alembic drop what it created.
SQLModel.metadata.naming_convention = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata: MetaData = SQLModel.metadata

DEFAULT_TENANT = "default"


def _ts(nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_job_tenant_idempotency_key"),
        Index("ix_job_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_job_status_lease", "status", "lease_expires_at"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in JobStatus) + ")", name="status_known"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: str = Field(default=DEFAULT_TENANT, max_length=64, nullable=False)
    kind: str = Field(default="image", max_length=16, nullable=False)
    status: str = Field(default=JobStatus.queued.value, max_length=16, nullable=False)

    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    started_at: datetime | None = _ts()
    finished_at: datetime | None = _ts()
    last_published_at: datetime | None = _ts()

    attempts: int = Field(default=0, nullable=False)
    max_attempts: int = Field(default=3, nullable=False)
    lease_owner: str | None = Field(default=None, max_length=128)
    lease_expires_at: datetime | None = _ts()

    idempotency_key: str | None = Field(default=None, max_length=255)
    input_key: str | None = Field(default=None, max_length=512)
    input_media_type: str | None = Field(default=None, max_length=64)
    input_bytes: int | None = Field(default=None, sa_type=BigInteger)
    input_sha256: str | None = Field(default=None, max_length=64)
    input_expires_at: datetime | None = _ts()
    output_key: str | None = Field(default=None, max_length=512)
    output_media_type: str | None = Field(default=None, max_length=64)

    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Keyed hashes only: identifiers such as a driver id can be matched later but are never kept in clear.
    subject_ref_hashes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    progress: float = Field(default=0.0, nullable=False)
    faces_found: int | None = None
    detections: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    manifest: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    timings: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=500)
