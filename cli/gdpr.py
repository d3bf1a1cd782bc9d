"""`veil gdpr ...`: receive, follow and prove data-subject requests from the operator's shell.

The same plain functions as the API: `shared.gdpr.intake.receive` records and publishes, `shared.gdpr.requests`
reads and lists. Identifiers given with --ref are hashed at once and never printed back.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table
from sqlmodel import Session

from shared.db import make_engine
from shared.gdpr import requests
from shared.gdpr.intake import receive
from shared.settings import get_settings
from shared.tables import SubjectRequest, Tenant

gdpr_app = typer.Typer(help="Data-subject requests (GDPR Art. 15 access, Art. 17 erasure).", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

TenantOpt = Annotated[str, typer.Option("--tenant", help="The tenant whose data the request covers.")]
RefOpt = Annotated[list[str] | None, typer.Option("--ref", help="name=value, e.g. vehicle=V-12; repeat for several.")]
FromOpt = Annotated[str | None, typer.Option("--from", help="Recorded at or after (ISO 8601; no offset: UTC).")]
ToOpt = Annotated[str | None, typer.Option("--to", help="Recorded at or before (ISO 8601; no offset: UTC).")]
JobOpt = Annotated[list[str] | None, typer.Option("--job", help="A job id; repeat for several.")]
ReferenceOpt = Annotated[str | None, typer.Option("--reference", help="Your own reference, e.g. a ticket number.")]
WaitOpt = Annotated[bool, typer.Option("--wait", help="Poll until the request is completed or failed.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds --wait waits at most.")]


def _session() -> Session:
    return Session(make_engine(get_settings()), expire_on_commit=False)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]{message}[/]")
    return typer.Exit(code)


def _refs(pairs: list[str]) -> dict[str, str]:
    refs: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise _fail("--ref takes name=value")  # never echo the pair: it is the subject's identifier
        refs[name.strip()] = value.strip()
    return refs


def _moment(raw: str | None, option: str) -> datetime | None:
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise _fail(f"{option} takes an ISO 8601 date and time") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _job_ids(raw: list[str]) -> list[uuid.UUID]:
    try:
        return [uuid.UUID(j) for j in raw]
    except ValueError:
        raise _fail("--job takes a job id (a UUID)") from None


def _create(kind: Literal["erasure", "access"], tenant: str, ref: list[str] | None, recorded_from: str | None,
            recorded_to: str | None, job: list[str] | None, reference: str | None, wait: bool,
            timeout: float) -> None:
    from worker.celery_app import create_celery
    from worker.publisher import Publisher

    settings = get_settings()
    refs, start, end = _refs(ref or []), _moment(recorded_from, "--from"), _moment(recorded_to, "--to")
    job_ids = _job_ids(job or [])
    with _session() as session:
        if session.get(Tenant, tenant) is None:
            raise _fail(f"no tenant {tenant!r}", 1)
        try:
            request = receive(session=session, doorbell=Publisher(create_celery(settings)),
                              secret=settings.subject_key, tenant_id=tenant, key_id=None, type=kind,
                              subject_refs=refs, recorded_from=start, recorded_to=end, job_ids=job_ids,
                              reference=reference)
        except requests.RequestError as exc:
            raise _fail(str(exc)) from None
    err.print(f"{kind} request received for tenant {tenant}; due {request.due_at.isoformat(timespec='seconds')}")
    print(request.id)  # alone on stdout, so that scripts can capture it
    if wait:
        _wait(request.id, timeout)


def _wait(request_id: uuid.UUID, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    engine = make_engine(get_settings())
    while True:
        with Session(engine) as session:
            request = session.get(SubjectRequest, request_id)
            status = request.status if request else "missing"
        if status in ("completed", "failed", "missing"):
            err.print(f"request {request_id}: {status}")
            raise typer.Exit(0 if status == "completed" else 1)
        if time.monotonic() > deadline:
            raise _fail(f"request {request_id} still {status} after {timeout:g} s", 1)
        time.sleep(0.5)


@gdpr_app.command("erase")
def erase(tenant: TenantOpt, ref: RefOpt = None, recorded_from: FromOpt = None, recorded_to: ToOpt = None,
          job: JobOpt = None, reference: ReferenceOpt = None, wait: WaitOpt = False,
          timeout: TimeoutOpt = 600.0) -> None:
    """Receive an erasure request (Art. 17) and start it; prints the request id. Every criterion must match."""
    _create("erasure", tenant, ref, recorded_from, recorded_to, job, reference, wait, timeout)


@gdpr_app.command("access")
def access(tenant: TenantOpt, ref: RefOpt = None, recorded_from: FromOpt = None, recorded_to: ToOpt = None,
           job: JobOpt = None, reference: ReferenceOpt = None, wait: WaitOpt = False,
           timeout: TimeoutOpt = 600.0) -> None:
    """Receive an access request (Art. 15) and start building its archive; prints the request id."""
    _create("access", tenant, ref, recorded_from, recorded_to, job, reference, wait, timeout)


def _load(request_id: str) -> SubjectRequest:
    try:
        ident = uuid.UUID(request_id)
    except ValueError:
        raise _fail("the request id is a UUID") from None
    with _session() as session:
        request = session.get(SubjectRequest, ident)
    if request is None:
        raise _fail(f"no subject request {ident}", 1)
    return request


def _iso(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


@gdpr_app.command("status")
def status(request_id: Annotated[str, typer.Argument(help="The request id.")]) -> None:
    """Where a request stands: status, deadline, extension, result counts."""
    r = _load(request_id)
    out.print_json(json.dumps({
        "id": str(r.id), "tenant": r.tenant_id, "type": r.type, "status": r.status,
        "received_at": _iso(r.received_at), "due_at": _iso(r.due_at), "extension_months": r.extension_months,
        "extension_reason": r.extension_reason, "started_at": _iso(r.started_at) or None,
        "completed_at": _iso(r.completed_at) or None, "error_code": r.error_code, "result": r.result,
        "archive_expires_at": _iso(r.archive_expires_at) or None,
    }))


@gdpr_app.command("receipt")
def receipt(request_id: Annotated[str, typer.Argument(help="The request id.")]) -> None:
    """Print {"receipt": ..., "sha256": ...} as the API returns it; the hash is of the receipt's canonical JSON
    (shared.gdpr.receipt.verify_receipt checks it)."""
    r = _load(request_id)
    if r.status != "completed" or r.receipt is None:
        raise _fail(f"request {r.id} is {r.status}: no receipt yet", 1)
    print(json.dumps({"receipt": r.receipt, "sha256": r.receipt_sha256}, indent=2, sort_keys=True))


@gdpr_app.command("list")
def list_(tenant: TenantOpt,
          open_only: Annotated[bool, typer.Option("--open", help="Only requests not yet completed.")] = False,
          overdue: Annotated[bool, typer.Option("--overdue", help="Only open requests past their deadline.")] = False,
          limit: Annotated[int, typer.Option(min=1, max=1000)] = 100) -> None:
    """A tenant's requests, newest first (--overdue: oldest due first)."""
    state: Literal["all", "open", "overdue"] = "overdue" if overdue else "open" if open_only else "all"
    with _session() as session:
        found = requests.list_requests(session=session, tenant_id=tenant, state=state, limit=limit)
    table = Table("type", "status", "received", "due", "ext.", "completed")
    table.add_column("id", no_wrap=True, min_width=36)
    for r in found:
        table.add_row(r.type, r.status, _iso(r.received_at), _iso(r.due_at), str(r.extension_months or ""),
                      _iso(r.completed_at), str(r.id))
    out.print(table)
