"""Deliver one webhook: claim the row, check the URL again, post the signed body, record what happened.

Safe to run twice for one delivery. The claim is a compare-and-set that needs the row `pending` and due, and
pushes `next_attempt_at` past the longest the request can take: that future time is the in-flight lease, so a
second deliverer (a duplicate message, the sweeper's doorbell) finds nothing due and sends nothing. Should a
deliverer die mid-request, the row falls due again when the lease runs out and the sweeper rings for it.
The outcome is recorded only if nobody has claimed the row since (same `attempts`).

Retries are rows, not Celery countdowns: a failure sets `next_attempt_at` by exponential backoff with jitter
and the sweeper publishes the row once it is due.
"""

from __future__ import annotations

import json
import logging
import random
import socket
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from enum import StrEnum
from typing import Any

import httpx
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from shared import tenants
from shared.callback_urls import UnsafeCallbackUrl, check_callback_url
from shared.settings import Settings
from shared.tables import WebhookDelivery
from shared.timeutil import utcnow
from shared.webhook_outbox import DELIVERED, FAILED, PENDING
from shared.webhook_signing import sign

log = logging.getLogger("veil.webhooks")
USER_AGENT = "Veil-Webhooks/1"
MAX_BACKOFF_S = 3600
# httpx applies its timeout per phase (connect, write, each read), so one request may take a few of them.
LEASE_MARGIN_S = 30


class DeliveryOutcome(StrEnum):
    delivered = "delivered"
    retry = "retry"  # failed this time; pending again after the backoff
    failed = "failed"  # given up: attempts exhausted, or the URL is refused
    skipped = "skipped"  # not ours: delivered, failed, in flight elsewhere, not due yet, or gone


def backoff_seconds(attempts: int, *, rand: Callable[[], float] = random.random) -> float:
    """Wait before the next try after `attempts` tries: min(1 h, 2**attempts) s, less up to 20 % jitter.

    The jitter spreads the retries of many deliveries that failed together (a receiver's outage) so they do
    not all return at once; it only ever shortens the wait, so the cap holds."""
    base = float(min(MAX_BACKOFF_S, 2 ** min(attempts, 32)))
    return base * (1.0 - 0.2 * rand())


def _lease_seconds(settings: Settings) -> float:
    return 3 * settings.webhook_timeout_seconds + LEASE_MARGIN_S


def due_deliveries(engine: Engine, limit: int) -> list[uuid.UUID]:
    """Pending deliveries whose time has come, longest-waiting first."""
    with engine.connect() as conn:
        return list(conn.execute(
            select(col(WebhookDelivery.id))
            .where(col(WebhookDelivery.status) == PENDING, col(WebhookDelivery.next_attempt_at) <= utcnow())
            .order_by(col(WebhookDelivery.next_attempt_at)).limit(limit)
        ).scalars())


def deliver(engine: Engine, delivery_id: uuid.UUID, settings: Settings, *,
            http_client: httpx.Client | None = None) -> DeliveryOutcome:
    claimed = _claim(engine, delivery_id, settings)
    if claimed is None:
        return DeliveryOutcome.skipped
    attempt, tenant_id, url, event, payload = claimed

    try:
        # Again, not only at submission: DNS may point somewhere else now, or the setting may have changed.
        check_callback_url(url, allow_private=settings.webhook_allow_private)
    except UnsafeCallbackUrl as exc:
        if isinstance(exc.__context__, socket.gaierror):
            # The name did not resolve: a DNS outage is as transient as a refused connection.
            return _record_failure(engine, delivery_id, attempt, settings, error=type(exc).__name__)
        return _record(engine, delivery_id, attempt, DeliveryOutcome.failed, status=FAILED,
                       last_error=type(exc).__name__, last_status_code=None)

    with Session(engine) as session:
        secret = tenants.webhook_secret(session=session, tenant_id=tenant_id)
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Veil-Event": event,
        "Veil-Delivery": str(delivery_id),
        "Veil-Signature": sign(secret, body, int(time.time())),
    }
    try:
        status_code = _post(http_client, settings, url, body, headers)
    except Exception as exc:  # network errors, timeouts, bad responses: the type says enough, the text may not
        log.info("webhook attempt failed", extra={"delivery_id": str(delivery_id), "attempt": attempt,
                                                  "error": type(exc).__name__})
        return _record_failure(engine, delivery_id, attempt, settings, error=type(exc).__name__)
    if 200 <= status_code < 300:
        return _record(engine, delivery_id, attempt, DeliveryOutcome.delivered, status=DELIVERED,
                       delivered_at=utcnow(), last_status_code=status_code, last_error=None)
    log.info("webhook refused by receiver", extra={"delivery_id": str(delivery_id), "attempt": attempt,
                                                   "status_code": status_code})
    return _record_failure(engine, delivery_id, attempt, settings, status_code=status_code)


