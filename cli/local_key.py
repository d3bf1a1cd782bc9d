"""The embedded service's own tenant and key, so that `veil serve` works with one command."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from shared import api_keys, tenants
from shared.scopes import Scope
from shared.settings import Settings

LOCAL_TENANT = "local"


@dataclass(frozen=True)
class LocalKey:
    value: str
    path: Path


def ensure_local_key(engine: Engine, settings: Settings) -> LocalKey:
    """Reuse the key saved in the data dir while it still works; otherwise make one and save it (mode 0600)."""
    path = (settings.data_dir / "api-key").resolve()
    with Session(engine, expire_on_commit=False) as session:
        if path.is_file():
            saved = path.read_text().strip()
            if api_keys.authenticate(session=session, presented=saved) is not None:
                return LocalKey(saved, path)
        tenants.ensure(session=session, tenant_id=LOCAL_TENANT, name="Local development")
        _, value = api_keys.create(session=session, tenant_id=LOCAL_TENANT, scopes=[Scope.admin],
                                   name="veil serve")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return LocalKey(value, path)
