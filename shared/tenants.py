"""Tenants: the customers whose jobs never mix."""

from __future__ import annotations

import re
import secrets

from sqlmodel import Session, col, select

from shared.tables import Tenant

TENANT_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


class TenantError(Exception):
    pass


def create(*, session: Session, tenant_id: str, name: str | None = None, max_upload_bytes: int | None = None,
           max_active_jobs: int | None = None, requests_per_minute: int | None = None,
           storage_quota_bytes: int | None = None) -> Tenant:
    if not TENANT_ID.match(tenant_id):
        raise TenantError("tenant ids are 2-63 characters of a-z, 0-9 and '-', starting with a letter or digit")
    if session.get(Tenant, tenant_id) is not None:
        raise TenantError("that tenant exists already")
    tenant = Tenant(id=tenant_id, name=name or tenant_id, max_upload_bytes=max_upload_bytes,
                    max_active_jobs=max_active_jobs, requests_per_minute=requests_per_minute,
                    storage_quota_bytes=storage_quota_bytes, webhook_secret=new_webhook_secret())
    session.add(tenant)
    session.commit()
    return tenant


def ensure(*, session: Session, tenant_id: str, name: str | None = None) -> Tenant:
    return session.get(Tenant, tenant_id) or create(session=session, tenant_id=tenant_id, name=name)


def new_webhook_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def webhook_secret(*, session: Session, tenant_id: str) -> str:
    """The tenant's signing secret, made on first use for tenants created before webhooks existed."""
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise TenantError("no such tenant")
    if tenant.webhook_secret is None:
        tenant.webhook_secret = new_webhook_secret()
        session.add(tenant)
        session.commit()
    return tenant.webhook_secret


def list_tenants(*, session: Session) -> list[Tenant]:
    return list(session.exec(select(Tenant).order_by(col(Tenant.id))))
