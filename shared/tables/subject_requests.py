"""Data-subject requests: what was asked, by when it is due, what was done and the proof of it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from shared.tables.base import ts_field
from shared.timeutil import UTCDateTime, utcnow

REQUEST_TYPES = ("erasure", "access")
REQUEST_STATUSES = ("received", "in_progress", "sweeping", "completed", "failed")


class SubjectRequest(SQLModel, table=True):
    __tablename__ = "subject_request"
    __table_args__ = (
        Index("ix_subject_request_tenant_received", "tenant_id", "received_at"),
        Index("ix_subject_request_status", "status", "sweep_after"),
        CheckConstraint("type IN ('erasure', 'access')", name="type_known"),
        CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in REQUEST_STATUSES) + ")", name="status_known"
        ),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: str = Field(sa_column=Column(String(64), ForeignKey("tenant.id", ondelete="CASCADE"),
                                            nullable=False))
    type: str = Field(max_length=16)
    status: str = Field(default="received", max_length=16)
    # The requester's own reference (a ticket number); returned to the tenant, never logged or receipted.
    reference: str | None = Field(default=None, max_length=200)

    # What to match: keyed hashes of the identifiers (never in clear), a recorded-at range, explicit job ids.
    subject_ref_hashes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    recorded_from: datetime | None = ts_field()
    recorded_to: datetime | None = ts_field()
    job_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))

    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    due_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    extension_months: int = Field(default=0, nullable=False)
    extension_reason: str | None = Field(default=None, max_length=1000)
    extended_at: datetime | None = ts_field()

    started_at: datetime | None = ts_field()
    sweep_after: datetime | None = ts_field()
    completed_at: datetime | None = ts_field()
    attempts: int = Field(default=0, nullable=False)
    error_code: str | None = Field(default=None, max_length=64)

    # Job ids the request matched (ids carry no personal data once the jobs are gone).
    matched_job_ids: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    receipt: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    receipt_sha256: str | None = Field(default=None, max_length=64)

    archive_key: str | None = Field(default=None, max_length=512)
    archive_expires_at: datetime | None = ts_field()
