"""The job table: one row per anonymization job, the record of where it stands."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Column, ForeignKey, Index, String, UniqueConstraint
from sqlmodel import Field, SQLModel

from shared.states import JobStatus
from shared.tables.base import ts_field as _ts
from shared.timeutil import UTCDateTime, utcnow


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_job_tenant_idempotency_key"),
        Index("ix_job_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_job_status_lease", "status", "lease_expires_at"),
        Index("ix_job_tenant_recorded", "tenant_id", "recorded_at"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s.value}'" for s in JobStatus) + ")", name="status_known"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: str = Field(sa_column=Column(String(64), ForeignKey("tenant.id", ondelete="CASCADE"), nullable=False))
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
    output_bytes: int | None = Field(default=None, sa_type=BigInteger)
    output_expires_at: datetime | None = _ts()
    # When the footage was recorded, as the uploader says: lets erasure match "vehicle X, 08:00-09:00".
    recorded_at: datetime | None = _ts()
    callback_url: str | None = Field(default=None, max_length=2048)

    options: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # Keyed hashes only: identifiers such as a driver id can be matched later but are never kept in clear.
    subject_ref_hashes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    progress: float = Field(default=0.0, nullable=False)
    faces_found: int | None = None
    plates_found: int | None = None
    detections: list[dict[str, Any]] | None = Field(default=None, sa_column=Column(JSON))
    manifest: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    timings: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

    error_code: str | None = Field(default=None, max_length=64)
    error_message: str | None = Field(default=None, max_length=500)
