"""Webhook deliveries: an outbox row per status change to post, with its attempts recorded."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, String, Uuid
from sqlmodel import Field, SQLModel

from shared.tables.base import ts_field
from shared.timeutil import UTCDateTime, utcnow


class WebhookDelivery(SQLModel, table=True):
    __tablename__ = "webhook_delivery"
    __table_args__ = (Index("ix_webhook_delivery_due", "status", "next_attempt_at"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    tenant_id: str = Field(sa_column=Column(String(64), ForeignKey("tenant.id", ondelete="CASCADE"),
                                            nullable=False, index=True))
    job_id: uuid.UUID | None = Field(default=None, sa_column=Column(
        Uuid(), ForeignKey("job.id", ondelete="CASCADE"), nullable=True, index=True))
    url: str = Field(max_length=2048)
    event: str = Field(max_length=64)
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="pending", max_length=16)  # pending, delivered, failed
    attempts: int = Field(default=0, nullable=False)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    next_attempt_at: datetime | None = ts_field()
    delivered_at: datetime | None = ts_field()
    last_status_code: int | None = None
    last_error: str | None = Field(default=None, max_length=200)
