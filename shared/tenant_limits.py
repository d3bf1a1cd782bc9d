"""The limits that apply to a tenant (its own, else the service's) and what it is using now."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from shared.settings import Settings
from shared.states import ACTIVE
from shared.tables import Job, Tenant


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int
    max_active_jobs: int | None
    requests_per_minute: int | None
    storage_quota_bytes: int | None


def limits_for(tenant: Tenant, settings: Settings) -> Limits:
    upload = settings.max_upload_bytes
    if tenant.max_upload_bytes is not None:
        # A tenant may be allowed less than the service-wide cap, never more: the cap guards the servers.
        upload = min(upload, tenant.max_upload_bytes)
    return Limits(
        max_upload_bytes=upload,
        max_active_jobs=tenant.max_active_jobs or settings.max_active_jobs,
        requests_per_minute=tenant.requests_per_minute or settings.requests_per_minute,
        storage_quota_bytes=tenant.storage_quota_bytes or settings.storage_quota_bytes,
    )


def active_jobs(*, session: Session, tenant_id: str) -> int:
    return int(session.exec(
        select(func.count()).select_from(Job)
        .where(Job.tenant_id == tenant_id, col(Job.status).in_([s.value for s in ACTIVE]))
    ).one())


def storage_used(*, session: Session, tenant_id: str) -> int:
    inputs = session.exec(
        select(func.coalesce(func.sum(Job.input_bytes), 0))
        .where(Job.tenant_id == tenant_id, col(Job.input_key).is_not(None))
    ).one()
    outputs = session.exec(
        select(func.coalesce(func.sum(Job.output_bytes), 0))
        .where(Job.tenant_id == tenant_id, col(Job.output_key).is_not(None))
    ).one()
    return int(inputs or 0) + int(outputs or 0)