def _claim(engine: Engine, delivery_id: uuid.UUID,
           settings: Settings) -> tuple[int, str, str, str, dict[str, Any]] | None:
    now = utcnow()
    with engine.begin() as conn:
        row = conn.execute(
            update(WebhookDelivery)
            .where(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.status) == PENDING,
                   or_(col(WebhookDelivery.next_attempt_at).is_(None), col(WebhookDelivery.next_attempt_at) <= now))
            .values(attempts=WebhookDelivery.attempts + 1,
                    next_attempt_at=now + timedelta(seconds=_lease_seconds(settings)))
            .returning(col(WebhookDelivery.attempts), col(WebhookDelivery.tenant_id), col(WebhookDelivery.url),
                       col(WebhookDelivery.event), col(WebhookDelivery.payload))
        ).one_or_none()
    if row is None:
        return None
    return row.attempts, row.tenant_id, row.url, row.event, row.payload


def _post(client: httpx.Client | None, settings: Settings, url: str, body: bytes, headers: dict[str, str]) -> int:
    if client is None:
        # trust_env=False: no proxy from the environment gets to see (or reroute) tenant callbacks.
        with httpx.Client(timeout=settings.webhook_timeout_seconds, follow_redirects=False,
                          trust_env=False) as own:
            return _post(own, settings, url, body, headers)
    # Streamed and never read: only the status matters, and a slow or endless body cannot hold us.
    with client.stream("POST", url, content=body, headers=headers, follow_redirects=False,
                       timeout=settings.webhook_timeout_seconds) as response:
        return response.status_code


def _record_failure(engine: Engine, delivery_id: uuid.UUID, attempt: int, settings: Settings, *,
                    status_code: int | None = None, error: str | None = None) -> DeliveryOutcome:
    if attempt >= settings.webhook_max_attempts:
        return _record(engine, delivery_id, attempt, DeliveryOutcome.failed, status=FAILED,
                       last_status_code=status_code, last_error=error)
    return _record(engine, delivery_id, attempt, DeliveryOutcome.retry, last_status_code=status_code,
                   last_error=error, next_attempt_at=utcnow() + timedelta(seconds=backoff_seconds(attempt)))


def _record(engine: Engine, delivery_id: uuid.UUID, attempt: int, outcome: DeliveryOutcome,
            **values: Any) -> DeliveryOutcome:
    with engine.begin() as conn:
        changed = conn.execute(
            update(WebhookDelivery)
            .where(and_(col(WebhookDelivery.id) == delivery_id, col(WebhookDelivery.status) == PENDING,
                        col(WebhookDelivery.attempts) == attempt))
            .values(**values)
        ).rowcount
    if changed != 1:
        # Our lease ran out and another deliverer took the row over: its record stands.
        return DeliveryOutcome.skipped
    if outcome is not DeliveryOutcome.retry:
        log.info("webhook " + outcome.value, extra={"delivery_id": str(delivery_id), "attempt": attempt,
                                                    "status_code": values.get("last_status_code")})
    return outcome
