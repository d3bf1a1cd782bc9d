"""The audit log: who (key id) did what (action) to which resource (id), when, with what outcome."""

from __future__ import annotations

from sqlmodel import Session

from shared.tables import AuditEvent


def record(*, session: Session, tenant_id: str, key_id: str | None, action: str, resource_type: str,
           resource_id: str | None = None, outcome: str = "ok", commit: bool = True) -> None:
    session.add(AuditEvent(tenant_id=tenant_id, key_id=key_id, action=action, resource_type=resource_type,
                           resource_id=resource_id, outcome=outcome))
    if commit:
        session.commit()
