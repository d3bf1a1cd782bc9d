"""`veil tenants ...` and `veil keys ...`: manage who may call the API."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from shared import api_keys, audit, tenants
from shared.db import make_engine
from shared.scopes import Scope
from shared.settings import get_settings
from shared.timeutil import utcnow

tenants_app = typer.Typer(help="Tenants: customers whose jobs never mix.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: shown once, stored as a hash.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)


def _session() -> Session:
    return Session(make_engine(get_settings()), expire_on_commit=False)


@tenants_app.command("create")
def tenants_create(
    tenant_id: Annotated[str, typer.Argument(help="Short id: a-z, 0-9 and '-'.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    max_upload_bytes: Annotated[int | None, typer.Option()] = None,
    max_active_jobs: Annotated[int | None, typer.Option()] = None,
    requests_per_minute: Annotated[int | None, typer.Option()] = None,
    storage_quota_bytes: Annotated[int | None, typer.Option()] = None,
) -> None:
    """Create a tenant and print its webhook signing secret (shown once)."""
    with _session() as session:
        try:
            tenant = tenants.create(session=session, tenant_id=tenant_id, name=name,
                                    max_upload_bytes=max_upload_bytes, max_active_jobs=max_active_jobs,
                                    requests_per_minute=requests_per_minute,
                                    storage_quota_bytes=storage_quota_bytes)
        except tenants.TenantError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        audit.record(session=session, tenant_id=tenant.id, key_id=None, action="tenant.create",
                     resource_type="tenant", resource_id=tenant.id)
        out.print(f"tenant {tenant.id} created; webhook signing secret (shown once): {tenant.webhook_secret}")


@tenants_app.command("list")
def tenants_list() -> None:
    with _session() as session:
        table = Table("id", "name", "disabled", "max upload", "max active", "req/min", "quota bytes")
        for t in tenants.list_tenants(session=session):
            table.add_row(t.id, t.name, str(t.disabled), *(str(v) if v is not None else "default" for v in (
                t.max_upload_bytes, t.max_active_jobs, t.requests_per_minute, t.storage_quota_bytes)))
        out.print(table)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="The tenant the key acts for.")],
    scope: Annotated[list[Scope], typer.Option(help="Repeat for several: jobs:write, jobs:read, ...")],
    name: Annotated[str | None, typer.Option(help="What the key is for.")] = None,
    expires_in_days: Annotated[int | None, typer.Option(min=1)] = None,
) -> None:
    """Create a key and print it. It is stored only as a hash and cannot be shown again."""
    expires = utcnow() + timedelta(days=expires_in_days) if expires_in_days else None
    with _session() as session:
        try:
            row, plaintext = api_keys.create(session=session, tenant_id=tenant, scopes=scope, name=name,
                                             expires_at=expires)
        except api_keys.ApiKeyError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        audit.record(session=session, tenant_id=tenant, key_id=None, action="key.create", resource_type="api_key",
                     resource_id=row.id)
    err.print(f"key {row.id} for tenant {tenant}, scopes {', '.join(row.scopes)}. Store it now:")
    print(plaintext)  # alone on stdout, so that scripts can capture it


@keys_app.command("list")
def keys_list(tenant: Annotated[str | None, typer.Option()] = None) -> None:
    with _session() as session:
        table = Table("tenant", "name", "scopes", "expires", "revoked", "last used")
        table.add_column("id", no_wrap=True, min_width=16)
        for k in api_keys.list_keys(session=session, tenant_id=tenant):
            table.add_row(k.tenant_id, k.name or "", " ".join(k.scopes), *(
                v.isoformat(timespec="minutes") if v else "" for v in (k.expires_at, k.revoked_at, k.last_used_at)),
                k.id)
        out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()]) -> None:
    with _session() as session:
        try:
            row = api_keys.revoke(session=session, key_id=key_id)
        except api_keys.ApiKeyError as exc:
            err.print(f"[red]{exc}[/]")
            raise typer.Exit(1) from None
        audit.record(session=session, tenant_id=row.tenant_id, key_id=None, action="key.revoke",
                     resource_type="api_key", resource_id=row.id)
    out.print(f"key {key_id} revoked")
