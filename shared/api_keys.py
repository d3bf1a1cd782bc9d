"""API keys: random, shown once, stored only as a hash, compared in constant time.

A key reads `veil_<id>_<secret>`: the id finds the row without scanning, the secret (256 random bits) is
checked against its SHA-256. A slow password hash buys nothing for secrets this long.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from shared.scopes import Scope
from shared.tables import ApiKey, Tenant
from shared.timeutil import utcnow

PREFIX = "veil_"
ID_HEX = 16
# Compared against when the key id is unknown, so that a miss costs the same as a wrong secret.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()
LAST_USED_GRANULARITY = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    tenant_id: str
    key_id: str
    scopes: frozenset[str]


class ApiKeyError(Exception):
    """A management operation on keys that cannot be done (unknown tenant or key)."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parse(presented: str) -> tuple[str, str] | None:
    if not presented.startswith(PREFIX) or len(presented) < len(PREFIX) + ID_HEX + 2:
        return None
    key_id, sep, secret = presented[len(PREFIX):].partition("_")
    if sep != "_" or len(key_id) != ID_HEX or not secret:
        return None
    return key_id, secret


def create(*, session: Session, tenant_id: str, scopes: list[Scope], name: str | None = None,
           expires_at: datetime | None = None) -> tuple[ApiKey, str]:
    """Create a key; returns the row and the plaintext, which is never stored and cannot be shown again."""
    if session.get(Tenant, tenant_id) is None:
        raise ApiKeyError("no such tenant")
    if not scopes:
        raise ApiKeyError("a key needs at least one scope")
    key_id, secret = secrets.token_hex(ID_HEX // 2), secrets.token_urlsafe(32)
    row = ApiKey(id=key_id, tenant_id=tenant_id, name=name, secret_sha256=_hash(secret),
                 scopes=sorted({s.value for s in scopes}), expires_at=expires_at)
    session.add(row)
    session.commit()
    return row, f"{PREFIX}{key_id}_{secret}"


def authenticate(*, session: Session, presented: str) -> Principal | None:
    """The principal a presented key stands for, or None if it is unknown, wrong, revoked or expired."""
    parsed = _parse(presented)
    key_id, secret = parsed if parsed else ("", presented)
    row = session.get(ApiKey, key_id) if parsed else None
    matches = hmac.compare_digest(row.secret_sha256 if row else _DUMMY_HASH, _hash(secret))
    now = utcnow()
    if row is None or not matches or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= now:
        return None
    tenant = session.get(Tenant, row.tenant_id)
    if tenant is None or tenant.disabled:
        return None
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_GRANULARITY:
        row.last_used_at = now  # coarse, so that reads do not turn into a write per request
        session.add(row)
        session.commit()
    return Principal(tenant_id=row.tenant_id, key_id=row.id, scopes=frozenset(row.scopes))


def revoke(*, session: Session, key_id: str) -> ApiKey:
    row = session.get(ApiKey, key_id)
    if row is None:
        raise ApiKeyError("no such key")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.add(row)
        session.commit()
    return row


def list_keys(*, session: Session, tenant_id: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).order_by(col(ApiKey.tenant_id), col(ApiKey.created_at))
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    return list(session.exec(query))
