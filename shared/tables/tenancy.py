"""Tenants, their API keys, and the audit log of what each key did."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Index, String
from sqlmodel import Field, SQLModel

from shared.tables.base import ts_field
from shared.timeutil import UTCDateTime, utcnow


class Tenant(SQLModel, table=True):
    __tablename__ = "tenant"

    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    disabled: bool = Field(default=False, nullable=False)
    # None: the service-wide setting applies.
    max_upload_bytes: int | None = Field(default=None, sa_type=BigInteger)
    max_active_jobs: int | None = None
    requests_per_minute: int | None = None
    storage_quota_bytes: int | None = Field(default=None, sa_type=BigInteger)
    # Kept in clear because signing needs it; it authenticates Veil to the tenant, it opens nothing here.
    webhook_secret: str | None = Field(default=None, max_length=128)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_key"

    id: str = Field(primary_key=True, max_length=32)
    tenant_id: str = Field(sa_column=Column(String(64), ForeignKey("tenant.id", ondelete="CASCADE"),
                                            nullable=False, index=True))
    name: str | None = Field(default=None, max_length=200)
    secret_sha256: str = Field(max_length=64)
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    expires_at: datetime | None = ts_field()
    revoked_at: datetime | None = ts_field()
    last_used_at: datetime | None = ts_field()


class AuditEvent(SQLModel, table=True):
    """Who did what: key id, action, resource id, time, outcome. Never file names or subject identifiers."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_tenant_at", "tenant_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime(), nullable=False))
    tenant_id: str = Field(max_length=64)
    key_id: str | None = Field(default=None, max_length=32)
    action: str = Field(max_length=64)
    resource_type: str = Field(max_length=32)
    resource_id: str | None = Field(default=None, max_length=64)
    outcome: str = Field(default="ok", max_length=32)
