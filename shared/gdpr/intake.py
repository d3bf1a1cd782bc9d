"""Receiving a data-subject request: record it, audit it, then ring for the work. The API and the CLI share it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Literal, Protocol

from sqlmodel import Session

from shared import audit
from shared.gdpr import requests
from shared.queues import TaskName
from shared.tables import SubjectRequest

log = logging.getLogger("veil.gdpr")


class Doorbell(Protocol):
    """What `worker.publisher.Publisher` offers; typed here so `shared` needs nothing from `worker`."""

    def publish(self, task: TaskName, job_ids: Iterable[uuid.UUID]) -> list[uuid.UUID]: ...


def task_for(request_type: str) -> TaskName:
    return TaskName.gdpr_erase if request_type == "erasure" else TaskName.gdpr_access


def receive(*, session: Session, doorbell: Doorbell, secret: str, tenant_id: str, key_id: str | None,
            type: Literal["erasure", "access"], subject_refs: Mapping[str, str] | None = None,
            recorded_from: datetime | None = None, recorded_to: datetime | None = None,
            job_ids: Sequence[uuid.UUID] = (), reference: str | None = None) -> SubjectRequest:
    """Create the request (identifiers kept only as keyed hashes), audit it, and publish it once committed.

    Raises `requests.RequestError` when no subject is named or the range is reversed."""
    request = requests.create(session=session, tenant_id=tenant_id, type=type, secret=secret,
                              subject_refs=subject_refs, recorded_from=recorded_from, recorded_to=recorded_to,
                              job_ids=job_ids, reference=reference)
    audit.record(session=session, tenant_id=tenant_id, key_id=key_id, action=f"subject_request.{type}.create",
                 resource_type="subject_request", resource_id=str(request.id))
    # Committed first: a message for a row that does not exist would be worse than a row without a message.
    doorbell.publish(task_for(type), [request.id])
    log.info("subject request received", extra={"request_id": str(request.id), "type": type})
    return request
